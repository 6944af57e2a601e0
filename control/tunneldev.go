package control

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tunnelAlias marks the netdevs xdprouter created, so that it never adopts
// or deletes someone else's device of the same name.
const tunnelAlias = "xdprouter ipip6 tunnel"

// rtprotXDPRouter tags the routes xdprouter installs into tunnels (a
// routing protocol number nobody else uses; `ip route` shows "proto 200"),
// so stale ones can be found and removed.
const rtprotXDPRouter = 200

// NetlinkTunnelDevs manages tunnel netdevs on the real kernel. Without
// ip6_tunnel/sit modules there is no ipip6 netdev, so a tunnel's netdev is
// an ifb: an Ethernet-framed device with no ARP whose transmit path is
// taken over by the TCX egress program (loader.AttachTunnelTC) before the
// driver is reached.
type NetlinkTunnelDevs struct{}

// Ensure creates the tunnel netdev name (or adopts the one xdprouter made
// before) with the tunnel MTU, up. An ipip6 one (ipv6 false) has IPv6 off
// and addr's address /32 as its only IPv4 address (none when addr is
// invalid); a 6in4 one (ipv6 true) no IPv4 address, IPv6 on and
// forwarding (XDP's route lookups "arrive" on it), and addr, the link
// net's address, when valid.
func (NetlinkTunnelDevs) Ensure(name string, mtu int, addr netip.Prefix, ipv6 bool) (TunnelDev, bool, error) {
	created := false
	l, err := netlink.LinkByName(name)
	if err != nil {
		if !errors.As(err, &netlink.LinkNotFoundError{}) {
			return TunnelDev{}, false, fmt.Errorf("look up %q: %w", name, err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.MTU = mtu
		if err := netlink.LinkAdd(&netlink.Ifb{LinkAttrs: attrs}); err != nil {
			return TunnelDev{}, false, fmt.Errorf("create tunnel netdev %q (ifb): %w", name, err)
		}
		created = true
		if l, err = netlink.LinkByName(name); err != nil {
			return TunnelDev{}, true, fmt.Errorf("look up new netdev %q: %w", name, err)
		}
		if err := netlink.LinkSetAlias(l, tunnelAlias); err != nil {
			return TunnelDev{}, true, fmt.Errorf("mark netdev %q: %w", name, err)
		}
	} else if l.Attrs().Alias != tunnelAlias {
		return TunnelDev{}, false, fmt.Errorf("a netdev named %q exists and is not an xdprouter tunnel (type %s); rename the tunnel or the device", name, l.Type())
	}
	// Only IPv4 is routed into an ipip6 tunnel: no link-local address,
	// no IPv6. A 6in4 tunnel is an IPv6 link that forwards.
	conf := map[string]string{"disable_ipv6": "1"}
	if ipv6 {
		conf = map[string]string{"disable_ipv6": "0", "forwarding": "1", "accept_ra": "0"}
	}
	for _, key := range []string{"disable_ipv6", "forwarding", "accept_ra"} {
		v, ok := conf[key]
		if !ok {
			continue
		}
		sysctl := filepath.Join("/proc/sys/net/ipv6/conf", name, key)
		if err := os.WriteFile(sysctl, []byte(v), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			return TunnelDev{}, created, fmt.Errorf("set %s=%s on %q: %w", key, v, name, err)
		}
	}
	if l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return TunnelDev{}, created, fmt.Errorf("set mtu %d on %q: %w", mtu, name, err)
		}
	}
	v4 := netip.Addr{}
	if !ipv6 && addr.IsValid() {
		v4 = addr.Addr()
	}
	if err := setOnlyIPv4(l, v4); err != nil {
		return TunnelDev{}, created, err
	}
	if ipv6 && addr.IsValid() {
		if err := netlink.AddrReplace(l, toNetlinkAddr(addr)); err != nil {
			return TunnelDev{}, created, fmt.Errorf("add %s to %q: %w", addr, name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return TunnelDev{}, created, fmt.Errorf("set %q up: %w", name, err)
	}
	return TunnelDev{Ifindex: l.Attrs().Index, MAC: l.Attrs().HardwareAddr}, created, nil
}

func setOnlyIPv4(l netlink.Link, addr netip.Addr) error {
	have, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses of %q: %w", l.Attrs().Name, err)
	}
	want := netip.PrefixFrom(addr, 32)
	found := false
	for _, a := range have {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if addr.IsValid() && netip.PrefixFrom(ip.Unmap(), ones) == want {
			found = true
			continue
		}
		if err := netlink.AddrDel(l, &a); err != nil {
			return fmt.Errorf("remove %s from %q: %w", a.IPNet, l.Attrs().Name, err)
		}
	}
	if addr.IsValid() && !found {
		if err := netlink.AddrAdd(l, toNetlinkAddr(want)); err != nil {
			return fmt.Errorf("add %s to %q: %w", want, l.Attrs().Name, err)
		}
	}
	return nil
}

// AddRoutes points routes into the tunnel netdev name. RouteReplace moves
// a prefix that another tunnel (or anything else) had in one step, so a
// prefix moved between tunnels is never without a route.
func (NetlinkTunnelDevs) AddRoutes(name string, routes []netip.Prefix) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tunnel netdev %q: %w", name, err)
	}
	for _, p := range routes {
		r := &netlink.Route{
			LinkIndex: l.Attrs().Index,
			Dst:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)},
			Scope:     netlink.SCOPE_LINK,
			Protocol:  rtprotXDPRouter,
		}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s into %q: %w", p, name, err)
		}
	}
	return nil
}

// SetRoutes makes routes exactly the IPv4 routes xdprouter keeps into the
// tunnel netdev name: the new ones first, then the stale ones removed
// (make before break).
func (d NetlinkTunnelDevs) SetRoutes(name string, routes []netip.Prefix) error {
	if err := d.AddRoutes(name, routes); err != nil {
		return err
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tunnel netdev %q: %w", name, err)
	}
	have, err := netlink.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{LinkIndex: l.Attrs().Index, Protocol: rtprotXDPRouter},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("list routes into %q: %w", name, err)
	}
	for _, r := range have {
		if p := routePrefix(r); !slices.Contains(routes, p) {
			if err := netlink.RouteDel(&r); err != nil {
				return fmt.Errorf("remove route %s from %q: %w", p, name, err)
			}
		}
	}
	return nil
}

func routePrefix(r netlink.Route) netip.Prefix {
	if r.Dst == nil {
		return netip.MustParsePrefix("0.0.0.0/0")
	}
	ip, _ := netip.AddrFromSlice(r.Dst.IP)
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones)
}

// Remove deletes the tunnel netdev name if xdprouter made it; its routes
// and TCX link go with it.
func (NetlinkTunnelDevs) Remove(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		if errors.As(err, &netlink.LinkNotFoundError{}) {
			return nil
		}
		return fmt.Errorf("look up %q: %w", name, err)
	}
	if l.Attrs().Alias != tunnelAlias {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete tunnel netdev %q: %w", name, err)
	}
	return nil
}
