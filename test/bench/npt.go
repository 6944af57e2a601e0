package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket/layers"
)

// The NPT scenarios translate the IPv6 frames' source (gen's prefix, the
// inside) to the outside prefix as they leave by r1, the WAN: LAN->WAN
// SNPT, the direction every outbound flow takes. rfc6296 mode, the one the
// kernel implements.
const (
	nptInside  = "fd00:b1::/64"
	nptOutside = "fd00:b9::/64"
)

func (b *liveBench) setupNPT(sc string, f family) (func() error, error) {
	t := b.t
	if sc == scKernelNPT {
		// As the kernel scenario (XDP_PASS keeps the veths in XDP mode),
		// plus the ip6tables rule.
		detach, err := t.attachRouterPorts(b.pass.Attach)
		if err != nil {
			return nil, err
		}
		undo := func() error {
			_, err := t.lab.Exec(t.rtrNS, "ip6tables", "-t", "mangle", "-F", "POSTROUTING")
			return errors.Join(detach(), err)
		}
		if _, err := t.lab.Exec(t.rtrNS, "ip6tables", "-t", "mangle", "-A", "POSTROUTING", "-o", "r1", "-s", nptInside,
			"-j", "SNPT", "--src-pfx", nptInside, "--dst-pfx", nptOutside); err != nil {
			return nil, errors.Join(err, undo())
		}
		return undo, nil
	}
	detach, err := t.applyConfig(b.cfg.xdprouter, b.bpffs, "npt",
		fmt.Sprintf("wan: {interface: r1}\nlan: [{interface: r0}]\nnpt: [{interface: r1, inside: %q, outside: %q}]\n", nptInside, nptOutside))
	if err != nil {
		return nil, err
	}
	// apply attaches gated: prime the flow, the reply addressed to gen's
	// outside address, as sink sees it.
	reply, err := udpFrame(t.s0.mac, t.r1.mac, &layers.IPv6{Version: 6, HopLimit: startTTL, NextHeader: layers.IPProtocolUDP,
		SrcIP: sinkV6.AsSlice(), DstIP: npt66(genV6, netip.MustParsePrefix(nptInside), netip.MustParsePrefix(nptOutside)).AsSlice()},
		layers.EthernetTypeIPv6)
	if err == nil {
		err = b.prime(f, reply)
	}
	if err != nil {
		return nil, errors.Join(err, detach())
	}
	return detach, nil
}

// npt66 maps a from inside to outside as RFC 6296 (checksum-neutral) does
// for a prefix of 49 to 64 bits: the prefix replaced, and the first word of
// the interface identifier that is not 0xffff adjusted by sum(inside) -
// sum(outside) in one's complement. (For the bench's /64 and gen's ::2.)
func npt66(a netip.Addr, inside, outside netip.Prefix) netip.Addr {
	sum := func(b [16]byte) uint32 {
		var s uint32
		for i := 0; i < 16; i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		return s
	}
	fold := func(s uint32) uint16 {
		for s>>16 != 0 {
			s = s&0xffff + s>>16
		}
		return uint16(s)
	}
	in, out := inside.Masked().Addr().As16(), outside.Masked().Addr().As16()
	adj := fold(sum(in) + 8*0xffff - sum(out))
	b := a.As16()
	copy(b[:8], out[:8])
	for i := 8; i < 16; i += 2 {
		w := uint16(b[i])<<8 | uint16(b[i+1])
		if w == 0xffff {
			continue
		}
		w = fold(uint32(w) + uint32(adj))
		if w == 0xffff {
			w = 0
		}
		b[i], b[i+1] = byte(w>>8), byte(w)
		break
	}
	return netip.AddrFrom16(b)
}

// usesIP6tSNPT says whether scenario sc translates with an ip6tables SNPT
// rule (whose packet count measure checks).
func usesIP6tSNPT(sc string) bool { return sc == scKernelNPT || sc == scIP6tVXLANEncapNPT }

// snptRulePackets reads how many packets the kernel scenario's SNPT rule
// translated, so a kernel-npt (or ip6t-vxlan-encap-npt) figure cannot
// silently be plain forwarding.
func (b *liveBench) snptRulePackets() (uint64, error) {
	out, err := b.t.lab.Exec(b.t.rtrNS, "ip6tables", "-t", "mangle", "-L", "POSTROUTING", "-v", "-n", "-x")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "SNPT" {
			return strconv.ParseUint(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no SNPT rule in:\n%s", out)
}
