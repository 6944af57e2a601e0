package loader

// A reference model of NPTv6, written from RFC 6296 and the kernel's
// ip6t_NPT.c and independent of the C code: bit-by-bit prefix copy,
// one's complement arithmetic on big-endian words. The table tests, the
// kernel oracle and the fuzz target compare the data plane against it.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

type modelRule struct {
	from, to netip.Prefix
	mode     NPTMode
	// The router's own outside address (invalid: none): to it nothing is
	// translated, onto it no inside source.
	exclude netip.Addr
}

// onesAdd adds in 16-bit one's complement (end-around carry).
func onesAdd(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s&0xffff + s>>16)
}

func wordsSum(a [16]byte) uint16 {
	var s uint16
	for i := 0; i < 16; i += 2 {
		s = onesAdd(s, binary.BigEndian.Uint16(a[i:]))
	}
	return s
}

func inPrefix(a [16]byte, p netip.Prefix) bool {
	return p.Contains(netip.AddrFrom16(a))
}

// modelMap translates a like ip6t_npt_map_pfx; false: unmappable (every
// candidate word is 0xffff).
func modelMap(a [16]byte, r modelRule) ([16]byte, bool) {
	to := r.to.Addr().As16()
	for i := 0; i < r.from.Bits(); i++ {
		bit := byte(0x80) >> (i % 8)
		a[i/8] = a[i/8]&^bit | to[i/8]&bit
	}
	if r.mode == NPTPreserveHost {
		return a, true
	}
	// sum(from) - sum(to): add the complement.
	adj := onesAdd(wordsSum(r.from.Addr().As16()), ^wordsSum(to))
	idx := 3
	if r.from.Bits() > 48 {
		idx = -1
		for i := 4; i < 8; i++ {
			if binary.BigEndian.Uint16(a[2*i:]) != 0xffff {
				idx = i
				break
			}
		}
		if idx < 0 {
			return a, false
		}
	}
	w := onesAdd(binary.BigEndian.Uint16(a[2*idx:]), adj)
	if w == 0xffff {
		w = 0
	}
	binary.BigEndian.PutUint16(a[2*idx:], w)
	return a, true
}

// modelFixCsum applies a one's complement delta to a complete checksum
// field, as the kernel's inet_proto_csum_replace_by_diff does.
func modelFixCsum(field, delta uint16) uint16 {
	v := onesAdd(^field, delta)
	if v == 0 {
		v = 0xffff // the kernel's 32-bit complement never sums to +0
	}
	return ^v
}

// modelL4 walks the extension headers like the data plane: it returns the
// upper-layer protocol and offset within l3, ok=false when there is no
// upper-layer header to fix (non-first fragment, chain too long), and
// cut=true when the headers are truncated.
func modelL4(l3 []byte) (proto byte, off int, ok, cut bool) {
	nh, off := l3[6], 40
	for i := 0; i < 6; i++ {
		switch nh {
		case 0, 43, 44, 60, 135, 139, 140:
		default:
			return nh, off, true, false
		}
		if off+8 > len(l3) {
			return 0, 0, false, true
		}
		if nh == 44 {
			if binary.BigEndian.Uint16(l3[off+2:])&0xfff8 != 0 {
				return 0, 0, false, false
			}
			nh, off = l3[off], off+8
			continue
		}
		nh, off = l3[off], off+(int(l3[off+1])+1)*8
	}
	switch nh {
	case 0, 43, 44, 60, 135, 139, 140:
		return 0, 0, false, false
	}
	return nh, off, true, false
}

// modelDNPTExcluded says whether the packet l3 goes to r's excluded
// address, which DNPT leaves alone: untranslated, to the kernel.
func modelDNPTExcluded(l3 []byte, r modelRule) bool {
	return r.exclude.IsValid() && netip.AddrFrom16([16]byte(l3[24:40])) == r.exclude
}

// modelNPT translates the IPv6 packet l3 (the frame after the Ethernet
// header, possibly with trailing bytes) in place: the destination (dnpt)
// or source, an ICMPv6 error's embedded opposite address, and in
// preserve-host mode the L4 checksum. It returns false when the packet
// must be dropped: unmappable, cut, or an inside source that would become
// the excluded address. A destination that is the excluded address is
// left untouched (true; modelDNPTExcluded tells that case apart).
func modelNPT(l3 []byte, r modelRule, dnpt bool) bool {
	field := 8
	if dnpt {
		field = 24
		if modelDNPTExcluded(l3, r) {
			return true
		}
	}
	outer, ok := modelMap([16]byte(l3[field:field+16]), r)
	if !ok {
		return false
	}
	if !dnpt && r.exclude.IsValid() && netip.AddrFrom16(outer) == r.exclude {
		return false
	}
	pend := min(len(l3), 40+int(binary.BigEndian.Uint16(l3[4:6])))
	proto, off, found, cut := modelL4(l3)
	innerAt := -1
	var inner [16]byte
	if found && proto == 58 && off+8+40 <= pend && l3[off] < 128 {
		innerAt = off + 8 + 24
		if dnpt {
			innerAt = off + 8 + 8
		}
		if inPrefix([16]byte(l3[innerAt:innerAt+16]), r.from) {
			if inner, ok = modelMap([16]byte(l3[innerAt:innerAt+16]), r); !ok {
				return false
			}
		} else {
			innerAt = -1
		}
	}
	csumAt := -1
	if r.mode == NPTPreserveHost && (found || cut) {
		if cut {
			return false
		}
		switch proto {
		case 6:
			csumAt = off + 16
		case 17:
			csumAt = off + 6
		case 58:
			csumAt = off + 2
		}
		if csumAt >= 0 && csumAt+2 > pend {
			return false
		}
		if proto == 17 && csumAt >= 0 && binary.BigEndian.Uint16(l3[csumAt:]) == 0 {
			csumAt = -1
		}
	}
	copy(l3[field:], outer[:])
	if innerAt >= 0 {
		copy(l3[innerAt:], inner[:])
	}
	if csumAt >= 0 {
		d := ^onesAdd(wordsSum(r.from.Addr().As16()), ^wordsSum(r.to.Addr().As16()))
		v := modelFixCsum(binary.BigEndian.Uint16(l3[csumAt:]), d)
		if innerAt >= 0 {
			v = modelFixCsum(v, d)
		}
		if proto == 17 && v == 0 {
			v = 0xffff
		}
		binary.BigEndian.PutUint16(l3[csumAt:], v)
	}
	return true
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
