package control

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/control/endpoint"
	"github.com/xdprouter/xdprouter/control/learned"
)

// Why a learned value was refused, as counted in ReconcileStats.Refused.
// A refused value is not used; what was in force before stays.
const (
	// A tunnel remote's DNS answer: an address that is no remote anywhere
	// (endpoint.Unusable: ::, loopback, multicast, link-local, mapped).
	RefuseRemoteUnusable = "remote_unusable"
	// ... the router's own address (WAN, LAN, a tunnel's local address).
	RefuseRemoteOwn = "remote_own_address"
	// ... an address inside a LAN or delegated prefix: a LAN host.
	RefuseRemoteLAN = "remote_lan_host"
	// A delegated prefix that is not global unicast (link-local,
	// loopback, multicast, unspecified, IPv4-mapped).
	RefusePDNotGlobal = "delegated_not_global_unicast"
	// ... longer than /64 (no /64 to give a LAN) or shorter than /16
	// (an unreachable route over much of the internet).
	RefusePDLength = "delegated_prefix_length"
	// ... one whose LAN /64 (by a LAN's sla-id) is the WAN's own /64.
	RefusePDWAN64 = "delegated_lan_is_wan_64"
)

// minDelegatedBits is the shortest delegated prefix taken: RFC 6177
// speaks of /48 to /64 for a site; an ISP's own aggregate is /32 or
// shorter, and a /0 would install an unreachable default route.
const minDelegatedBits = 16

// refusal is one refused value, for the log and status.
type refusal struct {
	reason string
	what   string
}

func (r refusal) String() string { return r.what }

// remoteProblem says why a cannot be a tunnel remote under plan p and
// the tunnels' static local addresses, or "" when it can.
func remoteProblem(a netip.Addr, p Plan, locals []netip.Addr) (reason, why string) {
	if r := endpoint.Unusable(a); r != "" {
		return RefuseRemoteUnusable, "not a unicast address a tunnel can reach (" + r + ")"
	}
	if a == p.WANAddr.Prefix.Addr() || slices.Contains(locals, a) {
		return RefuseRemoteOwn, "the router's own WAN address"
	}
	for _, l := range p.LANs {
		own := []netip.Addr{l.Addr.Prefix.Addr()}
		lans := []netip.Prefix{l.Prefix.Prefix}
		for i, r := range l.Retired {
			lans = append(lans, r.Prefix)
			own = append(own, l.RetiredAddrs[i].Prefix.Addr())
		}
		if slices.Contains(own, a) {
			return RefuseRemoteOwn, "the router's own address on " + l.Interface
		}
		for _, lp := range lans {
			if lp.IsValid() && lp.Contains(a) {
				return RefuseRemoteLAN, fmt.Sprintf("a host on %s (in %s)", l.Interface, lp)
			}
		}
	}
	for _, d := range p.Delegated {
		if d.Prefix.Contains(a) {
			return RefuseRemoteLAN, fmt.Sprintf("inside the delegated prefix %s, which is routed to the LANs", d.Prefix)
		}
	}
	if p.Shared && p.WANPrefix.Prefix.IsValid() && p.WANPrefix.Prefix.Contains(a) && len(p.LANs) > 0 {
		return RefuseRemoteLAN, fmt.Sprintf("a host in the /64 %s the LAN shares", p.WANPrefix.Prefix)
	}
	return "", ""
}

// usableRemotes splits addrs into those a tunnel may use under p and the
// refusals of the rest.
func usableRemotes(name string, addrs []netip.Addr, p Plan, locals []netip.Addr) ([]netip.Addr, []refusal) {
	var (
		ok  []netip.Addr
		bad []refusal
	)
	for _, a := range addrs {
		if reason, why := remoteProblem(a, p, locals); reason != "" {
			bad = append(bad, refusal{reason, fmt.Sprintf("tunnel remote %s resolved to %s: %s", name, a, why)})
			continue
		}
		ok = append(ok, a)
	}
	return ok, bad
}

// delegationProblem says why the delegated prefix d cannot be used under
// in's config and WAN /64 (wan), or "".
func delegationProblem(d netip.Prefix, in Inputs, wan netip.Prefix) (reason, why string) {
	a := d.Addr()
	switch {
	case !a.Is6() || a.Is4In6():
		return RefusePDNotGlobal, "not an IPv6 prefix"
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() || !a.IsGlobalUnicast():
		return RefusePDNotGlobal, "not a global unicast prefix"
	case d.Bits() > 64:
		return RefusePDLength, "longer than /64: no /64 for a LAN"
	case d.Bits() < minDelegatedBits:
		return RefusePDLength, fmt.Sprintf("shorter than /%d", minDelegatedBits)
	}
	if wan.IsValid() && in.Config != nil {
		for i, l := range in.Config.LAN {
			if sub, err := config.Subnet64(d, l.SLAID); err == nil && sub == wan.Masked() {
				return RefusePDWAN64, fmt.Sprintf("lan[%d]'s /64 (sla-id %d) would be %s, the WAN's own /64", i, l.SLAID, sub)
			}
		}
	}
	return "", ""
}

// staticLocals are the tunnels' configured local addresses.
func (in Inputs) staticLocals() []netip.Addr {
	if in.Config == nil {
		return nil
	}
	var out []netip.Addr
	for _, t := range in.Config.Tunnels {
		if !t.LocalAuto && t.Local.IsValid() {
			out = append(out, t.Local)
		}
	}
	return out
}

// screen checks a learned value before it goes into the Inputs: the
// addresses a tunnel remote's name resolved to, and a delegated prefix.
// What is wrong is taken out and returned as refusals; refused is true
// when nothing of the change is left, and then the Inputs in force stay
// as they are (the last good answer, the last good delegation). A
// withdrawal (no addresses, no prefix) is never refused.
func screen(cur Inputs, c InputChange, now time.Time) (_ InputChange, bad []refusal, refused bool) {
	switch {
	case c.Remote != nil && len(c.Remote.Addrs) > 0:
		p := NewPlan(cur, now)
		ok, bad := usableRemotes(c.Remote.Name, c.Remote.Addrs, p, cur.staticLocals())
		if len(bad) == 0 {
			return c, nil, false
		}
		if len(ok) == 0 {
			return c, bad, true
		}
		r := *c.Remote
		r.Addrs = ok
		c.Remote = &r
		return c, bad, false
	case c.PD != nil && len(c.PD.Prefixes) > 0:
		wan := NewPlan(cur, now).WANPrefix.Prefix
		var ok []learned.Prefix
		for _, d := range c.PD.Prefixes {
			if reason, why := delegationProblem(d.Prefix, cur, wan); reason != "" {
				bad = append(bad, refusal{reason, fmt.Sprintf("delegated prefix %s: %s", d.Prefix, why)})
				continue
			}
			ok = append(ok, d)
		}
		if len(bad) == 0 {
			return c, nil, false
		}
		if len(ok) == 0 {
			return c, bad, true
		}
		pd := *c.PD
		pd.Prefixes = ok
		c.PD = &pd
		return c, bad, false
	}
	return c, nil, false
}

func joinRefusals(rs []refusal) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.what)
	}
	return strings.Join(out, "; ")
}
