package loader

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/cilium/ebpf"
	"github.com/xdprouter/xdprouter/loader/vethnapi"
)

// TXPath is how frames reach the wire through an attached port (enum
// xdpr_tx_path): a veth takes frames from XDP only into its peer's NAPI,
// which exists while the peer has GRO on or an XDP program, and flushes
// XDP_TX frames only to a peer that runs XDP (see vethnapi).
type TXPath string

const (
	// TXXDP: XDP_TX answers, redirects in (a NIC).
	TXXDP TXPath = "xdp_tx"
	// TXRedirect: a veth whose peer has NAPI; answers leave by a redirect
	// to the port, which flushes to the peer, where XDP_TX frames would
	// wait for the peer's next NAPI run unless it runs XDP.
	TXRedirect TXPath = "redirect"
	// TXKernel: a veth whose peer has no NAPI, which XDP cannot reach. The
	// port is out of xdpr_tx_ports and xdpr_tx_ports_mb, so what XDP would
	// redirect there, of any size, is forwarded by the kernel; NDP proxy
	// answers leave through the TC reply program; ICMP errors XDP would
	// send come from the kernel.
	TXKernel TXPath = "kernel"
)

func (p TXPath) value() uint8 {
	switch p {
	case TXRedirect:
		return uint8(routerXdprTxPathXDPR_TX_REDIRECT)
	case TXKernel:
		return uint8(routerXdprTxPathXDPR_TX_KERNEL)
	}
	return uint8(routerXdprTxPathXDPR_TX_XDP)
}

func txPathOf(v uint8) TXPath {
	switch routerXdprTxPath(v) {
	case routerXdprTxPathXDPR_TX_REDIRECT:
		return TXRedirect
	case routerXdprTxPathXDPR_TX_KERNEL:
		return TXKernel
	}
	return TXXDP
}

// txPlan is the transmit path what the kernel says of a port calls for.
type txPlan struct {
	path TXPath
	note string // why, for people
	warn bool   // attach and status warn about it
}

// planTX inspects the port ifindex of this namespace.
func planTX(ifindex int) (txPlan, error) {
	p, err := vethnapi.InspectIndex(ifindex)
	if err != nil {
		return txPlan{}, fmt.Errorf("inspect ifindex %d for its transmit path: %w", ifindex, err)
	}
	return planFor(p), nil
}

// planFor chooses the transmit path for what Inspect found. A veth whose
// peer cannot be told about is put on the kernel path: what XDP sends to
// a peer without NAPI is lost, what the kernel forwards is not.
func planFor(p vethnapi.Port) txPlan {
	if !p.Veth {
		return txPlan{path: TXXDP}
	}
	peer := p.Peer
	if peer == "" {
		peer = "PEER"
	}
	switch p.NAPI {
	case vethnapi.No:
		return txPlan{path: TXKernel, warn: true, note: "veth peer has no NAPI (neither GRO nor an XDP program): " +
			"XDP cannot transmit to it, so what is routed out of " + p.Name + " goes through the kernel, " +
			"NDP proxy answers through TC and ICMP errors come from the kernel, off the fast path; " +
			"`ethtool -K " + peer + " gro on` on the peer, or any XDP program there, restores it"}
	case vethnapi.Yes:
		return txPlan{path: TXRedirect, note: "veth peer has NAPI (GRO or an XDP program): answers leave by redirect"}
	}
	why := "this kernel reports no xdp-features"
	if p.UnknownWhy != "" {
		why += "; " + p.UnknownWhy
	}
	return txPlan{path: TXKernel, warn: true, note: "cannot tell whether the veth peer has NAPI (" + why + "): " +
		"what XDP sent to " + p.Name + " would be lost if it had neither GRO nor an XDP program, so what is routed " +
		"out of it goes through the kernel, off the fast path; run xdprouter where it can open the peer's network " +
		"namespace (named in /run/netns or held by a process it sees), or on Linux 6.3 or later, to restore it"}
}

// replyProgram is the TC half of answering on a TXKernel port (tc_reply.h).
type replyProgram struct {
	XdprTcReply *ebpf.Program `ebpf:"xdpr_tc_reply"`
}

func loadReplyProgram(maps *routerMaps) (*ebpf.Program, error) {
	spec, err := compatSpec(ProbeKernel())
	if err != nil {
		return nil, err
	}
	var p replyProgram
	if err := spec.LoadAndAssign(&p, &ebpf.CollectionOptions{MapReplacements: maps.replacements()}); err != nil {
		return nil, fmt.Errorf("load TC reply program: %w", err)
	}
	return p.XdprTcReply, nil
}

const replyKind = "tc_reply"

// applyTX puts the port of entry on path, in an order in which no packet
// finds XDP handing an answer to a TC program that is not there yet, or a
// redirect armed toward a port XDP cannot reach: for TXKernel the TC reply
// program first, then the path, then out of the devmaps (setTxPorts);
// otherwise back into them, the path, and the TC program goes. entry is
// updated. It says, as setTxPorts, whether the port takes multi-buffer
// frames from XDP, and if not, why.
func (d *Dataplane) applyTX(entry *routerXdprIface, path TXPath) (bool, string, error) {
	ifindex := int(entry.Ifindex)
	next := *entry
	next.TxPath = path.value()
	if path == TXKernel {
		// Every reconcile pass attaches every port again: the program is
		// loaded (and verified) only when this process has not seen the
		// link run it yet.
		pin := d.pinPath(replyKind, ifindex)
		if !stillVerified(replyKind, pin) {
			prog, err := loadReplyProgram(&d.maps)
			if err != nil {
				return false, "", err
			}
			defer prog.Close()
			// Ahead of the other TC programs (NPT's would translate an
			// answer whose destination is in the outside prefix).
			if _, err := d.attachTC(replyKind, ifindex, prog); err != nil {
				return false, "", err
			}
			remember(pin, replyKind)
		}
		if err := d.putIface(next); err != nil {
			return false, "", err
		}
		mb, why, err := setTxPorts(&d.maps, ifindex, path)
		if err != nil {
			return false, "", err
		}
		*entry = next
		return mb, why, nil
	}
	mb, why, err := setTxPorts(&d.maps, ifindex, path)
	if err != nil {
		return false, "", err
	}
	if err := d.putIface(next); err != nil {
		return false, "", err
	}
	*entry = next
	pin := d.pinPath(replyKind, ifindex)
	if _, err := os.Stat(pin); err == nil {
		return mb, why, unpinLink(pin)
	}
	return mb, why, nil
}

// TXChange is a port whose transmit path RefreshTX changed.
type TXChange struct {
	Interface string `json:"interface"`
	From      TXPath `json:"from"`
	To        TXPath `json:"to"`
	Note      string `json:"note"`
}

func (c TXChange) String() string {
	return fmt.Sprintf("%s: transmit path %s -> %s (%s)", c.Interface, c.From, c.To, c.Note)
}

// RefreshTX inspects every attached port again and moves each to the
// transmit path its peer now calls for: a veth's peer may gain or lose GRO
// or an XDP program at any time (its own side attaching or detaching a
// program), and losing both makes everything XDP sends there lost.
func (d *Dataplane) RefreshTX() ([]TXChange, error) {
	ifaces, err := d.ifaces()
	if err != nil {
		return nil, err
	}
	var out []TXChange
	var errs []error
	for _, e := range ifaces {
		ifc, err := net.InterfaceByIndex(int(e.Ifindex))
		if err != nil {
			continue // gone; status says so
		}
		plan, err := planTX(ifc.Index)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		from := txPathOf(e.TxPath)
		if plan.path == from {
			continue
		}
		if _, _, err := d.applyTX(&e, plan.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ifc.Name, err))
			continue
		}
		out = append(out, TXChange{Interface: ifc.Name, From: from, To: plan.path, Note: plan.note})
	}
	return out, errors.Join(errs...)
}
