package daemon

import (
	"net/netip"
	"slices"

	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/control/ndpwake"
	"github.com/xdprouter/xdprouter/loader"
)

// wantsNDPWake says whether cfg has a lan-neighbor NDP proxy and LANs to
// find its hosts on.
func wantsNDPWake(cfg *config.Config) bool {
	return len(cfg.LAN) > 0 && slices.ContainsFunc(cfg.NDPProxy, func(n config.NDPProxy) bool { return n.Mode == "lan-neighbor" })
}

// wakeConfig is what the NDP waker works on after a pass: the
// lan-neighbor prefixes the data plane proxies, the NPT rules it maps
// them by, the LANs, and the router's own addresses.
func wakeConfig(in control.Inputs, p control.Plan) ndpwake.Config {
	var out ndpwake.Config
	proxy, rules := control.ResolvedNDPProxy(in, p)
	for _, e := range proxy {
		if e.Mode != loader.NDPLANNeighbor {
			continue
		}
		i := slices.IndexFunc(out.Proxies, func(px ndpwake.Proxy) bool { return px.Interface == e.Interface })
		if i < 0 {
			px := ndpwake.Proxy{Interface: e.Interface}
			for _, r := range rules {
				if r.Interface == e.Interface {
					px.NPT = append(px.NPT, ndpwake.NPT{Outside: r.Outside, Inside: r.Inside, RFC6296: r.Mode == loader.NPTRFC6296})
				}
			}
			out.Proxies, i = append(out.Proxies, px), len(out.Proxies)
		}
		out.Proxies[i].Prefixes = append(out.Proxies[i].Prefixes, e.Prefix)
		out.Proxies[i].Foreign = append(out.Proxies[i].Foreign, e.Foreign...)
	}
	for _, l := range in.Config.LAN {
		out.LANs = append(out.LANs, l.Interface)
	}
	var own []netip.Addr
	if p.WANAddr.IsValid() {
		own = append(own, p.WANAddr.Prefix.Addr())
	}
	for _, l := range p.LANs {
		if l.Addr.IsValid() {
			own = append(own, l.Addr.Prefix.Addr())
		}
	}
	for _, r := range rules {
		if r.Exclude.IsValid() {
			own = append(own, r.Exclude)
		}
	}
	out.Own = own
	return out
}
