package control

import (
	"fmt"
	"slices"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/loader"
)

// resolveLearned returns cfg with what the plan resolves filled in:
// tunnels' `local: auto` (the WAN address) and DNS-name remotes, NPT
// `outside: auto` (the WAN /64), and a lan-neighbor NDP proxy's `auto`
// (the WAN /64 the LAN shares), and the LAN prefixes the firewall's
// source checks and pinholes follow. What still waits for an input is left out
// and listed, so that the rest of the config goes ahead: a tunnel waiting
// for its remote's name to resolve must not hold back a new LAN prefix.
// cfg itself is not changed.
func resolveLearned(cfg *config.Config, p Plan, remotes map[string]learned.Remote) (*config.Config, []string) {
	out := *cfg
	var pending []string
	out.Firewall.LearnedLAN = learnedLAN6(p)
	out.Tunnels = nil
	locals := Inputs{Config: cfg}.staticLocals()
	for i, t := range cfg.Tunnels {
		path := fmt.Sprintf("tunnels[%d]", i)
		if t.LocalAuto {
			if !p.WANAddr.IsValid() {
				pending = append(pending, path+".local: auto, and the WAN address is not known yet")
				continue
			}
			t.Local, t.LocalAuto = p.WANAddr.Prefix.Addr(), false
		}
		if t.RemoteName != "" {
			r := remotes[t.RemoteName]
			if len(r.Addrs) == 0 {
				pending = append(pending, fmt.Sprintf("%s.remote: %s has not resolved to an IPv6 address yet", path, t.RemoteName))
				continue
			}
			// Checked when the answer came (screen); checked again
			// under this plan, which may have made one a LAN host since.
			ok, bad := usableRemotes(t.RemoteName, r.Addrs, p, locals)
			if len(ok) == 0 {
				pending = append(pending, fmt.Sprintf("%s.remote: %s", path, joinRefusals(bad)))
				continue
			}
			t.Remote, t.RemoteName = ok[0], ""
		}
		// The daemon's provisioner makes the request; the data plane
		// only carries the tunnel.
		t.Provisioning = nil
		out.Tunnels = append(out.Tunnels, t)
	}
	out.NPT = nil
	for i, n := range cfg.NPT {
		if n.OutsideAuto {
			path := fmt.Sprintf("npt[%d].outside", i)
			w := p.WANPrefix.Prefix
			switch {
			case !w.IsValid():
				pending = append(pending, path+": auto, and no WAN prefix has been learned yet")
				continue
			case w.Bits() != n.Inside.Bits():
				pending = append(pending, fmt.Sprintf("%s: auto is the learned WAN prefix %s, a /%d, but inside %s is a /%d",
					path, w, w.Bits(), n.Inside, n.Inside.Bits()))
				continue
			}
			n.Outside, n.OutsideAuto = w.Masked(), false
		}
		// Learned or static, an outside prefix that holds the router's
		// WAN address must not translate it: packets to the router
		// would go to the inside host with the same host bits (issue
		// 13 item 10). Checked on every pass, since the address comes
		// with an RA long after the config was read.
		if w := p.WANAddr.Prefix.Addr(); p.WANAddr.IsValid() && n.Interface == p.WANInterface && n.Outside.Contains(w) {
			n.Exclude = w
		}
		out.NPT = append(out.NPT, n)
	}
	out.NDPProxy = slices.Clone(cfg.NDPProxy)
	for i, n := range out.NDPProxy {
		if n.Interface == p.WANInterface {
			out.NDPProxy[i].Foreign = slices.Clone(p.WANRouterAddrs)
		}
	}
	for i, n := range out.NDPProxy {
		if !n.Auto || slices.ContainsFunc(out.NPT, func(r config.NPT) bool { return r.Interface == n.Interface }) {
			continue // no auto, or auto = the NPT outside prefixes, expanded by Apply
		}
		// The NPT entries auto follows are waiting for a WAN prefix, or
		// auto is the WAN /64 the LAN shares.
		out.NDPProxy[i].Auto = false
		if !p.Shared || n.Interface != p.WANInterface {
			continue
		}
		if p.WANPrefix.Prefix.IsValid() {
			out.NDPProxy[i].Prefixes = append(slices.Clone(n.Prefixes), p.WANPrefix.Prefix)
		} else {
			pending = append(pending, fmt.Sprintf("ndp-proxy[%d].prefixes: auto, and no WAN prefix has been learned yet", i))
		}
	}
	return &out, pending
}

// ResolvedTunnels are the tunnels a pass over in programs, their local
// and remote addresses filled in; tunnels still waiting are absent.
func ResolvedTunnels(in Inputs, p Plan) []config.Tunnel {
	if in.Config == nil {
		return nil
	}
	cfg, _ := resolveLearned(in.Config, p, in.Learned.Remotes)
	return cfg.Tunnels
}

// ResolvedNDPProxy are the NDP proxy entries and NPT rules a pass over in
// programs (`auto` expanded, waiting entries absent); nil when the config
// cannot be programmed.
func ResolvedNDPProxy(in Inputs, p Plan) ([]loader.NDPProxyEntry, []loader.NPTRule) {
	if in.Config == nil {
		return nil, nil
	}
	cfg, _ := resolveLearned(in.Config, p, in.Learned.Remotes)
	rules, proxy, err := desiredNPT(cfg)
	if err != nil {
		return nil, nil
	}
	return proxy, rules
}
