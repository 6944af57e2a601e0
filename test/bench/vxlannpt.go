package main

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/xdprouter/xdprouter/loader"
)

// The NPT-on-a-tunnel scenarios are vxlan-encap's, with an npt entry on
// the vxlan netdev: gen's source (nptInside, the LAN's prefix) is
// translated to vxlanNPTOutside (a /64 of what the peer would route here)
// before it goes into the tunnel.
//
//   - vxlan-encap-npt: vxlan-encap (xdprouter ungated, r0 a LAN port, r1
//     the WAN, the netdev recorded) with the rule in xdprouter's maps: XDP
//     translates, then encapsulates (vxlan_encap_snpt).
//   - kernel-vxlan-encap-npt: kernel-vxlan-encap (XDP_PASS, the kernel's
//     vxlan) with the rule and xdprouter's NPT slow path attached to the
//     netdev: its TC egress program translates before the vxlan device
//     encapsulates (tc_snpt), the only non-XDP implementation xdprouter
//     has.
//   - ip6t-vxlan-encap-npt: kernel-vxlan-encap with an ip6tables SNPT rule
//     out of the netdev instead: the kernel's own NPTv6, as kernel-npt
//     uses on the WAN.
const (
	scVXLANEncapNPT       = "vxlan-encap-npt"
	scKernelVXLANEncapNPT = "kernel-vxlan-encap-npt"
	scIP6tVXLANEncapNPT   = "ip6t-vxlan-encap-npt"
)

var vxlanNPTOutside = netip.MustParsePrefix("2001:db8:7f:ff::/64")

func isVXLANNPTScenario(sc string) bool {
	return sc == scVXLANEncapNPT || sc == scKernelVXLANEncapNPT || sc == scIP6tVXLANEncapNPT
}

// setupVXLANNPT sets the scenario's VXLAN scenario up and adds the rule.
func (b *liveBench) setupVXLANNPT(sc string) (func() error, error) {
	t := b.t
	base := scKernelVXLANEncap
	if sc == scVXLANEncapNPT {
		base = scVXLANEncap
	}
	undoVXLAN, err := b.setupVXLAN(base)
	if err != nil {
		return nil, err
	}
	if sc == scIP6tVXLANEncapNPT {
		undo := func() error {
			_, err := t.lab.Exec(t.rtrNS, "ip6tables", "-t", "mangle", "-F", "POSTROUTING")
			return errors.Join(err, undoVXLAN())
		}
		if _, err := t.lab.Exec(t.rtrNS, "ip6tables", "-t", "mangle", "-A", "POSTROUTING", "-o", vxlanEncDev, "-s", nptInside,
			"-j", "SNPT", "--src-pfx", nptInside, "--dst-pfx", vxlanNPTOutside.String()); err != nil {
			return nil, errors.Join(err, undo())
		}
		return undo, nil
	}
	// The kernel scenario's maps and TC links exist only for the rule:
	// detach --all takes them away again (the XDP scenario's undo does
	// already), before the netdev goes.
	undo := func() error { return errors.Join(t.detachAll(b.cfg.xdprouter, b.bpffs)(), undoVXLAN()) }
	err = t.lab.Do(t.rtrNS, func() error {
		d, err := loader.Open(b.bpffs)
		if err != nil {
			return err
		}
		defer d.Close()
		rule := loader.NPTRule{Interface: vxlanEncDev, Inside: netip.MustParsePrefix(nptInside), Outside: vxlanNPTOutside}
		if err := d.SyncNPT([]loader.NPTRule{rule}); err != nil {
			return err
		}
		if sc == scKernelVXLANEncapNPT {
			if _, err := d.AttachNPTSlowPath(vxlanEncDev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("npt on %s: %w", vxlanEncDev, err), undo())
	}
	return undo, nil
}

// vxlanNPTCounter is the counter that must count every frame forwarded in
// an NPT-on-VXLAN scenario ("" for the others).
func vxlanNPTCounter(sc string) string {
	switch sc {
	case scVXLANEncapNPT:
		return "vxlan_encap_snpt"
	case scKernelVXLANEncapNPT:
		return "tc_snpt"
	}
	return ""
}

// addVXLANNPTRatios appends SNPT + VXLAN in XDP against VXLAN in XDP
// without it (the price of NPT on the tunnel), against the slow path and
// the kernel's own NPT on the kernel's vxlan, live.
func (r *report) addVXLANNPTRatios(lb *liveBench) {
	const fam = "ipv6-in-vxlan"
	r.addLiveRatio(lb, scVXLANEncapNPT, fam, scVXLANEncap, fam, 0.9)
	r.addLiveRatio(lb, scVXLANEncapNPT, fam, scKernelVXLANEncapNPT, fam, 0)
	r.addLiveRatio(lb, scVXLANEncapNPT, fam, scIP6tVXLANEncapNPT, fam, 0)
	r.addLiveRatio(lb, scKernelVXLANEncapNPT, fam, scKernelVXLANEncap, fam, 0)
}
