package loader

// Fuzz targets comparing the programs with the Go reference models: NPT
// (xdpr_main and the TC programs against nptmodel_test.go) and the NDP
// proxy (xdpr_main against an RFC 4861 validity model and modelNA).
// `go test` runs the seed corpus; `go test -fuzz FuzzNPT ./loader` (as
// root) explores further.

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

func isExt(nh byte) bool {
	switch nh {
	case 0, 43, 44, 60, 135, 139, 140:
		return true
	}
	return false
}

// modelForwardPass says whether xdpr_main leaves an IPv6 packet l3 (with
// addresses the lab routes) to the kernel before NPT: a payload beyond the
// frame, hop limit <= 1, hop-by-hop, fragments, a cut or too long chain.
func modelForwardPass(l3 []byte) bool {
	pend := 40 + int(binary.BigEndian.Uint16(l3[4:6]))
	if pend > len(l3) {
		return true
	}
	nh, off := l3[6], 40
	for i := 0; i < 6; i++ {
		if !isExt(nh) {
			return l3[7] <= 1
		}
		if nh == 0 || nh == 44 {
			return true
		}
		if off+8 > len(l3) {
			return true
		}
		nh = l3[off]
		off += 8 + int(l3[off+1])*8
		if off > len(l3) || off > pend {
			return true
		}
	}
	return isExt(nh) || l3[7] <= 1
}

// modelIPIP6Form says whether l3 is ipip6 as the decapsulation takes it:
// next header 4, or a destination options header holding only the tunnel
// encapsulation limit before it.
func modelIPIP6Form(l3 []byte) bool {
	switch {
	case l3[6] == 4:
		return true
	case l3[6] != 60 || len(l3) < 48:
		return false
	}
	return bytes.Equal(l3[40:48], []byte{4, 0, 4, 1, l3[44], 1, 1, 0})
}

func FuzzNPT(f *testing.F) {
	f.Add(uint8(0), false, []byte{1, 2, 3, 4, 5, 6, 7, 8}, uint8(17), []byte("0123456789abcdef"), int8(0), uint8(64))
	f.Add(uint8(2), true, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(6), make([]byte, 40), int8(0), uint8(64))
	f.Add(uint8(2), false, []byte{0xff, 0xff, 0, 1, 0xff, 0xff, 0xff, 0xff}, uint8(58), []byte{1, 4, 0, 0, 0, 0, 0, 0}, int8(0), uint8(2))
	f.Add(uint8(4), false, []byte{0, 0, 0, 0, 0, 0, 1, 0x23}, uint8(17), []byte{1, 2, 3, 4, 0, 12, 0, 0, 9, 9, 9, 9}, int8(0), uint8(64))
	f.Add(uint8(5), true, []byte{9}, uint8(6), make([]byte, 19), int8(0), uint8(64))
	f.Add(uint8(4), true, []byte{9}, uint8(60), []byte{17, 0, 1, 4, 0, 0, 0, 0, 1, 2, 3, 4, 0, 8, 0, 0}, int8(0), uint8(64))
	f.Add(uint8(1), true, []byte{7}, uint8(44), []byte{17, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4, 0, 8, 0, 0}, int8(0), uint8(64))
	f.Add(uint8(3), false, []byte{7}, uint8(0), []byte{17, 0, 1, 4, 0, 0, 0, 0}, int8(0), uint8(64))
	f.Add(uint8(4), false, []byte{7}, uint8(17), make([]byte, 20), int8(-15), uint8(64))
	f.Add(uint8(5), false, []byte{7}, uint8(17), make([]byte, 20), int8(5), uint8(64))
	// An ICMPv6 error embedding a packet to the inside address.
	emb := append([]byte{1, 4, 0, 0, 0, 0, 0, 0}, make([]byte, 48)...)
	emb[8] = 0x60
	copy(emb[8+24:], netip.MustParseAddr("fd00:bbbb::1234").AsSlice())
	f.Add(uint8(4), false, []byte{0, 0, 0, 0, 0, 0, 0x12, 0x34}, uint8(58), emb, int8(0), uint8(64))
	// The rules' excluded addresses (the router's own) and their inside
	// twins, plain and as an ICMPv6 error.
	feed := []byte{0, 0, 0, 0, 0, 0, 0xfe, 0xed}
	f.Add(uint8(4), true, feed, uint8(17), make([]byte, 12), int8(0), uint8(64))
	f.Add(uint8(4), false, feed, uint8(6), make([]byte, 20), int8(0), uint8(64))
	f.Add(uint8(2), true, feed, uint8(58), emb, int8(0), uint8(64))
	f.Add(uint8(2), true, feed, uint8(17), make([]byte, 12), int8(0), uint8(1))
	twin := netip.MustParseAddr(nptTestRules[2].excludedInside()).As16()
	f.Add(uint8(2), false, twin[8:], uint8(17), make([]byte, 12), int8(0), uint8(64))
	f.Add(uint8(2), false, twin[8:], uint8(58), emb, int8(0), uint8(64))

	// One lab for every input: namespaces per input would dominate.
	lab := newRouterLab(f)
	lab.setNPT(f, nptTestRules)
	f.Fuzz(func(t *testing.T, ruleSel uint8, dnpt bool, host []byte, nh uint8, l4 []byte, plenDelta int8, hop uint8) {
		if len(l4) > 1200 {
			l4 = l4[:1200]
		}
		r := nptTestRules[int(ruleSel)%len(nptTestRules)]
		var h [16]byte
		copy(h[8:], host)
		own := netip.MustParsePrefix(r.inside)
		if dnpt {
			own = netip.MustParsePrefix(r.outside)
		}
		a := own.Addr().As16()
		for i := own.Bits(); i < 128; i++ {
			bit := byte(0x80) >> (i % 8)
			a[i/8] |= h[i/8] & bit
		}
		remote := netip.MustParseAddr("2001:db8:100::1").As16()
		frame := make([]byte, 14+40+len(l4))
		ingress, egress := "lan0", "wan0"
		if dnpt {
			ingress, egress = "wan0", "lan0"
		}
		li := labIfaceByName(ingress)
		copy(frame[0:], mustMAC(li.mac))
		copy(frame[6:], mustMAC(li.peerMAC))
		frame[12], frame[13] = 0x86, 0xdd
		ip := frame[14:]
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(max(0, len(l4)+int(plenDelta))))
		ip[6], ip[7] = nh, hop
		src, dst := a, remote
		if dnpt {
			src, dst = remote, a
		}
		copy(ip[8:], src[:])
		copy(ip[24:], dst[:])
		copy(ip[40:], l4)

		var xv, tv uint32
		var xout, tout []byte
		err := lab.lab.Do(lab.ns, func() error {
			var err error
			if xv, xout, _, err = lab.runOnce(frame, ingress); err != nil {
				return err
			}
			prog := lab.tc.XdprTcSnpt
			if dnpt {
				prog = lab.tc.XdprTcDnpt
			}
			tv, tout, err = runTC(prog, frame, lab.ifindex["wan0"])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		translated := bytes.Clone(frame)
		ok := modelNPT(translated[14:], r.model(dnpt), dnpt)

		// The slow path translates whatever reaches it.
		switch {
		case !ok && tv != 2:
			t.Errorf("TC verdict %d, the model drops", int32(tv))
		case ok && (tv != tcxNext || !bytes.Equal(tout, translated)):
			t.Errorf("TC verdict %d, frame vs model: %s", int32(tv), diffBytes(tout, translated))
		}

		// The fast path: ipip6 from no configured tunnel (the lab has
		// none) to the router's own outside address is dropped, as the
		// kernel has no ipip6 to take it; the kernel's share passes
		// untouched, and so does anything else for the router's address.
		l3 := frame[14:]
		excluded := dnpt && modelDNPTExcluded(l3, r.model(dnpt))
		if excluded && 40+int(binary.BigEndian.Uint16(l3[4:6])) <= len(l3) && modelIPIP6Form(l3) {
			if xv != xdpDrop {
				t.Errorf("XDP %s, want ipip6 of no tunnel to the router's address dropped", verdictName(xv))
			}
			return
		}
		if modelForwardPass(l3) || excluded {
			if xv != xdpPass || !bytes.Equal(xout, frame) {
				t.Errorf("XDP %s, want pass untouched (%s)", verdictName(xv), diffBytes(xout, frame))
			}
			return
		}
		if !ok {
			if xv != xdpDrop {
				t.Errorf("XDP %s, the model drops", verdictName(xv))
			}
			return
		}
		if want := expectForward(translated, egress); xv != xdpRedirect || !bytes.Equal(xout, want) {
			t.Errorf("XDP %s, frame vs model: %s", verdictName(xv), diffBytes(xout, want))
		}
	})
}

// modelLeftToOthers says whether a valid NS for target in setNDP's
// 3fff:64:1:2::/64 is left unanswered although the prefix is proxied: the
// router's own address (the NPT rule's excluded one), a WAN router's (the
// entry's foreign one), an anycast address of the /64 (RFC 4291 2.6.1,
// RFC 2526), or, for a DAD probe, a target not behind the LAN: rfc6296
// cannot map an interface identifier of all 0xffff, every other one maps
// into the inside prefix routed to the LAN.
func modelLeftToOthers(target netip.Addr, dad bool) bool {
	a := target.As16()
	iid := binary.BigEndian.Uint64(a[8:])
	switch {
	case target == netip.MustParseAddr("3fff:64:1:2::feed"), target == netip.MustParseAddr("3fff:64:1:2::1"):
		return true
	case iid == 0, iid >= 0xfdffffffffffff80 && iid <= 0xfdffffffffffffff:
		return true
	}
	return dad && iid == ^uint64(0)
}

// modelNSValid is RFC 4861 7.1.1 (and the destination checks) on a
// solicitation frame received by an interface with MAC mac: 0 invalid,
// 1 valid, 2 valid DAD.
func modelNSValid(f []byte, mac net.HardwareAddr) int {
	ip := f[14:]
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if ip[0]>>4 != 6 || ip[7] != 255 || ip[41] != 0 || plen < 24 || plen%8 != 0 || plen > 24+64 || 40+plen > len(ip) {
		return 0
	}
	src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
	target := netip.AddrFrom16([16]byte(ip[48:64]))
	if target.IsMulticast() || src.IsMulticast() {
		return 0
	}
	dad := src.IsUnspecified()
	sn := netip.MustParseAddr("ff02::1:ff00:0").As16()
	t16 := target.As16()
	copy(sn[13:], t16[13:])
	snm := dst == netip.AddrFrom16(sn)
	if !snm && (dad || dst != target) {
		return 0
	}
	d16 := dst.As16()
	if !bytes.Equal(f[0:6], mac) && !bytes.Equal(f[0:6], []byte{0x33, 0x33, d16[12], d16[13], d16[14], d16[15]}) {
		return 0
	}
	if verifyICMPv6(f) != nil {
		return 0
	}
	sllao := false
	for off := 24; off < plen; {
		if off+2 > plen || ip[40+off+1] == 0 {
			return 0
		}
		if ip[40+off] == 1 {
			sllao = true
		}
		off += int(ip[40+off+1]) * 8
		if off > plen {
			return 0
		}
	}
	if dad && sllao {
		return 0
	}
	if dad {
		return 2
	}
	return 1
}

func FuzzNDPProxy(f *testing.F) {
	f.Add(uint8(255), uint8(0), uint8(0), uint8(0), uint8(0), []byte{0xab, 0xcd}, []byte{1, 1, 2, 0, 0, 0, 2, 2}, false, true)
	f.Add(uint8(255), uint8(0), uint8(1), uint8(0), uint8(0), []byte{1}, []byte{}, false, true)
	f.Add(uint8(255), uint8(0), uint8(1), uint8(0), uint8(0), []byte{1}, []byte{1, 1, 2, 0, 0, 0, 2, 2}, false, true)
	f.Add(uint8(255), uint8(0), uint8(3), uint8(1), uint8(1), []byte{5}, []byte{14, 1, 1, 2, 3, 4, 5, 6}, false, true)
	f.Add(uint8(254), uint8(0), uint8(0), uint8(0), uint8(0), []byte{1}, []byte{1, 1, 2, 0, 0, 0, 2, 2}, false, true)
	f.Add(uint8(255), uint8(1), uint8(0), uint8(0), uint8(0), []byte{1}, []byte{}, false, true)
	f.Add(uint8(255), uint8(0), uint8(0), uint8(0), uint8(0), []byte{1}, []byte{1, 0, 2, 0, 0, 0, 2, 2}, false, true)
	f.Add(uint8(255), uint8(0), uint8(0), uint8(0), uint8(0), []byte{1}, []byte{1, 2, 2, 0, 0, 0, 2, 2}, false, true)
	f.Add(uint8(255), uint8(0), uint8(0), uint8(0), uint8(0), []byte{1}, []byte{}, true, true)
	f.Add(uint8(255), uint8(0), uint8(0), uint8(2), uint8(0), []byte{1}, []byte{}, false, true)
	f.Add(uint8(255), uint8(0), uint8(0), uint8(0), uint8(2), []byte{1}, []byte{}, false, true)
	f.Add(uint8(255), uint8(0), uint8(2), uint8(0), uint8(0), []byte{1}, []byte{}, false, true)
	f.Add(uint8(255), uint8(0), uint8(0), uint8(0), uint8(0), []byte{1}, []byte{}, false, false)
	// Left to other nodes: the subnet-router anycast address, a reserved
	// anycast one, the WAN router's, and a DAD probe for an address that
	// maps to nothing behind the LAN.
	f.Add(uint8(255), uint8(0), uint8(0), uint8(0), uint8(0), []byte{0, 0, 0, 0, 0, 0, 0, 0}, []byte{}, false, true)
	f.Add(uint8(255), uint8(0), uint8(0), uint8(0), uint8(0), []byte{0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, []byte{}, false, true)
	f.Add(uint8(255), uint8(0), uint8(0), uint8(0), uint8(0), []byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte{}, false, true)
	f.Add(uint8(255), uint8(0), uint8(1), uint8(0), uint8(0), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte{}, false, true)
	lab := newRouterLab(f)
	lab.setNDP(f)
	f.Fuzz(func(t *testing.T, hop, code, srcSel, dstSel, macSel uint8, iid, opts []byte, badCsum, proxied bool) {
		if len(opts) > 96 {
			opts = opts[:96]
		}
		wanMAC := mustMAC(labIfaceByName("wan0").mac)
		target := netip.MustParseAddr("3fff:64:1:2::").As16()
		if !proxied {
			target = netip.MustParseAddr("3fff:64:1:3::").As16()
		}
		copy(target[8:], iid)
		s := nsSpec{hop: hop, code: code, target: netip.AddrFrom16(target).String(), opts: opts, badCsum: badCsum}
		if hop == 0 {
			s.hop = 1 // nsSpec's zero means 255
		}
		switch srcSel % 4 {
		case 1:
			s.src = "::"
		case 2:
			s.src = "ff02::2"
		case 3:
			s.src = "2001:db8:2::2"
		}
		switch dstSel % 3 {
		case 1:
			s.dst = s.target
		case 2:
			s.dst = "ff02::1"
		}
		switch macSel % 3 {
		case 1:
			s.dstMAC = wanMAC
		case 2:
			s.dstMAC = mustMAC("02:99:00:00:00:01")
		}
		frame := s.build(t)
		var v uint32
		var out []byte
		err := lab.lab.Do(lab.ns, func() error {
			var err error
			v, out, _, err = lab.runOnce(frame, "wan0")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if kind := modelNSValid(frame, wanMAC); proxied && kind != 0 && !modelLeftToOthers(netip.AddrFrom16(target), kind == 2) {
			if want := modelNA(t, frame, wanMAC); v != xdpTX || !bytes.Equal(out, want) {
				t.Errorf("XDP %s, NA vs model: %s", verdictName(v), diffBytes(out, want))
			}
			return
		}
		if v != xdpPass || !bytes.Equal(out, frame) {
			t.Errorf("XDP %s, want pass untouched: %s", verdictName(v), diffBytes(out, frame))
		}
	})
}
