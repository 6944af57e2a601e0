// Package control holds the control plane: turning configuration (and, in
// the daemon, what tasks learn) into data-plane and kernel state.
package control

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/loader"
)

// Dataplane is what Apply needs from the loader; tests pass a fake.
type Dataplane interface {
	Attach(ifname string, role loader.Role, mode loader.Mode, gate loader.CTGate) (loader.AttachResult, error)
	Detach(ifname string) error
}

// Addresses installs interface addresses; tests pass a fake.
type Addresses interface {
	Ensure(ifname string, p netip.Prefix) (added bool, err error)
	Remove(ifname string, p netip.Prefix) error
}

// Deps are the OS boundaries Apply works through. Each feature adds its own
// small interface here, so tests can fake each one.
type Deps struct {
	DP    Dataplane
	Addrs Addresses
	// Tunnels, TunDevs and NAT program tunnels; nil when the config has
	// none to program.
	Tunnels TunnelDataplane
	TunDevs TunnelDevs
	NAT     NAT44
	// HostAddrs lists the host's IPv4 addresses for the tunnels' inner
	// source filter; nil takes the config's alone.
	HostAddrs HostAddrs
	// VXLAN, KTunnels and Steering program the vxlan tunnels and their
	// source steering; nil when the config has none to program.
	VXLAN    VXLANDevs
	KTunnels KernelTunnels
	Steering Steering
	// NPT programs NPT and the NDP proxy; nil leaves that state alone.
	NPT Translator
	// Net6 installs learned IPv6 addresses and routes (the daemon's);
	// nil leaves them alone.
	Net6 Net6
	// Multicast puts proxy interfaces in all-multicast mode; nil leaves
	// them alone.
	Multicast Multicast
	// Links says which interfaces exist. With it (the daemon), a LAN
	// interface that does not exist yet waits, and the rest of the
	// config goes ahead; without it (`apply`), it is an error.
	Links Links
	// Own lists the router's own addresses on an interface. With it
	// (`apply`), an NPT outside prefix that holds one of the WAN's
	// addresses excludes it from translation (see excludeOwn); the
	// daemon leaves it nil: it knows its WAN address from the plan
	// (resolveLearned), and the kernel may still hold the one a
	// renumbering is replacing.
	Own OwnAddrs
}

// OwnAddrs tells the router's own global IPv6 addresses on an interface;
// tests pass a fake.
type OwnAddrs interface {
	Global(ifname string) ([]netip.Addr, error)
}

// Links tells whether a network interface exists; tests pass a fake.
type Links interface {
	Exists(ifname string) (bool, error)
}

// waitingLANs are the LAN interfaces of cfg that do not exist (only with
// deps.Links), each with its config path.
func waitingLANs(cfg *config.Config, deps Deps) (map[string]string, error) {
	if deps.Links == nil {
		return nil, nil
	}
	out := map[string]string{}
	for i, l := range cfg.LAN {
		ok, err := deps.Links.Exists(l.Interface)
		if err != nil {
			return nil, fmt.Errorf("lan[%d]: %w", i, err)
		}
		if !ok {
			out[l.Interface] = fmt.Sprintf("lan[%d]", i)
		}
	}
	return out, nil
}

// waitedFor are the interfaces Apply's steps say it waits for: the rest
// of a pass follows Apply's decision rather than asking again (a link
// that appeared in between would get addresses but no attach).
func waitedFor(steps []Step) map[string]string {
	out := map[string]string{}
	for _, s := range steps {
		if s.Result == "waiting" && s.Interface != "" {
			out[s.Interface] = s.What
		}
	}
	return out
}

// waitingStep is the step that says a LAN interface is waited for.
func waitingStep(path, ifname string) Step {
	return Step{What: fmt.Sprintf("%s: waiting for interface %s (it does not exist yet; attached when it appears)", path, ifname),
		Result: "waiting", Interface: ifname}
}

// Multicast sets an interface to receive every multicast group.
type Multicast interface {
	// AllMulticast turns it on and says whether it was off.
	AllMulticast(ifname string) (bool, error)
}

// Step is one thing Apply did, for the user.
type Step struct {
	What   string
	Result string
	// Interface is, for a "waiting" step, the interface waited for.
	Interface string
}

// Apply programs a static configuration once: attaches the WAN and LAN
// interfaces with their roles, installs LAN IPv4 addresses, programs the
// tunnels (netdev, routes, maps, slow path, NAT44), NPT (with its TC slow
// path) and the NDP proxy. If a step
// fails, what this call added is undone, so a failed apply leaves the
// system as it found it.
func Apply(cfg *config.Config, deps Deps) ([]Step, error) {
	dp, addrs := deps.DP, deps.Addrs
	if err := checkTunnelsForApply(cfg); err != nil {
		return nil, err
	}
	// Resolved before anything is touched, so a config apply cannot
	// program fails without side effects.
	nptRules, proxy, err := desiredNPT(cfg)
	if err != nil {
		return nil, err
	}
	if err := excludeOwn(nptRules, deps.Own, tunnelNames(cfg)); err != nil {
		return nil, err
	}
	if deps.NPT == nil && (len(nptRules) > 0 || len(proxy) > 0) {
		return nil, fmt.Errorf("npt/ndp-proxy configured but no translator given")
	}
	waiting, err := waitingLANs(cfg, deps)
	if err != nil {
		return nil, err
	}
	var (
		steps []Step
		undo  []func() error
	)
	// What lives on a LAN interface that does not exist yet waits with
	// it: its NPT rules and NDP proxy entries need its ifindex.
	if len(waiting) > 0 {
		nptRules = slices.DeleteFunc(nptRules, func(r loader.NPTRule) bool { return waiting[r.Interface] != "" })
		proxy = slices.DeleteFunc(proxy, func(p loader.NDPProxyEntry) bool { return waiting[p.Interface] != "" })
	}
	fail := func(err error) ([]Step, error) {
		var uerrs []error
		for i := len(undo) - 1; i >= 0; i-- {
			uerrs = append(uerrs, undo[i]())
		}
		if uerr := errors.Join(uerrs...); uerr != nil {
			return steps, fmt.Errorf("%w (and rolling back failed: %v)", err, uerr)
		}
		return steps, err
	}
	attach := func(path, ifname string, role loader.Role, mode string) error {
		m, err := loader.ParseMode(mode)
		if err != nil {
			return fmt.Errorf("%s.xdp-mode: %w", path, err)
		}
		// Always gated: a configured router's fast path obeys its
		// firewall (DESIGN.md principle 7).
		res, err := dp.Attach(ifname, role, m, loader.CTGateOn)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if res.Action == "attached" {
			undo = append(undo, func() error { return dp.Detach(ifname) })
		}
		// How XDP transmits through the port, and why when that costs
		// the fast path (a veth whose peer has no NAPI), and what becomes
		// of jumbo frames: apply prints it, the daemon logs it with every
		// pass.
		extra := ""
		if res.TX != "" {
			extra = ", tx " + string(res.TX)
			if res.TXWarning {
				extra += ": " + res.TXNote
			}
		}
		if res.Jumbo != "" {
			extra += "; " + res.Jumbo
		}
		steps = append(steps, Step{What: fmt.Sprintf("attach %s (%s, xdp %s%s)", ifname, role, res.Mode, extra), Result: res.Action})
		return nil
	}
	if w := cfg.WAN; w != nil {
		if err := attach("wan", w.Interface, loader.RoleWAN, w.XDPMode); err != nil {
			return fail(err)
		}
	}
	for i, l := range cfg.LAN {
		path := fmt.Sprintf("lan[%d]", i)
		if waiting[l.Interface] != "" {
			steps = append(steps, waitingStep(path, l.Interface))
			continue
		}
		if err := attach(path, l.Interface, loader.RoleLAN, l.XDPMode); err != nil {
			return fail(err)
		}
		if !l.IPv4.IsValid() {
			continue
		}
		added, err := addrs.Ensure(l.Interface, l.IPv4)
		if err != nil {
			return fail(fmt.Errorf("%s.ipv4: add %s to %s: %w", path, l.IPv4, l.Interface, err))
		}
		result := "present"
		if added {
			result = "added"
			ifname, p := l.Interface, l.IPv4
			undo = append(undo, func() error { return addrs.Remove(ifname, p) })
		}
		steps = append(steps, Step{What: fmt.Sprintf("address %s on %s", l.IPv4, l.Interface), Result: result})
	}
	add := func(s Step) { steps = append(steps, s) }
	if err := applyTunnels(cfg, deps, add, &undo); err != nil {
		return fail(err)
	}
	if err := applyVXLAN(cfg, deps, add, &undo); err != nil {
		return fail(err)
	}
	if deps.NPT != nil {
		s, u, err := applyNPT(deps.NPT, nptRules, proxy)
		steps = append(steps, s...)
		if u != nil {
			undo = append(undo, u)
		}
		if err != nil {
			return fail(err)
		}
	}
	if deps.Multicast != nil {
		s, err := allMulticast(deps.Multicast, proxy)
		steps = append(steps, s...)
		if err != nil {
			return fail(err)
		}
	}
	return steps, nil
}

// allMulticast makes every NDP proxy interface take all multicast: a
// Neighbor Solicitation goes to the target's solicited-node group, which
// the router never joined for addresses it proxies, and a NIC filters
// groups nobody joined before XDP sees them. It is left on when the proxy
// goes: someone else may want it too.
func allMulticast(m Multicast, proxy []loader.NDPProxyEntry) ([]Step, error) {
	var steps []Step
	done := map[string]bool{}
	for _, p := range proxy {
		if done[p.Interface] {
			continue
		}
		done[p.Interface] = true
		changed, err := m.AllMulticast(p.Interface)
		if err != nil {
			return steps, fmt.Errorf("ndp-proxy: all-multicast on %s: %w", p.Interface, err)
		}
		res := "unchanged"
		if changed {
			res = "set"
		}
		steps = append(steps, Step{What: "all-multicast on " + p.Interface + " (for the NDP proxy)", Result: res})
	}
	return steps, nil
}

// excludeOwn makes each NPT rule exclude the router's own address in its
// outside prefix, which the kernel answers for: translated, a ping to the
// router would reach the inside host with the same host bits instead. A
// rule can exclude one address; an outside prefix holding two of the
// router's (an address the daemon set and another, or two on the
// interface) is refused, naming the field, since the second would be
// translated. rules are desiredNPT's, in the order of cfg.NPT.
//
// A tunnel netdev (tunnels) is xdprouter's: its one address is the link
// net's, which the config keeps apart from the tunnel's prefixes, and on
// the first apply it does not exist yet to be asked.
func excludeOwn(rules []loader.NPTRule, own OwnAddrs, tunnels map[string]bool) error {
	if own == nil {
		return nil
	}
	addrs := map[string][]netip.Addr{}
	for i := range rules {
		r := &rules[i]
		if tunnels[r.Interface] {
			continue
		}
		have, seen := addrs[r.Interface]
		if !seen {
			var err error
			if have, err = own.Global(r.Interface); err != nil {
				return fmt.Errorf("npt[%d].interface: the router's addresses on %s: %w", i, r.Interface, err)
			}
			addrs[r.Interface] = have
		}
		var in []netip.Addr
		if r.Exclude.IsValid() {
			in = append(in, r.Exclude)
		}
		for _, a := range have {
			if r.Outside.Contains(a) && !slices.Contains(in, a) {
				in = append(in, a)
			}
		}
		switch {
		case len(in) == 1:
			r.Exclude = in[0]
		case len(in) > 1:
			return fmt.Errorf("npt[%d].outside: %s holds %d of the router's own addresses on %s (%s); NPT keeps one address "+
				"of the router out of translation, and traffic to the others would be translated to inside hosts: remove all "+
				"but one from %s, or choose an outside prefix without them", i, r.Outside, len(in), r.Interface,
				joinAddrs(in), r.Interface)
		}
	}
	return nil
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// tunnelNames are the netdevs of cfg's vxlan and 6in4 tunnels.
func tunnelNames(cfg *config.Config) map[string]bool {
	out := map[string]bool{}
	for _, t := range cfg.RoutedTunnels() {
		out[t.Name] = true
	}
	return out
}
