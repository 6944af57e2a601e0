package config

import (
	"fmt"
	"net/netip"
)

// Subnet64 is the sla-id'th /64 of a prefix, as wide-dhcpv6 carves a
// delegated prefix (sla-len = 64 - the prefix length). The daemon carves
// the delegated prefix with it, the config a tunnel's fixed prefixes.
func Subnet64(d netip.Prefix, slaID int) (netip.Prefix, error) {
	if d.Bits() > 64 {
		return netip.Prefix{}, fmt.Errorf("the delegated prefix %s is longer than /64", d)
	}
	if room := 64 - d.Bits(); room < 16 && slaID >= 1<<room {
		return netip.Prefix{}, fmt.Errorf("%d does not fit the delegated %s, which has %d /64s (sla-id 0-%d)", slaID, d, 1<<room, (1<<room)-1)
	}
	return subnet(d, 64, uint64(slaID)), nil
}

// subnet is the n'th /bits prefix inside p; callers check that n fits
// (n < 2^(bits - p.Bits())).
func subnet(p netip.Prefix, bits int, n uint64) netip.Prefix {
	b := p.Masked().Addr().As16()
	// n goes in the bits just above position `bits`, counted from the
	// top: add n << (128 - bits) to the 128-bit address.
	shift := 128 - bits
	hi := be64(b[:8])
	lo := be64(b[8:])
	if shift >= 64 {
		hi |= n << (shift - 64)
	} else {
		lo |= n << shift
		if shift > 0 {
			hi |= n >> (64 - shift)
		}
	}
	put64(b[:8], hi)
	put64(b[8:], lo)
	return netip.PrefixFrom(netip.AddrFrom16(b), bits)
}

// withHost is p's first address with host added to its low 64 bits: the
// link net's ::1 and ::2.
func withHost(p netip.Prefix, host uint64) netip.Addr {
	b := p.Masked().Addr().As16()
	put64(b[8:], be64(b[8:])|host)
	return netip.AddrFrom16(b)
}

func be64(b []byte) uint64 {
	var v uint64
	for _, x := range b[:8] {
		v = v<<8 | uint64(x)
	}
	return v
}

func put64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (56 - 8*i))
	}
}
