// Package vethnapi tells whether XDP can transmit through a veth.
//
// A veth hands the frames XDP sends through it (XDP_TX on it, a redirect
// to it) to its peer's NAPI, which exists only while the peer has GRO on or
// an XDP program; without it they are dropped (drivers/net/veth.c:
// veth_xdp_xmit), although the kernel's own forwarding reaches the peer
// fine. Since Linux 6.3 the kernel says so itself: a veth's xdp-features
// (generic netlink family "netdev") include ndo-xmit exactly when its peer
// has NAPI, and the devmap refuses a redirect to a device without it. That
// is read in the veth's own network namespace, wherever the peer is, and
// every change is announced there. Older kernels leave only the peer to
// look at: in this namespace, or in its own when this process can open it
// (peerElsewhere).
//
// The router's loader and its doctor both decide from Inspect. XDPFeatures
// is also the one reader of any device's xdp-features (multi-buffer
// receive and transmit, for a jumbo MTU), and Watch follows their changes.
package vethnapi

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// NAPI says whether a veth's peer has NAPI.
type NAPI string

const (
	Unknown NAPI = "unknown"
	Yes     NAPI = "yes"
	No      NAPI = "no"
)

// Port is what Inspect found out about one interface.
type Port struct {
	Name string
	Veth bool
	// NAPI, for a veth: whether its peer has NAPI; Source where that
	// came from ("xdp-features", "peer"), "" when Unknown, and then
	// UnknownWhy says why when it is known.
	NAPI       NAPI
	Source     string
	UnknownWhy string
	// The peer: PeerOtherNS when it is in another namespace; Peer, its
	// state and name, when it could be read (on a kernel without
	// xdp-features also from another namespace).
	Peer        string
	PeerGRO     bool
	PeerXDP     string // XDPMode of the peer
	PeerOtherNS bool
}

// XDP attach modes as netlink reports them (XDPMode).
const (
	XDPNone    = ""
	XDPNative  = "native"
	XDPGeneric = "generic"
	XDPOffload = "offload"
)

// XDPMode is how an XDP program is attached to the link, XDPNone for none.
func XDPMode(a *netlink.LinkAttrs) string {
	if a.Xdp == nil || (!a.Xdp.Attached && a.Xdp.ProgId == 0) {
		return XDPNone
	}
	switch a.Xdp.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		return XDPNative
	case nl.XDP_ATTACHED_SKB:
		return XDPGeneric
	case nl.XDP_ATTACHED_HW:
		return XDPOffload
	}
	return "attached"
}

// Inspect looks at l, with peer finding a link of this namespace by
// index (nil: netlink's). A failure to read the xdp-features of a kernel
// that has them is an error; everything else unknown is Unknown.
func Inspect(l netlink.Link, peer func(index int) (netlink.Link, error)) (Port, error) {
	return inspect(l, peer, XDPFeatures, peerElsewhere)
}

// inspect is Inspect with the kernel's two other answers as arguments:
// the xdp-features of a device, and the state of a peer in another
// namespace.
func inspect(l netlink.Link, peer func(index int) (netlink.Link, error), features func(ifindex int) (uint64, error),
	elsewhere func(nsid, index int) (string, bool, string, error)) (Port, error) {
	a := l.Attrs()
	p := Port{Name: a.Name, NAPI: Unknown}
	if l.Type() != "veth" {
		return p, nil
	}
	p.Veth = true
	if peer == nil {
		peer = netlink.LinkByIndex
	}
	if a.NetNsID >= 0 {
		p.PeerOtherNS = true
	} else if pl, err := peer(a.ParentIndex); err == nil {
		p.Peer = pl.Attrs().Name
		p.PeerXDP = XDPMode(pl.Attrs())
		p.PeerGRO, _ = GRO(p.Peer)
	}
	feat, err := features(a.Index)
	if errors.Is(err, ErrNoXDPFeatures) && p.PeerOtherNS {
		var perr error
		if p.Peer, p.PeerGRO, p.PeerXDP, perr = elsewhere(a.NetNsID, a.ParentIndex); perr != nil {
			p.Peer, p.UnknownWhy = "", perr.Error()
		}
	}
	switch {
	case err == nil:
		p.NAPI, p.Source = No, "xdp-features"
		if feat&NDOXmit != 0 {
			p.NAPI = Yes
		}
	case !errors.Is(err, ErrNoXDPFeatures):
		return p, err
	case p.Peer != "":
		p.NAPI, p.Source = No, "peer"
		if p.PeerGRO || p.PeerXDP != XDPNone {
			p.NAPI = Yes
		}
	}
	return p, nil
}

// InspectIndex is Inspect of the link ifindex of this namespace.
func InspectIndex(ifindex int) (Port, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return Port{}, fmt.Errorf("read link %d: %w", ifindex, err)
	}
	return Inspect(l, nil)
}
