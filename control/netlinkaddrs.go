package control

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetlinkAddresses is Addresses on the real kernel.
type NetlinkAddresses struct{}

func toNetlinkAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
}

// Ensure adds p to ifname unless it is there already.
func (NetlinkAddresses) Ensure(ifname string, p netip.Prefix) (bool, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return false, fmt.Errorf("interface %q: %w", ifname, err)
	}
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	have, err := netlink.AddrList(link, family)
	if err != nil {
		return false, err
	}
	for _, a := range have {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			ones, _ := a.Mask.Size()
			if netip.PrefixFrom(ip.Unmap(), ones) == p {
				return false, nil
			}
		}
	}
	return true, netlink.AddrAdd(link, toNetlinkAddr(p))
}

// Remove deletes p from ifname.
func (NetlinkAddresses) Remove(ifname string, p netip.Prefix) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %q: %w", ifname, err)
	}
	return netlink.AddrDel(link, toNetlinkAddr(p))
}

// NetlinkMulticast is Multicast on the real kernel.
type NetlinkMulticast struct{}

// AllMulticast sets IFF_ALLMULTI on ifname.
func (NetlinkMulticast) AllMulticast(ifname string) (bool, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return false, fmt.Errorf("interface %q: %w", ifname, err)
	}
	if link.Attrs().RawFlags&unix.IFF_ALLMULTI != 0 {
		return false, nil
	}
	return true, netlink.LinkSetAllmulticastOn(link)
}

// NetlinkLinks is Links on the real kernel.
type NetlinkLinks struct{}

// Exists says whether ifname is a network interface here.
func (NetlinkLinks) Exists(ifname string) (bool, error) {
	_, err := netlink.LinkByName(ifname)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("interface %q: %w", ifname, err)
	}
	return true, nil
}

// NetlinkOwnAddrs is OwnAddrs on the real kernel.
type NetlinkOwnAddrs struct{}

// Global returns the global IPv6 addresses on ifname, tentative ones
// included (they become the router's once DAD is done), those that failed
// DAD not (another node has them).
func (NetlinkOwnAddrs) Global(ifname string) ([]netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", ifname, err)
	}
	have, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", ifname, err)
	}
	var out []netip.Addr
	for _, a := range have {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.Scope != unix.RT_SCOPE_UNIVERSE || a.Flags&unix.IFA_F_DADFAILED != 0 {
			continue
		}
		out = append(out, ip)
	}
	return out, nil
}
