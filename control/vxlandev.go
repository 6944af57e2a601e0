package control

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdprouter/xdprouter/control/config"
)

// vxlanAlias marks the vxlan netdevs xdprouter created (as tunnelAlias
// marks the ipip6 ones): only those are adopted, changed or deleted.
const vxlanAlias = "xdprouter vxlan tunnel"

// NetlinkVXLANDevs manages the kernel's vxlan netdevs.
type NetlinkVXLANDevs struct{}

// Ensure makes the netdev of v exist as configured, up, with v.Address
// as its only global address: it creates it, adopts the one xdprouter
// made before (a restart changes nothing), or makes it again when a
// setting the kernel cannot change in place (VNI, port, remote, local,
// underlay) differs. It returns the ifindex and whether it was (re)made.
func (NetlinkVXLANDevs) Ensure(v config.VXLAN) (int, bool, error) {
	under, err := netlink.LinkByName(v.Underlay)
	if err != nil {
		return 0, false, fmt.Errorf("underlay %q: %w", v.Underlay, err)
	}
	want := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: v.Name, MTU: v.MTU},
		VxlanId:   int(v.VNI), Port: int(v.Port), VtepDevIndex: under.Attrs().Index,
		Group: v.Remote.AsSlice(),
		// No learning: the one forwarding entry is the configured
		// remote, so a frame from elsewhere cannot move where the
		// peer's MAC is sent. UDP checksums as iproute2 makes them.
		Learning: false, UDPCSum: true,
	}
	if v.Local.IsValid() {
		want.SrcAddr = v.Local.AsSlice()
	}
	created := false
	l, err := netlink.LinkByName(v.Name)
	switch {
	case errors.As(err, &netlink.LinkNotFoundError{}):
	case err != nil:
		return 0, false, fmt.Errorf("look up %q: %w", v.Name, err)
	case l.Attrs().Alias != vxlanAlias:
		return 0, false, fmt.Errorf("a netdev named %q exists and is not an xdprouter vxlan tunnel (type %s); rename the tunnel or the device", v.Name, l.Type())
	case !sameVXLAN(l, want):
		// The kernel refuses most of these in a changelink: make it anew
		// (its addresses and routes go with it and are set again below).
		if err := netlink.LinkDel(l); err != nil {
			return 0, false, fmt.Errorf("delete %q to make it again with new settings: %w", v.Name, err)
		}
		l = nil
	}
	if l == nil {
		if err := netlink.LinkAdd(want); err != nil {
			return 0, false, fmt.Errorf("create vxlan netdev %q (vni %d, remote %s, dev %s): %w", v.Name, v.VNI, v.Remote, v.Underlay, err)
		}
		created = true
		if l, err = netlink.LinkByName(v.Name); err != nil {
			return 0, true, fmt.Errorf("look up new netdev %q: %w", v.Name, err)
		}
		if err := netlink.LinkSetAlias(l, vxlanAlias); err != nil {
			return l.Attrs().Index, true, fmt.Errorf("mark netdev %q: %w", v.Name, err)
		}
	}
	idx := l.Attrs().Index
	if v.MTU != 0 && l.Attrs().MTU != v.MTU {
		if err := netlink.LinkSetMTU(l, v.MTU); err != nil {
			return idx, created, fmt.Errorf("set mtu %d on %q: %w", v.MTU, v.Name, err)
		}
	}
	if err := setOnlyGlobal6(l, v.Address); err != nil {
		return idx, created, err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return idx, created, fmt.Errorf("set %q up: %w", v.Name, err)
	}
	return idx, created, nil
}

// sameVXLAN says whether the existing netdev l has want's settings.
func sameVXLAN(l netlink.Link, want *netlink.Vxlan) bool {
	have, ok := l.(*netlink.Vxlan)
	return ok && have.VxlanId == want.VxlanId && have.Port == want.Port && have.VtepDevIndex == want.VtepDevIndex &&
		have.Group.Equal(want.Group) && (want.SrcAddr == nil && (have.SrcAddr == nil || have.SrcAddr.IsUnspecified()) ||
		have.SrcAddr.Equal(want.SrcAddr)) && !have.Learning
}

// setOnlyGlobal6 makes p (when valid) the link's only global IPv6
// address, installed without duplicate address detection so that it is
// in use at once; link-local addresses stay.
func setOnlyGlobal6(l netlink.Link, p netip.Prefix) error {
	have, err := netlink.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return fmt.Errorf("list addresses of %q: %w", l.Attrs().Name, err)
	}
	found := false
	for _, a := range have {
		got := netlinkPrefix(a.IPNet)
		if got.Addr().IsLinkLocalUnicast() {
			continue
		}
		if p.IsValid() && got == p {
			found = true
			continue
		}
		if err := netlink.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove %s from %q: %w", got, l.Attrs().Name, err)
		}
	}
	if p.IsValid() && !found {
		na := toNetlinkAddr(p)
		na.Flags = unix.IFA_F_NODAD
		if err := netlink.AddrAdd(l, na); err != nil {
			return fmt.Errorf("add %s to %q: %w", p, l.Attrs().Name, err)
		}
	}
	return nil
}

// SetRoutes makes routes, via gw, exactly the IPv6 routes xdprouter
// keeps in the main table through the netdev name: new ones first, then
// the stale ones removed (make before break). It says whether it changed
// any.
func (NetlinkVXLANDevs) SetRoutes(name string, gw netip.Addr, routes []netip.Prefix) (bool, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return false, fmt.Errorf("vxlan netdev %q: %w", name, err)
	}
	have, err := netlink.RouteListFiltered(netlink.FAMILY_V6,
		&netlink.Route{LinkIndex: l.Attrs().Index, Protocol: rtprotXDPRouter},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return false, fmt.Errorf("list routes via %q: %w", name, err)
	}
	changed := false
	for _, p := range routes {
		if slices.ContainsFunc(have, func(r netlink.Route) bool { return netlinkPrefix(r.Dst) == p && r.Gw.Equal(gw.AsSlice()) }) {
			continue
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice(), Protocol: rtprotXDPRouter,
			Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}}
		if err := netlink.RouteReplace(r); err != nil {
			return changed, fmt.Errorf("route %s via %s dev %s: %w", p, gw, name, err)
		}
		changed = true
	}
	for _, r := range have {
		if p := netlinkPrefix(r.Dst); !slices.Contains(routes, p) {
			if err := netlink.RouteDel(&r); err != nil {
				return changed, fmt.Errorf("remove route %s via %q: %w", p, name, err)
			}
			changed = true
		}
	}
	return changed, nil
}

// Owned lists the vxlan netdevs xdprouter made (by their mark).
func (NetlinkVXLANDevs) Owned() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list netdevs: %w", err)
	}
	var out []string
	for _, l := range links {
		if l.Type() == "vxlan" && l.Attrs().Alias == vxlanAlias {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

// Remove deletes the vxlan netdev name if xdprouter made it; its
// addresses and routes go with it.
func (NetlinkVXLANDevs) Remove(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		if errors.As(err, &netlink.LinkNotFoundError{}) {
			return nil
		}
		return fmt.Errorf("look up %q: %w", name, err)
	}
	if l.Attrs().Alias != vxlanAlias {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete vxlan netdev %q: %w", name, err)
	}
	return nil
}
