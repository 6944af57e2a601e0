package loader

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// AttachResult says what Attach did, for the user.
type AttachResult struct {
	Interface string
	Ifindex   int
	Role      Role
	Mode      string
	LinkID    uint32
	ProgramID uint32
	Action    string // "attached", "replaced program", "updated role", "unchanged", "reattached"
	Warning   string // something the user should know about this attachment
	// Jumbo says, for an MTU beyond one buffer, what becomes of frames
	// larger than one (see jumboNote); empty otherwise.
	Jumbo string
	// CTGate is the conntrack gate the program runs with (on or off),
	// CTGateReason why (auto's choice, or the caller's).
	CTGate       CTGate
	CTGateReason string
	// BeLiberal is set when this attach turned nf_conntrack_tcp_be_liberal
	// on (see ensureBeLiberal); the last detach turns it off again.
	BeLiberal bool
	// TX is how frames reach the wire through the port, TXNote why;
	// TXWarning when that costs the fast path or cannot be told (the note
	// is then in Warning too).
	TX        TXPath
	TXNote    string
	TXWarning bool
}

// vethChecksumWarning: a local stack sending through a veth leaves the L4
// checksum to "offload" (CHECKSUM_PARTIAL); XDP sees only bytes, so a frame
// it redirects leaves with the partial checksum. Kernel forwarding and
// generic mode complete it. Physical NICs deliver complete checksums.
const vethChecksumWarning = "native XDP on a veth: the peer must complete its own checksums " +
	"(`ethtool -K PEER tx off` on the other end), or TCP/UDP it sends arrive with bad checksums when forwarded in XDP"

// CheckInterface reports whether ifname exists and can carry the data plane.
func CheckInterface(ifname string) (*net.Interface, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %q not found", ifname)
	}
	if len(ifc.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %q has no Ethernet address: the data plane forwards Ethernet frames", ifname)
	}
	if l, err := netlink.LinkByIndex(ifc.Index); err == nil {
		if err := unsupportedKind(ifname, l); err != nil {
			return nil, err
		}
	}
	return ifc, nil
}

// unsupportedKind refuses the netdevs XDP cannot serve as a port. An
// 802.1Q VLAN device has no native XDP, and in generic mode what XDP
// redirects out of it is lost (the kernel matrix's TestVLAN, on Debian's
// 6.1 and 6.12): the kernel forwarded it before attach. On the VLAN's
// lower link the program passes tagged frames to the kernel (pass_vlan),
// which carries them as before.
func unsupportedKind(ifname string, l netlink.Link) error {
	if v, ok := l.(*netlink.Vlan); ok {
		lower := fmt.Sprintf("ifindex %d", v.ParentIndex)
		if p, err := netlink.LinkByIndex(v.ParentIndex); err == nil {
			lower = p.Attrs().Name
		}
		return fmt.Errorf("interface %q is an 802.1Q VLAN device (id %d on %s): xdprouter does not attach to VLAN devices yet "+
			"(generic XDP there would lose what it forwards); attach %s, whose tagged frames go to the kernel, or leave the VLAN to the kernel",
			ifname, v.VlanId, lower, lower)
	}
	return nil
}

// Attach loads the XDP program, attaches it to ifname through a pinned
// bpf_link and records the interface in the maps. It is idempotent: the same
// call again changes nothing; a different role or conntrack gate replaces
// the program atomically (no packet sees neither), as does a new program
// object; a different mode re-attaches.
//
// gate chooses the conntrack gate (CTGateAuto is resolved by ResolveCTGate
// in the calling thread's network namespace). With the gate on, Attach also
// turns nf_conntrack_tcp_be_liberal on in that namespace if it is off.
func (d *Dataplane) Attach(ifname string, role Role, mode Mode, gate CTGate) (res AttachResult, err error) {
	res = AttachResult{Interface: ifname, Role: role}
	gate, res.CTGateReason, err = ResolveCTGate(gate)
	if err != nil {
		return res, err
	}
	res.CTGate = gate
	// A failed first attach must leave no maps or directory behind.
	defer func() {
		if err != nil {
			_ = d.removeMapPinsIfUnused()
		}
	}()
	ifc, err := CheckInterface(ifname)
	if err != nil {
		return res, err
	}
	res.Ifindex = ifc.Index

	kern := ProbeKernel()
	if gate.on() && !kern.ctKfuncs() {
		res.Warning = kern.ctKfuncsLine()
	}
	settings := fmt.Sprintf("xdp %s %s %s ct-gate %s", role, mode, ifc.HardwareAddr, gate)
	if prev, ok := d.iface(ifc.Index); ok && prev.Role == routerXdprRole(role) && prev.Mac == ifaceEntry(ifc, role, 0, gate).Mac &&
		prev.CtGate == gate.record(kern) && stillVerified(settings, d.linkPin(ifc.Index)) {
		res, err = d.unchanged(res, ifc, prev)
		if err == nil {
			err = d.useTX(&res, &prev, ifc.MTU)
		}
		if err == nil {
			d.keepLiberal(&res, prev)
		}
		return res, err
	}

	spec, err := portSpecFor(ifc.Index, ifc.HardwareAddr, role, gate, kern)
	if err != nil {
		return res, err
	}
	// Only the XDP program (and the maps it uses): the TC programs are
	// loaded where they attach, and each verification costs time.
	var objs struct {
		XdprMain *ebpf.Program `ebpf:"xdpr_main"`
	}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: d.dir}}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return res, fmt.Errorf("load XDP program: %w", err)
	}
	prog := objs.XdprMain
	defer prog.Close()

	prev, hadEntry := d.iface(ifc.Index)
	entry := ifaceEntry(ifc, role, prev.XdpMode, gate)
	entry.CtGate = gate.record(kern)
	entry.CtLiberal = prev.CtLiberal
	// What the port has in force until useTX below looks again.
	entry.TxPath = prev.TxPath
	// The entry goes in before the link so the first packet already finds it.
	if err := d.putIface(entry); err != nil {
		return res, err
	}
	undo := func() {
		if hadEntry {
			_ = d.putIface(prev)
			return
		}
		_ = d.deleteIface(ifc.Index)
	}

	// Program tags ignore the constants, so a new role, MAC or gate is a
	// change of program even when the code is the same.
	identity := hadEntry && prev.Role == entry.Role && prev.Mac == entry.Mac && prev.CtGate == entry.CtGate
	l, action, fallback, err := d.attachLink(ifc, prog, mode, prev, identity)
	if err != nil {
		undo()
		return res, err
	}
	defer l.Close()

	attachMode, err := xdpAttachMode(ifc.Index)
	if err != nil {
		undo()
		return res, err
	}
	entry.XdpMode = attachMode
	if err := d.putIface(entry); err != nil {
		return res, err
	}
	if action == "replaced program" && hadEntry && prev.Role != entry.Role {
		action = "updated role"
	}
	info, err := l.Info()
	if err != nil {
		return res, fmt.Errorf("link info for %q: %w", ifname, err)
	}
	res.Mode = modeName(attachMode)
	if nlink, err := netlink.LinkByIndex(ifc.Index); err == nil && nlink.Type() == "veth" &&
		attachMode == routerXdprXdpModeXDPR_MODE_NATIVE {
		res.Warning = strings.TrimPrefix(res.Warning+"; ", "; ") + vethChecksumWarning
	}
	if fallback != "" {
		res.Warning = strings.TrimPrefix(res.Warning+"; ", "; ") + fallback
	}
	res.LinkID = uint32(info.ID)
	res.ProgramID = uint32(info.Program)
	res.Action = action
	if err := d.useTX(&res, &entry, ifc.MTU); err != nil {
		return res, err
	}
	remember(d.linkPin(ifc.Index), settings)
	d.keepLiberal(&res, entry)
	return res, nil
}

// useTX inspects the port of entry and puts it on the transmit path its
// peer calls for (see TXPath) and into the devmaps that path and its
// driver call for, on every attach, an unchanged one's too (a link of an
// older version predates xdpr_tx_ports_mb). It records that in res: a
// warning when XDP cannot reach the peer or cannot tell, "updated
// transmit path" for an otherwise unchanged attachment whose path changed,
// and what becomes of frames beyond one buffer at the port's mtu.
func (d *Dataplane) useTX(res *AttachResult, entry *routerXdprIface, mtu int) error {
	plan, err := planTX(int(entry.Ifindex))
	if err != nil {
		return err
	}
	from := txPathOf(entry.TxPath)
	mb, whyNot, err := d.applyTX(entry, plan.path)
	if err != nil {
		return fmt.Errorf("%s: transmit path %s: %w", res.Interface, plan.path, err)
	}
	res.Jumbo = jumboNote(mtu, plan.path, mb, whyNot)
	res.TX, res.TXNote, res.TXWarning = plan.path, plan.note, plan.warn
	if plan.warn {
		res.Warning = strings.TrimPrefix(res.Warning+"; ", "; ") + plan.note
	}
	if from != plan.path && res.Action == "unchanged" {
		res.Action = "updated transmit path"
	}
	return nil
}

// keepLiberal turns nf_conntrack_tcp_be_liberal on for a gated attachment
// (see ensureBeLiberal) and records in its xdpr_ifaces entry that it did, so
// that the last detach restores it. A failure is a warning: forwarding
// works, only a TCP close after a long XDP-carried transfer may be judged
// INVALID by conntrack.
func (d *Dataplane) keepLiberal(res *AttachResult, entry routerXdprIface) {
	if !res.CTGate.on() {
		return
	}
	changed, err := ensureBeLiberal()
	if err != nil {
		res.Warning = strings.TrimPrefix(res.Warning+"; ", "; ") + err.Error()
		return
	}
	if !changed {
		return
	}
	res.BeLiberal = true
	entry.CtLiberal = 1
	if err := d.putIface(entry); err != nil {
		res.Warning = strings.TrimPrefix(res.Warning+"; ", "; ") + err.Error()
	}
}

// releaseLiberal runs before ifindex's entry goes: if that attachment turned
// nf_conntrack_tcp_be_liberal on, another attached interface takes the duty
// of restoring it, or, when none is left, it is turned off again.
func (d *Dataplane) releaseLiberal(ifindex int) error {
	v, ok := d.iface(ifindex)
	if !ok || v.CtLiberal == 0 {
		return nil
	}
	ifaces, err := d.ifaces()
	if err != nil {
		return err
	}
	for _, o := range ifaces {
		if int(o.Ifindex) != ifindex {
			if o.CtLiberal != 0 {
				return nil
			}
			o.CtLiberal = 1
			return d.putIface(o)
		}
	}
	return restoreBeLiberal()
}

// unchanged is the result for a link this process already attached or
// adopted, still as wanted (see verified).
func (d *Dataplane) unchanged(res AttachResult, ifc *net.Interface, prev routerXdprIface) (AttachResult, error) {
	l, err := link.LoadPinnedLink(d.linkPin(ifc.Index), nil)
	if err != nil {
		return res, fmt.Errorf("load pinned link of %q: %w", ifc.Name, err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return res, fmt.Errorf("link info for %q: %w", ifc.Name, err)
	}
	res.Mode = modeName(prev.XdpMode)
	if nlink, err := netlink.LinkByIndex(ifc.Index); err == nil && nlink.Type() == "veth" &&
		prev.XdpMode == routerXdprXdpModeXDPR_MODE_NATIVE {
		res.Warning = strings.TrimPrefix(res.Warning+"; ", "; ") + vethChecksumWarning
	}
	res.LinkID, res.ProgramID, res.Action = uint32(info.ID), uint32(info.Program), "unchanged"
	return res, nil
}

// attachLink returns the pinned link of ifc running prog's code, creating,
// updating or re-creating it as needed, what it did, and why a new link is
// in generic mode though native was possible (newLink).
func (d *Dataplane) attachLink(ifc *net.Interface, prog *ebpf.Program, mode Mode, prev routerXdprIface, sameIdentity bool) (link.Link, string, string, error) {
	pin := d.linkPin(ifc.Index)
	if old, err := link.LoadPinnedLink(pin, nil); err == nil {
		info, err := old.Info()
		switch {
		case err != nil || info.XDP() == nil || int(info.XDP().Ifindex) != ifc.Index:
			// Defunct (the interface went away) or not ours: start over.
			_ = old.Unpin()
			old.Close()
		case mode != ModeAuto && modeName(prev.XdpMode) != string(mode):
			if err := old.Unpin(); err != nil {
				old.Close()
				return nil, "", "", fmt.Errorf("unpin link of %q: %w", ifc.Name, err)
			}
			old.Close()
			l, fallback, err := d.newLink(ifc, prog, mode)
			return l, "reattached", fallback, err
		default:
			same, err := sameProgram(info.Program, prog)
			if err != nil {
				old.Close()
				return nil, "", "", err
			}
			if same && sameIdentity {
				return old, "unchanged", "", nil
			}
			if err := old.Update(prog); err != nil {
				old.Close()
				return nil, "", "", fmt.Errorf("replace program on %q: %w", ifc.Name, err)
			}
			return old, "replaced program", "", nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", "", fmt.Errorf("load pinned link %s: %w", pin, err)
	}
	l, fallback, err := d.newLink(ifc, prog, mode)
	return l, "attached", fallback, err
}

// newLink attaches prog to ifc and pins the link. In auto mode a driver
// that has native XDP but refuses this attachment gets the program in
// generic mode, which every device runs at every MTU: ENA (EC2) refuses
// native XDP above MTU 3498 whatever the program, where the kernel
// forwards jumbo frames fine. The second result says so.
func (d *Dataplane) newLink(ifc *net.Interface, prog *ebpf.Program, mode Mode) (link.Link, string, error) {
	var flags link.XDPAttachFlags
	switch mode {
	case ModeNative:
		flags = link.XDPDriverMode
	case ModeGeneric:
		flags = link.XDPGenericMode
	}
	var fallback string
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: flags})
	busy := err != nil && strings.Contains(err.Error(), "device or resource busy")
	if err != nil && !busy && mode == ModeAuto {
		if g, gerr := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: link.XDPGenericMode}); gerr == nil {
			fallback = fmt.Sprintf("native XDP refused (%v): attached in generic mode, which runs at any MTU but saves less; "+
				"see `xdprouter doctor`", err)
			l, err = g, nil
		}
	}
	if err != nil {
		if busy {
			return nil, "", fmt.Errorf("attach xdp to %q: another XDP program is attached, by another tool or by "+
				"xdprouter with another --bpffs (see `ip link show dev %s`): %w", ifc.Name, ifc.Name, err)
		}
		return nil, "", fmt.Errorf("attach xdp to %q in %s mode: %w", ifc.Name, mode, err)
	}
	if err := l.Pin(d.linkPin(ifc.Index)); err != nil {
		l.Close()
		return nil, "", fmt.Errorf("pin link of %q: %w", ifc.Name, err)
	}
	// Into the devmaps by useTX, once the peer is looked at.
	return l, fallback, nil
}

// sameProgram compares by tag (a hash of the instructions), which is what
// "the object changed" means for an upgrade.
func sameProgram(id ebpf.ProgramID, prog *ebpf.Program) (bool, error) {
	old, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return false, fmt.Errorf("open attached program %d: %w", id, err)
	}
	defer old.Close()
	oi, err := old.Info()
	if err != nil {
		return false, err
	}
	ni, err := prog.Info()
	if err != nil {
		return false, err
	}
	return oi.Tag == ni.Tag, nil
}

func xdpAttachMode(ifindex int) (routerXdprXdpMode, error) {
	nl, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return routerXdprXdpModeXDPR_MODE_UNKNOWN, fmt.Errorf("read XDP state of ifindex %d: %w", ifindex, err)
	}
	if x := nl.Attrs().Xdp; x != nil {
		switch x.AttachMode {
		case nlXDPDriver:
			return routerXdprXdpModeXDPR_MODE_NATIVE, nil
		case nlXDPGeneric:
			return routerXdprXdpModeXDPR_MODE_GENERIC, nil
		}
	}
	return routerXdprXdpModeXDPR_MODE_UNKNOWN, nil
}

const (
	nlXDPDriver  = nl.XDP_ATTACHED_DRV
	nlXDPGeneric = nl.XDP_ATTACHED_SKB
)

// Detach removes ifname's link and map entries. When it was the last
// interface, the maps and the directory go too.
func (d *Dataplane) Detach(ifname string) error {
	ifindex, err := d.ifindexOf(ifname)
	if err != nil {
		return err
	}
	if err := d.detachIndex(ifindex); err != nil {
		return err
	}
	return d.removeMapPinsIfUnused()
}

// DetachAll removes every link, map and pin in the directory.
func (d *Dataplane) DetachAll() error {
	if err := errors.Join(d.removeTunnelDevs(), d.removeKernelTunnelDevs()); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(d.dir, linksDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if err := removePin(d.dir, filepath.Join(d.dir, linksDir, e.Name())); err != nil {
			return err
		}
	}
	ifaces, err := d.ifaces()
	if err != nil {
		return err
	}
	liberal := false
	for _, ifc := range ifaces {
		liberal = liberal || ifc.CtLiberal != 0
		_ = d.deleteIface(int(ifc.Ifindex))
	}
	if liberal {
		if err := restoreBeLiberal(); err != nil {
			return err
		}
	}
	return d.removeMapPinsIfUnused()
}

// detachIndex removes every link pinned for ifindex (XDP and TC) and its
// map entries.
func (d *Dataplane) detachIndex(ifindex int) error {
	entries, err := os.ReadDir(filepath.Join(d.dir, linksDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	suffix := "_" + strconv.Itoa(ifindex)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), suffix) {
			if err := removePin(d.dir, filepath.Join(d.dir, linksDir, e.Name())); err != nil {
				return err
			}
		}
	}
	// NPT rules and proxied prefixes of a detached interface would only
	// linger in status.
	if err := d.deleteByIfindex(ifindex); err != nil {
		return err
	}
	if err := d.releaseLiberal(ifindex); err != nil {
		return err
	}
	return d.deleteIface(ifindex)
}

// ifindexOf resolves a name to an ifindex, also for an interface that no
// longer exists but is still recorded.
func (d *Dataplane) ifindexOf(ifname string) (int, error) {
	if ifc, err := net.InterfaceByName(ifname); err == nil {
		if _, ok := d.iface(ifc.Index); ok {
			return ifc.Index, nil
		}
		if _, err := os.Stat(d.linkPin(ifc.Index)); err == nil {
			return ifc.Index, nil
		}
		return 0, fmt.Errorf("interface %q is not attached (under %s)", ifname, d.dir)
	}
	ifaces, err := d.ifaces()
	if err != nil {
		return 0, err
	}
	for _, ifc := range ifaces {
		if cString(ifc.Name[:]) == ifname {
			return int(ifc.Ifindex), nil
		}
	}
	return 0, fmt.Errorf("interface %q not found", ifname)
}
