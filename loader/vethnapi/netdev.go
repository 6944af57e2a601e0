package vethnapi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The generic netlink family "netdev" (include/uapi/linux/netdev.h, Linux
// 6.3 onwards); Debian 12's headers predate it.
const (
	netdevFamily       = "netdev"
	netdevGroupMgmt    = "mgmt"
	netdevCmdDevGet    = 1
	netdevAttrIfindex  = 1
	netdevAttrXDPFeats = 3
)

// Bits of xdp-features (enum netdev_xdp_act).
const (
	// Basic: XDP_PASS, XDP_DROP, XDP_ABORTED and XDP_TX.
	Basic = 1 << 0
	// Redirect: the driver's XDP may redirect frames elsewhere.
	Redirect = 1 << 1
	// NDOXmit: the device takes frames redirected to it by XDP (for a
	// veth: its peer has NAPI).
	NDOXmit = 1 << 2
	// RxSG: the driver hands multi-buffer frames to an xdp.frags program
	// (native XDP at an MTU beyond one buffer).
	RxSG = 1 << 5
	// NDOXmitSG: the device takes multi-buffer frames redirected to it
	// (a veth sets it with NDOXmit).
	NDOXmitSG = 1 << 6
)

// ErrNoXDPFeatures: the kernel has no netdev family (before 6.3).
var ErrNoXDPFeatures = errors.New("the kernel reports no XDP features (netdev netlink family, Linux 6.3)")

func family() (*netlink.GenlFamily, error) {
	f, err := netlink.GenlFamilyGet(netdevFamily)
	if errors.Is(err, unix.ENOENT) {
		return nil, ErrNoXDPFeatures
	}
	if err != nil {
		return nil, fmt.Errorf("generic netlink family %s: %w", netdevFamily, err)
	}
	return f, nil
}

// Available says whether the kernel reports xdp-features: nil, or
// ErrNoXDPFeatures before 6.3.
func Available() error {
	_, err := family()
	return err
}

// XDPFeatures returns the xdp-features the kernel reports for the device
// ifindex of this namespace (NETDEV_XDP_ACT_* bits).
func XDPFeatures(ifindex int) (uint64, error) {
	f, err := family()
	if err != nil {
		return 0, err
	}
	req := nl.NewNetlinkRequest(int(f.ID), 0)
	req.AddData(genlHeader{cmd: netdevCmdDevGet, version: 1})
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, uint32(ifindex))
	req.AddData(nl.NewRtAttr(netdevAttrIfindex, b))
	msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if err != nil {
		return 0, fmt.Errorf("xdp-features of ifindex %d: %w", ifindex, err)
	}
	for _, m := range msgs {
		if feat, ok := xdpFeatures(m); ok {
			return feat, nil
		}
	}
	return 0, fmt.Errorf("xdp-features of ifindex %d: not in the kernel's answer", ifindex)
}

// genlHeader is struct genlmsghdr. nl.Genlmsg serializes 4 bytes from its
// 2-byte struct, so its reserved field is whatever follows in memory, and
// the kernel refuses a non-zero one (EINVAL).
type genlHeader struct{ cmd, version uint8 }

func (h genlHeader) Len() int          { return 4 }
func (h genlHeader) Serialize() []byte { return []byte{h.cmd, h.version, 0, 0} }

// xdpFeatures reads the xdp-features attribute of a netdev message (the
// genetlink header, then attributes).
func xdpFeatures(msg []byte) (uint64, bool) {
	if len(msg) < 4 {
		return 0, false
	}
	attrs, err := nl.ParseRouteAttr(msg[4:])
	if err != nil {
		return 0, false
	}
	for _, a := range attrs {
		if a.Attr.Type == netdevAttrXDPFeats && len(a.Value) == 8 {
			return binary.NativeEndian.Uint64(a.Value), true
		}
	}
	return 0, false
}

// Change is one announcement of the netdev family.
type Change struct {
	Ifindex int
	// XDPFeatures as announced; Known is false for a device removed.
	XDPFeatures uint64
	Known       bool
}

func changeOf(msg []byte) (Change, bool) {
	if len(msg) < 4 {
		return Change{}, false
	}
	attrs, err := nl.ParseRouteAttr(msg[4:])
	if err != nil {
		return Change{}, false
	}
	var c Change
	found := false
	for _, a := range attrs {
		switch {
		case a.Attr.Type == netdevAttrIfindex && len(a.Value) == 4:
			c.Ifindex, found = int(binary.NativeEndian.Uint32(a.Value)), true
		case a.Attr.Type == netdevAttrXDPFeats && len(a.Value) == 8:
			c.XDPFeatures, c.Known = binary.NativeEndian.Uint64(a.Value), true
		}
	}
	return c, found
}

// Watch calls changed for every device of this namespace whose netdev
// attributes (xdp-features among them) the kernel announces as changed,
// added or removed, until ctx ends. A veth's peer gaining or
// losing GRO or an XDP program is announced for the veth, even when the
// peer is in another namespace. It returns ErrNoXDPFeatures on kernels
// without the family.
func Watch(ctx context.Context, changed func(Change)) error {
	f, err := family()
	if err != nil {
		return err
	}
	var group uint32
	for _, g := range f.Groups {
		if g.Name == netdevGroupMgmt {
			group = g.ID
		}
	}
	if group == 0 {
		return fmt.Errorf("generic netlink family %s has no %s group", netdevFamily, netdevGroupMgmt)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(group)); err != nil {
		return fmt.Errorf("join %s/%s: %w", netdevFamily, netdevGroupMgmt, err)
	}
	// A timeout lets the loop see ctx end without another goroutine.
	tv := unix.NsecToTimeval((500 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("netlink socket timeout: %w", err)
	}
	buf := make([]byte, 1<<16)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s notifications: %w", netdevFamily, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("parse %s notification: %w", netdevFamily, err)
		}
		for _, m := range msgs {
			if m.Header.Type != f.ID {
				continue
			}
			if c, ok := changeOf(m.Data); ok {
				changed(c)
			}
		}
	}
	return nil
}
