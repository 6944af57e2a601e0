package loader

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// XDP features a driver advertises (enum netdev_xdp_act, linux/netdev.h),
// read through the "netdev" generic netlink family (Linux 6.3+).
const (
	XDPActBasic     uint64 = 1 << 0
	XDPActRedirect  uint64 = 1 << 1
	XDPActNDOXmit   uint64 = 1 << 2
	XDPActRxSG      uint64 = 1 << 5 // the driver hands multi-buffer frames to an xdp.frags program
	XDPActNDOXmitSG uint64 = 1 << 6 // the driver transmits multi-buffer frames redirected to it
)

// linux/netdev.h
const (
	netdevCmdDevGet       = 1
	netdevADevIfindex     = 1
	netdevADevXDPFeatures = 3
)

// genlHeader is struct genlmsghdr with its reserved field zero. (nl.Genlmsg
// serializes four octets from a two-octet struct, and the netdev family
// rejects a request whose reserved field is not zero with EINVAL.)
type genlHeader struct{ cmd, version uint8 }

func (h genlHeader) Len() int          { return nl.SizeofGenlmsg }
func (h genlHeader) Serialize() []byte { return []byte{h.cmd, h.version, 0, 0} }

// ErrNoXDPFeatures: the kernel does not report XDP features (before 6.3).
var ErrNoXDPFeatures = errors.New("the kernel does not report XDP features (no netdev netlink family, Linux 6.3+)")

// XDPFeatures returns the NETDEV_XDP_ACT_* flags of the interface ifindex
// in the calling thread's network namespace.
func XDPFeatures(ifindex int) (uint64, error) {
	fam, err := netlink.GenlFamilyGet("netdev")
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoXDPFeatures, err)
	}
	req := nl.NewNetlinkRequest(int(fam.ID), 0)
	req.AddData(genlHeader{cmd: netdevCmdDevGet, version: 1})
	req.AddData(nl.NewRtAttr(netdevADevIfindex, nl.Uint32Attr(uint32(ifindex))))
	msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if err != nil {
		return 0, fmt.Errorf("netdev dev-get ifindex %d: %w", ifindex, err)
	}
	for _, m := range msgs {
		if len(m) < nl.SizeofGenlmsg {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
		if err != nil {
			return 0, fmt.Errorf("netdev dev-get ifindex %d: %w", ifindex, err)
		}
		for _, a := range attrs {
			if a.Attr.Type == netdevADevXDPFeatures && len(a.Value) == 8 {
				return binary.NativeEndian.Uint64(a.Value), nil
			}
		}
	}
	return 0, fmt.Errorf("netdev dev-get ifindex %d: no xdp-features in the answer", ifindex)
}

// TransmitsMultiBuffer says whether XDP may redirect a multi-buffer (jumbo)
// frame to the interface ifindex: its driver advertises NDO_XMIT_SG. A
// veth always can when it can take redirects at all: it sets NDO_XMIT and
// NDO_XMIT_SG together, while its peer has NAPI (GRO or an XDP program),
// and reports neither otherwise, which is the veth-peer check's business.
// Unknown (a kernel before 6.3) is no: such frames are left to the kernel.
func TransmitsMultiBuffer(ifindex int) (bool, string) {
	if l, err := netlink.LinkByIndex(ifindex); err == nil && l.Type() == "veth" {
		return true, "veth"
	}
	f, err := XDPFeatures(ifindex)
	if err != nil {
		return false, err.Error()
	}
	if f&XDPActNDOXmitSG == 0 {
		return false, "the driver does not advertise ndo-xmit-sg"
	}
	return true, "ndo-xmit-sg"
}

// putTxPort makes ifindex an egress port of XDP's redirects
// (xdpr_tx_ports) and, when its driver transmits multi-buffer frames, of
// jumbo frames too (xdpr_tx_ports_mb). It says which, and if not, why.
func putTxPort(maps *routerMaps, ifindex int) (bool, string, error) {
	if err := maps.XdprTxPorts.Put(uint32(ifindex), uint32(ifindex)); err != nil {
		return false, "", fmt.Errorf("add interface %d to xdpr_tx_ports: %w", ifindex, err)
	}
	mb, why := TransmitsMultiBuffer(ifindex)
	if !mb {
		// A port re-attached after a driver change must not keep it.
		if err := maps.XdprTxPortsMb.Delete(uint32(ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return false, why, fmt.Errorf("remove interface %d from xdpr_tx_ports_mb: %w", ifindex, err)
		}
		return false, why, nil
	}
	if err := maps.XdprTxPortsMb.Put(uint32(ifindex), uint32(ifindex)); err != nil {
		return false, why, fmt.Errorf("add interface %d to xdpr_tx_ports_mb: %w", ifindex, err)
	}
	return true, why, nil
}
