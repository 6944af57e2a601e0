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
	Prefix    netip.Prefix
	Valid     time.Time // deadline of the valid lifetime
	Preferred time.Time // deadline of the preferred lifetime
	// OnLink and Autonomous are the RA prefix information flags (L, A);
	// false for delegated prefixes.
	OnLink, Autonomous bool
}

// Router is a router heard on the WAN.
type Router struct {
	Addr       netip.Addr // the RA's source, a link-local address
	Until      time.Time  // router lifetime deadline; not a default router once passed
	Preference int        // RFC 4191: -1 low, 0 medium, 1 high
	MAC        []byte     // source link-layer address option, if given
}

// Server is a DNS server with the deadline of its lifetime.
type Server struct {
	Addr  netip.Addr
	Until time.Time
}

// RA is what the WAN RA tracker knows at one moment: only live entries
// (expired ones are dropped before an RA value is published).
type RA struct {
	Interface string
	Prefixes  []Prefix
	Routers   []Router
	DNS       []Server
	DNSSL     []string
	MTU       int // 0: no MTU option heard
}

// Delegation is what the DHCPv6-PD client holds at one moment. Prefixes
// is empty when there is no binding (not yet, or expired).
type Delegation struct {
	Interface string
	Prefixes  []Prefix
	DNS       []netip.Addr
	// T1 and T2 are when the client renews and rebinds.
	T1, T2 time.Time
	// ServerID is the server's DUID in hex, for status.
	ServerID string
}

// Remote is a tunnel remote name resolved to addresses.
type Remote struct {
	Name  string
	Addrs []netip.Addr
	Until time.Time // TTL deadline: resolve again then
}
