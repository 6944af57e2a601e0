// Package learned holds what the control-plane tasks learn from the network
// (Router Advertisements on the WAN, DHCPv6 prefix delegation, DNS answers
// for tunnel remotes) in the form the reconciler consumes. Lifetimes are
// absolute deadlines, so a value can be handed around and still say how
// long it remains valid; Forever stands for the protocols' infinite
// lifetime (0xffffffff seconds).
package learned

import (
	"net/netip"
	"time"
)

// Forever is the deadline of an infinite lifetime.
var Forever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Infinite is the wire value of an infinite lifetime (RFC 4861, RFC 8415).
const Infinite = 0xffffffff * time.Second

// Deadline turns a lifetime received at now into a deadline; Infinite
// becomes Forever.
func Deadline(now time.Time, lifetime time.Duration) time.Time {
	if lifetime >= Infinite {
		return Forever
	}
	return now.Add(lifetime)
}

// Remaining is the lifetime left at now until deadline: 0 once it has
// passed, Infinite for Forever, whole seconds otherwise (rounded down).
func Remaining(deadline, now time.Time) time.Duration {
	if !deadline.Before(Forever) {
		return Infinite
	}
	d := deadline.Sub(now)
	if d <= 0 {
		return 0
	}
	return d.Truncate(time.Second)
}

// Prefix is a prefix with its lifetimes.
type Prefix struct {
	Prefix    netip.Prefix `json:"prefix"`
	Valid     time.Time    `json:"valid_until"`     // deadline of the valid lifetime
	Preferred time.Time    `json:"preferred_until"` // deadline of the preferred lifetime
	// OnLink and Autonomous are the RA prefix information flags (L, A);
	// false for delegated prefixes.
	OnLink     bool `json:"on_link,omitempty"`
	Autonomous bool `json:"autonomous,omitempty"`
	// Routers are the sources of the Router Advertisements that carry
	// it (link-local addresses), in the order first heard; empty for
	// delegated prefixes. The WAN address is made in a prefix of the
	// default router in use (RFC 8028, RFC 6724 rule 5.5), so another
	// host on the link cannot move it by advertising a prefix of its own.
	Routers []netip.Addr `json:"routers,omitempty"`
}

// Router is a router heard on the WAN.
type Router struct {
	Addr       netip.Addr `json:"addr"`       // the RA's source, a link-local address
	Until      time.Time  `json:"until"`      // router lifetime deadline; not a default router once passed
	Preference int        `json:"preference"` // RFC 4191: -1 low, 0 medium, 1 high
	MAC        []byte     `json:"-"`          // source link-layer address option, if given
}

// Server is a DNS server with the deadline of its lifetime.
type Server struct {
	Addr  netip.Addr `json:"addr"`
	Until time.Time  `json:"until"`
}

// RouterAddr is a global address of a router on the WAN link, named by a
// Prefix Information option with the R flag (RFC 6275 7.2; the RA's own
// source is link-local), with the deadline of that prefix's valid
// lifetime, which the address shares.
type RouterAddr struct {
	Addr   netip.Addr `json:"addr"`
	Router netip.Addr `json:"router"` // the RA's source
	Until  time.Time  `json:"until"`
}

// RA is what the WAN RA tracker knows at one moment: only live entries
// (expired ones are dropped before an RA value is published).
type RA struct {
	Interface string   `json:"interface"`
	Prefixes  []Prefix `json:"prefixes"`
	Routers   []Router `json:"routers"`
	DNS       []Server `json:"dns,omitempty"`
	DNSSL     []string `json:"dnssl,omitempty"`
	MTU       int      `json:"mtu,omitempty"` // 0: no MTU option heard
	// RouterAddrs are the routers' global addresses (R flag), in the
	// order first heard: other nodes' addresses the NDP proxy must not
	// answer for.
	RouterAddrs []RouterAddr `json:"router_addresses,omitempty"`
}

// Delegation is what the DHCPv6-PD client holds at one moment. Prefixes
// is empty when there is no binding (not yet, or expired).
type Delegation struct {
	Interface string       `json:"interface"`
	Prefixes  []Prefix     `json:"prefixes"`
	DNS       []netip.Addr `json:"dns,omitempty"`
	// T1 and T2 are when the client renews and rebinds.
	T1 time.Time `json:"t1"`
	T2 time.Time `json:"t2"`
	// ServerID is the server's DUID in hex, for status.
	ServerID string `json:"server_id,omitempty"`
}

// Remote is a tunnel remote name resolved to addresses.
type Remote struct {
	Name  string       `json:"name"`
	Addrs []netip.Addr `json:"addrs"`
	Until time.Time    `json:"until"` // TTL deadline: resolve again then
}

// Left formats the lifetime left until deadline, for people: "forever",
// "0s" once passed, else whole seconds like "1h29m30s".
func Left(deadline, now time.Time) string {
	d := Remaining(deadline, now)
	if d == Infinite {
		return "forever"
	}
	return d.String()
}
