package ndpwake

import (
	"encoding/binary"
	"net/netip"
)

// Reasons a frame heard on the proxy interface is not acted on (the keys
// of Stats.Ignored).
const (
	IgnoreMalformed = "malformed"    // not a whole IPv6 packet carrying an NS
	IgnoreHopLimit  = "hop_limit"    // not 255: not from the link (RFC 4861 7.1.1)
	IgnoreCode      = "code"         // ICMPv6 code not 0
	IgnoreChecksum  = "checksum"     // bad ICMPv6 checksum
	IgnoreTarget    = "target"       // multicast target
	IgnoreDest      = "destination"  // neither the target nor its solicited-node group
	IgnoreDAD       = "dad"          // from ::, sent once: nothing would answer a retransmission
	IgnoreOwn       = "own_address"  // the router's own address: the kernel answers
	IgnoreNoLAN     = "no_lan"       // no LAN to resolve on
	IgnoreUnmapped  = "npt_unmapped" // an NPT outside address with no inside one
	// Another node's on the WAN link: an anycast address of the link's
	// routers or a WAN router's own (Proxy.Foreign). The data plane never
	// answers for it, so there is nothing to resolve.
	IgnoreElsewhere = "elsewhere"
)

const (
	ipv6HeaderLen   = 40
	nsLen           = 24 // ICMPv6 header, reserved, target (RFC 4861 4.3)
	protoICMPv6     = 58
	icmpNS          = 135
	ndpHopLimit     = 255
	offNextHeader   = 6
	offHopLimit     = 7
	offICMPType     = ipv6HeaderLen
	offNSTarget     = ipv6HeaderLen + 8
	solicitedPrefix = "ff02::1:ff00:0"
)

var solicitedNodeBase = netip.MustParseAddr(solicitedPrefix).As16()

// ns is what the waker needs of a Neighbor Solicitation.
type ns struct {
	src, dst, target netip.Addr
}

// parseNS checks an IPv6 packet (header onward) the way the XDP proxy
// checks an NS before answering (RFC 4861 7.1.1, destination matching the
// target), so the waker acts on nothing the proxy would refuse. It returns
// the NS, or an Ignore* reason.
func parseNS(b []byte) (ns, string) {
	if len(b) < ipv6HeaderLen+nsLen || b[0]>>4 != 6 || b[offNextHeader] != protoICMPv6 || b[offICMPType] != icmpNS {
		return ns{}, IgnoreMalformed
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if plen < nsLen || ipv6HeaderLen+plen > len(b) {
		return ns{}, IgnoreMalformed
	}
	b = b[:ipv6HeaderLen+plen]
	if b[offHopLimit] != ndpHopLimit {
		return ns{}, IgnoreHopLimit
	}
	if b[offICMPType+1] != 0 {
		return ns{}, IgnoreCode
	}
	m := ns{
		src:    netip.AddrFrom16([16]byte(b[8:24])),
		dst:    netip.AddrFrom16([16]byte(b[24:40])),
		target: netip.AddrFrom16([16]byte(b[offNSTarget : offNSTarget+16])),
	}
	if icmpChecksum(m.src, m.dst, b[ipv6HeaderLen:]) != 0xffff {
		return ns{}, IgnoreChecksum
	}
	if m.target.IsMulticast() {
		return ns{}, IgnoreTarget
	}
	if m.dst != m.target && m.dst != solicitedNode(m.target) {
		return ns{}, IgnoreDest
	}
	if m.src.IsUnspecified() {
		return ns{}, IgnoreDAD
	}
	return m, ""
}

// solicitedNode is ff02::1:ffXX:XXXX with a's low 24 bits (RFC 4291 2.7.1).
func solicitedNode(a netip.Addr) netip.Addr {
	s, t := solicitedNodeBase, a.As16()
	copy(s[13:], t[13:])
	return netip.AddrFrom16(s)
}

// icmpChecksum is the one's complement sum of the IPv6 pseudo header and
// the ICMPv6 message, folded: 0xffff when the message's checksum is right.
func icmpChecksum(src, dst netip.Addr, msg []byte) uint16 {
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	a, d := src.As16(), dst.As16()
	add(a[:])
	add(d[:])
	s += uint32(len(msg)>>16) + uint32(len(msg)&0xffff) + protoICMPv6
	add(msg)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// anycast says whether a is the subnet-router anycast address of its /64
// (RFC 4291 2.6.1) or one of its reserved subnet anycast addresses (RFC
// 2526 2), as the data plane's ndp_anycast does.
func anycast(a netip.Addr) bool {
	b := a.As16()
	iid := binary.BigEndian.Uint64(b[8:])
	return iid == 0 || iid >= 0xfdffffffffffff80 && iid <= 0xfdffffffffffffff
}
