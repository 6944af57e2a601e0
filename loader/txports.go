package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/xdprouter/xdprouter/loader/vethnapi"
)

// SingleBufferMTU is the largest MTU whose frames XDP gets in one buffer on
// a veth (a 4 KiB page less headroom and skb_shared_info; drivers differ a
// little). Beyond it the program works multi-buffer (xdp.frags).
const SingleBufferMTU = 3498

// TransmitsMultiBuffer says whether XDP may redirect a multi-buffer (jumbo)
// frame to the interface ifindex: its driver advertises ndo-xmit-sg. A
// veth always can when it can take redirects at all: it sets ndo-xmit and
// ndo-xmit-sg together, while its peer has NAPI (GRO or an XDP program),
// and reports neither otherwise, which is the transmit path's business
// (a TXKernel port is in neither devmap). A kernel without xdp-features
// (before 6.3) refuses every redirect of a multi-buffer frame to a device
// (xdp_do_redirect: -EOPNOTSUPP outside a cpumap), veth or not: such
// frames are left to the kernel.
func TransmitsMultiBuffer(ifindex int) (bool, string) {
	kind := ""
	if l, err := netlink.LinkByIndex(ifindex); err == nil {
		kind = l.Type()
	}
	return transmitsMultiBuffer(kind, ifindex, vethnapi.XDPFeatures)
}

// noMultiBufferRedirect is why a kernel before 6.3 takes no multi-buffer
// frame from XDP.
const noMultiBufferRedirect = "this kernel (before 6.3, no xdp-features) redirects no multi-buffer frame"

func transmitsMultiBuffer(kind string, ifindex int, features func(int) (uint64, error)) (bool, string) {
	f, err := features(ifindex)
	switch {
	case errors.Is(err, vethnapi.ErrNoXDPFeatures):
		return false, noMultiBufferRedirect
	case kind == "veth":
		return true, "veth"
	case err != nil:
		return false, err.Error()
	case f&vethnapi.NDOXmitSG == 0:
		return false, "the driver does not advertise ndo-xmit-sg"
	}
	return true, "ndo-xmit-sg"
}

// setTxPorts makes ifindex an egress port of XDP's redirects as path
// calls for: on TXKernel in neither devmap, the multi-buffer one first (a
// jumbo frame must never find the port there when a small one would not);
// otherwise in xdpr_tx_ports and, when its driver transmits multi-buffer
// frames, in xdpr_tx_ports_mb too. It says whether the port takes
// multi-buffer frames from XDP, and if not, why.
func setTxPorts(maps *routerMaps, ifindex int, path TXPath) (bool, string, error) {
	key := uint32(ifindex)
	delMB := func() error {
		if err := maps.XdprTxPortsMb.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("take ifindex %d out of xdpr_tx_ports_mb: %w", ifindex, err)
		}
		return nil
	}
	if path == TXKernel {
		if err := delMB(); err != nil {
			return false, "", err
		}
		if err := maps.XdprTxPorts.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return false, "", fmt.Errorf("take ifindex %d out of xdpr_tx_ports: %w", ifindex, err)
		}
		return false, "transmit path kernel", nil
	}
	if err := maps.XdprTxPorts.Put(key, key); err != nil {
		return false, "", fmt.Errorf("add ifindex %d to xdpr_tx_ports: %w", ifindex, err)
	}
	mb, why := TransmitsMultiBuffer(ifindex)
	if !mb {
		// A port re-attached after a driver change must not keep it.
		return false, why, delMB()
	}
	if err := maps.XdprTxPortsMb.Put(key, key); err != nil {
		return false, why, fmt.Errorf("add ifindex %d to xdpr_tx_ports_mb: %w", ifindex, err)
	}
	return true, why, nil
}

// jumboNote is what attach says about an MTU beyond one buffer: whether
// frames larger than one buffer, routed out of this port, are redirected
// in XDP or left to the kernel (whyNot: why the port cannot send them).
// Nothing for a port on the kernel transmit path: everything routed out
// of it is the kernel's, which its transmit-path warning says.
func jumboNote(mtu int, path TXPath, mb bool, whyNot string) string {
	switch {
	case mtu <= SingleBufferMTU || path == TXKernel:
		return ""
	case mb:
		return fmt.Sprintf("MTU %d: frames beyond one buffer are forwarded multi-buffer in XDP", mtu)
	}
	return fmt.Sprintf("MTU %d: frames beyond one buffer routed out of it are left to the kernel "+
		"(counted as pass_mb_egress): %s", mtu, whyNot)
}
