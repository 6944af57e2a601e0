package ndpwake

import "net/netip"

// inside is target's inside address under p (DNPT as the data plane
// does it). ok is false for an rfc6296 address that cannot be mapped (RFC
// 6296 5.2).
func (p NPT) inside(target netip.Addr) (netip.Addr, bool) {
	a, in := target.As16(), p.Inside.Masked().Addr().As16()
	bits := p.Inside.Bits()
	for i := 0; i < bits/8; i++ {
		a[i] = in[i]
	}
	if r := bits % 8; r != 0 {
		m := byte(0xff << (8 - r))
		a[bits/8] = a[bits/8]&^m | in[bits/8]&m
	}
	if !p.RFC6296 {
		return netip.AddrFrom16(a), true
	}
	w := -1
	if bits <= 48 {
		w = 3
	} else {
		for i := 4; i < 8; i++ {
			if word(a, i) != 0xffff {
				w = i
				break
			}
		}
	}
	if w < 0 {
		return netip.Addr{}, false
	}
	s := uint32(word(a, w)) + uint32(adjustment(p.Outside, p.Inside))
	s = s&0xffff + s>>16
	if s == 0xffff {
		s = 0
	}
	a[2*w], a[2*w+1] = byte(s>>8), byte(s)
	return netip.AddrFrom16(a), true
}

func word(a [16]byte, i int) uint16 { return uint16(a[2*i])<<8 | uint16(a[2*i+1]) }

// adjustment is sum(from) - sum(to) in one's complement over the
// prefixes' 16-bit words: added to one word it makes the rewrite
// checksum-neutral (RFC 6296 3.2, as ip6t_NPT computes it).
func adjustment(from, to netip.Prefix) uint16 {
	sum := func(p netip.Prefix) uint32 {
		b := p.Masked().Addr().As16()
		var s uint32
		for i := 0; i < 8; i++ {
			s += uint32(word(b, i))
		}
		return s
	}
	s := sum(from) + 8*0xffff - sum(to)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
