package loader

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
)

// AttachNPTSlowPath attaches the TC programs that translate what XDP hands
// to the kernel on the NPT outside interface ifname: DNPT at TC ingress
// (before the kernel routes), SNPT at TC egress (after it), through TCX or
// clsact (ResolveTCMode). They are pinned as tc_dnpt_<ifindex> and
// tc_snpt_<ifindex>, so detaching the interface removes them with its XDP
// link. Idempotent like Attach.
//
// ifname may be a tunnel netdev (npt on a vxlan or 6in4 tunnel): what the
// kernel decapsulated arrives at its TC ingress, and what it routes into
// it passes its TC egress before the encapsulation (the vxlan netdev's
// own, or xdprouter's tunegress on a 6in4 netdev, which SNPT must come
// before: tunSNPTKind).
func (d *Dataplane) AttachNPTSlowPath(ifname string) (string, error) {
	ifindex, err := ifindexByName(ifname)
	if err != nil {
		return "", err
	}
	mode, err := ResolveTCMode()
	if err != nil {
		return "", err
	}
	settings := "tc " + string(mode)
	snpt := d.snptKind(ifindex)
	pins := []string{d.pinPath("tc_dnpt", ifindex), d.pinPath(snpt, ifindex)}
	if stillVerified(settings, pins...) {
		return "unchanged", nil
	}
	objs, err := loadTCPrograms(&d.maps, mode)
	if err != nil {
		return "", err
	}
	defer objs.Close()
	in, err := d.attachTC("tc_dnpt", ifindex, objs.XdprTcDnpt)
	if err != nil {
		return "", err
	}
	out, err := d.attachTC(snpt, ifindex, objs.XdprTcSnpt)
	if err != nil {
		return "", err
	}
	for _, pin := range pins {
		remember(pin, settings)
	}
	if in == out {
		return in, nil
	}
	return "ingress " + in + ", egress " + out, nil
}

// DetachNPTSlowPath removes the NPT slow path from ifname (its rules are
// gone): the TC programs would only cost time there. It says whether
// there was one to remove.
//
// A tunnel netdev removed with its last npt entry is gone already: the
// kernel took its TC programs with it, and the pins left of any netdev
// that is gone are removed.
func (d *Dataplane) DetachNPTSlowPath(ifname string) (bool, error) {
	if _, err := net.InterfaceByName(ifname); err != nil {
		return d.removeGoneNPTPins()
	}
	ifindex, err := ifindexByName(ifname)
	if err != nil {
		return false, err
	}
	removed := false
	for _, kind := range nptKinds {
		pin := d.pinPath(kind, ifindex)
		if _, err := os.Stat(pin); err != nil {
			continue
		}
		if err := removePin(d.dir, pin); err != nil {
			return removed, err
		}
		removed = true
	}
	return removed, nil
}

// nptKinds are the kinds of NPT's slow path.
var nptKinds = []string{"tc_dnpt", "tc_snpt", tunSNPTKind}

// removeGoneNPTPins removes the NPT slow path pins of interfaces that no
// longer exist.
func (d *Dataplane) removeGoneNPTPins() (bool, error) {
	entries, err := os.ReadDir(filepath.Join(d.dir, linksDir))
	if err != nil {
		return false, fmt.Errorf("list %s: %w", linksDir, err)
	}
	removed := false
	for _, e := range entries {
		kind, ifindex, ok := splitPin(e.Name())
		if !ok || !slices.Contains(nptKinds, kind) {
			continue
		}
		if _, err := net.InterfaceByIndex(ifindex); err == nil {
			continue
		}
		if err := removePin(d.dir, filepath.Join(d.dir, linksDir, e.Name())); err != nil {
			return removed, err
		}
		removed = true
	}
	return removed, nil
}

// tunSNPTKind is SNPT's slow path on a netdev whose egress encapsulates
// in xdprouter's own TC program (tunegress, a 6in4 netdev): ahead of it,
// at a clsact priority below its own and at the head of the TCX hook, so
// that the source is translated before the packet goes into the outer
// header. Pinned as tc_tun_snpt_<ifindex>.
const tunSNPTKind = "tc_tun_snpt"

// snptKind is the kind SNPT's slow path attaches as on ifindex.
func (d *Dataplane) snptKind(ifindex int) string {
	if _, err := os.Stat(d.pinPath("tunegress", ifindex)); err == nil {
		return tunSNPTKind
	}
	return "tc_snpt"
}
