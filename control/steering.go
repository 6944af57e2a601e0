package control

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/xdprouter/xdprouter/control/config"
)

// Steering installs xdprouter's policy rules and the routes of its own
// tables (config.PolicyRouting); tests pass a fake.
type Steering interface {
	// Sync makes them exactly want: what is missing first, then what
	// is no longer wanted removed.
	Sync(want SteeringState) ([]Step, error)
}

// SteeringState is the source steering of every vxlan or 6in4 tunnel with
// prefixes: IPv6 policy rules and the routes of their tables.
type SteeringState struct {
	Rules  []SteeringRule  `json:"rules"`
	Routes []SteeringRoute `json:"routes"`
}

// SteeringRule is `ip -6 rule add [from Src] [to Dst] lookup Table
// priority Priority protocol 200`.
type SteeringRule struct {
	Priority int          `json:"priority"`
	Src      netip.Prefix `json:"from,omitzero"`
	Dst      netip.Prefix `json:"to,omitzero"`
	Table    int          `json:"table"`
}

func (r SteeringRule) String() string {
	s := fmt.Sprintf("%d:", r.Priority)
	if r.Src.IsValid() {
		s += " from " + r.Src.String()
	}
	if r.Dst.IsValid() {
		s += " to " + r.Dst.String()
	}
	return s + " lookup " + tableName(r.Table)
}

// SteeringRoute is one route in an xdprouter table: a default route via
// the tunnel's peer, or an unreachable prefix.
type SteeringRoute struct {
	Table       int          `json:"table"`
	Dst         netip.Prefix `json:"to"`
	Gateway     netip.Addr   `json:"via,omitzero"`
	Dev         string       `json:"dev,omitempty"`
	Unreachable bool         `json:"unreachable,omitempty"`
}

func (r SteeringRoute) String() string {
	if r.Unreachable {
		return fmt.Sprintf("table %d: unreachable %s", r.Table, r.Dst)
	}
	dst := r.Dst.String()
	if r.Dst.Bits() == 0 {
		dst = "default"
	}
	return fmt.Sprintf("table %d: %s via %s dev %s", r.Table, dst, r.Gateway, r.Dev)
}

// mainTable is RT_TABLE_MAIN.
const mainTable = 254

func tableName(t int) string {
	if t == mainTable {
		return "main"
	}
	return fmt.Sprint(t)
}

// desiredSteering is the steering cfg asks for (cfg resolved: its
// Firewall.LearnedLAN holds the LAN prefixes in force). For each tunnel
// with prefixes, at its Priority, traffic from its prefixes and link net
// (and from the inside prefixes of its npt entries) looks up its Table, which routes everything via the peer except its
// prefixes (unreachable: a /64 no LAN uses must not go back to the peer,
// which routes it here). Before those, at PolicyRouting.Priority, what is
// addressed to a LAN prefix in force looks up main: a host with a tunnel
// address reaches the other LANs directly. No suppress_prefixlength
// rules: bpf_fib_lookup ignores them (fib6_rule_suppress reads the
// result's rt6, which the lookup XDP uses never sets), so XDP would
// forward what the kernel would not.
func desiredSteering(cfg *config.Config) SteeringState {
	st := SteeringState{Rules: []SteeringRule{}, Routes: []SteeringRoute{}}
	var steered []config.RoutedTunnel
	for _, v := range cfg.RoutedTunnels() {
		if len(v.Prefixes) > 0 {
			steered = append(steered, v)
		}
	}
	if len(steered) == 0 {
		return st
	}
	for _, p := range lanPrefixesInForce(cfg) {
		st.Rules = append(st.Rules, SteeringRule{Priority: cfg.PolicyRouting.Priority, Dst: p, Table: mainTable})
	}
	for _, v := range steered {
		from := slices.Clone(v.Prefixes)
		if v.Address.IsValid() {
			from = append(from, v.Address.Masked())
		}
		// An npt inside prefix on the tunnel leaves by it, translated
		// onto one of its prefixes (the kernel's and XDP's lookups see
		// the inside source: NPT translates after the route).
		for _, n := range cfg.NPT {
			if n.Interface == v.Name {
				from = append(from, n.Inside)
			}
		}
		for _, p := range from {
			st.Rules = append(st.Rules, SteeringRule{Priority: v.Priority, Src: p, Table: v.Table})
		}
		for _, p := range v.Prefixes {
			st.Rules = append(st.Rules, SteeringRule{Priority: v.Priority, Dst: p, Table: v.Table})
		}
		st.Routes = append(st.Routes, SteeringRoute{Table: v.Table, Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0),
			Gateway: v.Gateway, Dev: v.Name})
		for _, p := range v.Prefixes {
			st.Routes = append(st.Routes, SteeringRoute{Table: v.Table, Dst: p, Unreachable: true})
		}
	}
	return st
}

// lanPrefixesInForce are the LANs' IPv6 prefixes: learned ones (current
// and deprecated), npt inside prefixes and the tunnels' carved /64s.
func lanPrefixesInForce(cfg *config.Config) []netip.Prefix {
	var out []netip.Prefix
	for _, l := range cfg.LAN {
		out = appendNew(out, cfg.Firewall.LearnedLAN[l.Interface]...)
	}
	out = appendNew(out, cfg.StaticLANPrefixes()...)
	for _, v := range cfg.RoutedTunnels() {
		for _, c := range v.Carved {
			out = appendNew(out, c.Prefix)
		}
	}
	return out
}
