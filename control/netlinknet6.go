package control

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xdprouter/xdprouter/control/learned"
	"golang.org/x/sys/unix"
)

// defaultMetric is xdprouter's default route metric: below the kernel's
// own RA routes (1024), so with accept_ra=2 both may exist and ours, which
// follows every RA, wins; a kernel route expiring is then harmless.
const defaultMetric = 1023

// NetlinkNet6 is Net6 on the real kernel.
type NetlinkNet6 struct{}

// EnsureAddr adds a with its remaining lifetimes, which the kernel counts
// down by itself: if the daemon stops, the address still ends when the
// ISP's lifetime does. IFA_F_NODAD: the router's own addresses are in use
// at once (the tunnel's local address, the LAN router address), not after
// a second of duplicate address detection.
func (NetlinkNet6) EnsureAddr(a Addr6, now time.Time) (string, error) {
	link, err := netlink.LinkByName(a.Interface)
	if err != nil {
		return "", fmt.Errorf("interface %q: %w", a.Interface, err)
	}
	have, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return "", err
	}
	res := "added"
	for _, h := range have {
		if netlinkPrefix(h.IPNet) == a.Prefix {
			res = "refreshed"
		}
	}
	valid, preferred := lftSeconds(a.Valid, now), lftSeconds(a.Preferred, now)
	if valid == 0 {
		// Under a second left: the kernel ends it in one; the task that
		// learned it withdraws it at its deadline.
		valid = 1
	}
	na := toNetlinkAddr(a.Prefix)
	na.Flags = unix.IFA_F_NODAD
	na.ValidLft, na.PreferedLft = valid, preferred
	if err := netlink.AddrReplace(link, na); err != nil {
		return "", err
	}
	return res, nil
}

// RemoveAddr deletes p from ifname; an address already gone (expired, or
// removed by hand) is not an error.
func (NetlinkNet6) RemoveAddr(ifname string, p netip.Prefix) error {
	link, err := netlink.LinkByName(ifname)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("interface %q: %w", ifname, err)
	}
	if err := netlink.AddrDel(link, toNetlinkAddr(p)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return err
	}
	return nil
}

// SetDefault replaces xdprouter's IPv6 default route in one step (never a
// moment without one while a router is live), or removes it.
func (NetlinkNet6) SetDefault(ifname string, gw netip.Addr) (string, error) {
	have, err := netlink.RouteListFiltered(netlink.FAMILY_V6,
		&netlink.Route{Protocol: rtprotXDPRouter, Dst: nil}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return "", fmt.Errorf("list routes: %w", err)
	}
	var ours []netlink.Route
	for _, r := range have {
		if r.Dst == nil || netlinkPrefix(r.Dst).Bits() == 0 {
			ours = append(ours, r)
		}
	}
	if !gw.IsValid() {
		for _, r := range ours {
			if err := netlink.RouteDel(&r); err != nil {
				return "", fmt.Errorf("remove default route via %s: %w", r.Gw, err)
			}
		}
		if len(ours) == 0 {
			return "unchanged", nil
		}
		return "removed", nil
	}
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return "", fmt.Errorf("interface %q: %w", ifname, err)
	}
	for _, r := range ours {
		if r.LinkIndex == link.Attrs().Index && r.Gw.Equal(gw.AsSlice()) && r.Priority == defaultMetric {
			return "unchanged", nil
		}
	}
	r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice(), Protocol: rtprotXDPRouter, Priority: defaultMetric,
		Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}
	if err := netlink.RouteReplace(r); err != nil {
		return "", err
	}
	return "set", nil
}

// SyncUnreachable makes xdprouter's unreachable IPv6 routes exactly want.
func (NetlinkNet6) SyncUnreachable(want []netip.Prefix) ([]Step, error) {
	have, err := netlink.RouteListFiltered(netlink.FAMILY_V6,
		&netlink.Route{Protocol: rtprotXDPRouter, Type: unix.RTN_UNREACHABLE}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TYPE)
	if err != nil {
		return nil, fmt.Errorf("list unreachable routes: %w", err)
	}
	var (
		steps []Step
		found []netip.Prefix
	)
	for _, r := range have {
		p := netlinkPrefix(r.Dst)
		if slices.Contains(want, p) {
			found = append(found, p)
			continue
		}
		if err := netlink.RouteDel(&r); err != nil {
			return steps, fmt.Errorf("remove unreachable route %s: %w", p, err)
		}
		steps = append(steps, Step{What: "unreachable route " + p.String(), Result: "removed"})
	}
	for _, p := range want {
		if slices.Contains(found, p) {
			steps = append(steps, Step{What: "unreachable route " + p.String(), Result: "unchanged"})
			continue
		}
		r := &netlink.Route{Type: unix.RTN_UNREACHABLE, Protocol: rtprotXDPRouter, Priority: defaultMetric,
			Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}}
		if err := netlink.RouteReplace(r); err != nil {
			return steps, fmt.Errorf("unreachable route %s: %w", p, err)
		}
		steps = append(steps, Step{What: "unreachable route " + p.String(), Result: "added"})
	}
	return steps, nil
}

func netlinkPrefix(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

// lftSeconds is the lifetime left as the kernel takes it: seconds, with
// 0xffffffff for infinite.
func lftSeconds(deadline, now time.Time) int {
	d := learned.Remaining(deadline, now)
	if d == learned.Infinite {
		return math.MaxUint32
	}
	return int(d / time.Second)
}
