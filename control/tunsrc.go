package control

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/loader"
)

// HostAddr is an IPv4 address on one of the host's interfaces.
type HostAddr struct {
	Interface string
	Prefix    netip.Prefix // the address with its prefix length
}

// HostAddrs lists the host's IPv4 addresses; tests pass a fake.
type HostAddrs interface {
	IPv4() ([]HostAddr, error)
}

// NetlinkHostAddrs is HostAddrs on the real kernel.
type NetlinkHostAddrs struct{}

// IPv4 lists every IPv4 address of every interface.
func (NetlinkHostAddrs) IPv4() ([]HostAddr, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []HostAddr
	for _, l := range links {
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("list addresses of %s: %w", l.Attrs().Name, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ones, _ := a.Mask.Size()
			out = append(out, HostAddr{Interface: l.Attrs().Name, Prefix: netip.PrefixFrom(ip.Unmap(), ones)})
		}
	}
	return out, nil
}

// tunnelSourceNets are the inner IPv4 sources no tunnel may bring (see
// loader.SourceNet): every LAN's subnet (from the config and from the
// addresses on its interface), and the router's own addresses (the
// config's LAN addresses and tunnels' ipv4-address, and every address on
// the host) with the broadcast addresses of their subnets. Loopback and
// 0/8 addresses are left out: the data plane drops those sources anyway.
// When there are more than the filter holds, the LAN subnets and the
// config's addresses are kept and the rest of the host's addresses left
// out; skipped says how many.
func tunnelSourceNets(cfg *config.Config, host []HostAddr) (nets []loader.SourceNet, skipped int) {
	var lan, local []netip.Prefix
	addLocal := func(p netip.Prefix) {
		a := p.Addr()
		if !a.Is4() || a.IsLoopback() || a.As4()[0] == 0 {
			return
		}
		local = append(local, netip.PrefixFrom(a, 32))
		if p.Bits() < 31 {
			b := a.As4()
			bc := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | ^uint32(0)>>p.Bits()
			local = append(local, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(bc >> 24), byte(bc >> 16), byte(bc >> 8), byte(bc)}), 32))
		}
	}
	lans := map[string]bool{}
	for _, l := range cfg.LAN {
		lans[l.Interface] = true
		if l.IPv4.IsValid() {
			lan = append(lan, l.IPv4.Masked())
			addLocal(l.IPv4)
		}
	}
	for _, t := range cfg.Tunnels {
		if t.IPv4Address.IsValid() {
			addLocal(netip.PrefixFrom(t.IPv4Address, 32))
		}
	}
	fromConfig := len(local)
	for _, h := range host {
		if !h.Prefix.Addr().Is4() {
			continue
		}
		if lans[h.Interface] && !h.Prefix.Addr().IsLoopback() {
			lan = append(lan, h.Prefix.Masked())
		}
		addLocal(h.Prefix)
	}
	dedup := func(ps []netip.Prefix) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range ps {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		return out
	}
	lan = dedup(lan)
	cfgLocal := dedup(local[:fromConfig])
	local = dedup(append(cfgLocal, local[fromConfig:]...))
	if room := loader.MaxSourceNets - len(lan); len(local) > room {
		room = max(room, 0)
		skipped = len(local) - room
		local = local[:room]
	}
	for _, p := range local {
		nets = append(nets, loader.SourceNet{Prefix: p, Kind: loader.SourceLocal})
	}
	for _, p := range lan[:min(len(lan), loader.MaxSourceNets)] {
		nets = append(nets, loader.SourceNet{Prefix: p, Kind: loader.SourceLAN})
	}
	return nets, skipped
}

// tunnelSourceNets6 are the inner IPv6 sources no 6in4 tunnel may bring:
// the 6in4 tunnels' own link addresses, and the LAN prefixes in force
// (learned, static and carved from tunnels), the router's LAN addresses
// among them. None without a 6in4 tunnel; at most what the filter holds.
func tunnelSourceNets6(cfg *config.Config) []loader.SourceNet {
	var nets []loader.SourceNet
	six := false
	for _, t := range cfg.Tunnels {
		if t.Mode != loader.Mode6in4 {
			continue
		}
		six = true
		if t.Address.IsValid() {
			nets = append(nets, loader.SourceNet{Prefix: netip.PrefixFrom(t.Address.Addr(), 128), Kind: loader.SourceLocal})
		}
	}
	if !six {
		return nil
	}
	for _, p := range lanPrefixesInForce(cfg) {
		nets = append(nets, loader.SourceNet{Prefix: p, Kind: loader.SourceLAN})
	}
	return nets[:min(len(nets), loader.MaxSourceNets)]
}

// applyTunnelSources programs the tunnels' inner source filter.
func applyTunnelSources(cfg *config.Config, deps Deps, add func(Step)) error {
	var host []HostAddr
	if deps.HostAddrs != nil {
		var err error
		if host, err = deps.HostAddrs.IPv4(); err != nil {
			return fmt.Errorf("tunnels: the router's IPv4 addresses: %w", err)
		}
	}
	nets, skipped := tunnelSourceNets(cfg, host)
	nets = append(nets, tunnelSourceNets6(cfg)...)
	if err := deps.Tunnels.SetTunnelSourceFilter(nets); err != nil {
		return fmt.Errorf("tunnels: %w", err)
	}
	what := fmt.Sprintf("tunnels: inner IPv4 sources dropped: %d prefixes (the router's addresses, LAN subnets)", len(nets))
	if skipped > 0 {
		what += fmt.Sprintf("; %d of the router's addresses did not fit and are not filtered in XDP", skipped)
	}
	add(Step{What: what, Result: "set"})
	return nil
}
