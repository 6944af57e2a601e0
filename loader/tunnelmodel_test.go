package loader

// A reference model of the ipip6 transformations, written from the issue
// and the RFCs (2473, 6040, 6438, 1191, 1624, 9293) rather than from the C:
// what a tunnel router must send for a given input frame. The table tests
// and FuzzTunnel compare the data plane with it byte for byte.

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
)

// modelTunnel is one tunnel of the model.
type modelTunnel struct {
	local, remote netip.Addr
	mtu           int
	hopLimit      uint8
	nat44         bool
	// The outer next hop the lab resolves for remote, and the port.
	nextHopMAC, egressMAC net.HardwareAddr
}

// modelFlowLabel: source and destination as one 64-bit word (big-endian
// values, source high) times 0x9e3779b97f4a7c15, xor protocol<<32 | ports
// (the first 4 octets of TCP/UDP/SCTP/UDP-Lite, 0 for other protocols or
// short packets), xor the result shifted right by 31, times
// 0xbf58476d1ce4e5b9; the label is the top 20 bits, and 0 (no flow)
// becomes 1.
func modelFlowLabel(ip []byte) uint32 {
	tot := int(binary.BigEndian.Uint16(ip[2:4]))
	var ports uint32
	switch ip[9] {
	case 6, 17, 132, 136:
		if tot >= 24 {
			ports = binary.BigEndian.Uint32(ip[20:24])
		}
	}
	x := uint64(binary.BigEndian.Uint32(ip[12:16]))<<32 | uint64(binary.BigEndian.Uint32(ip[16:20]))
	x *= 0x9e3779b97f4a7c15
	x ^= uint64(ip[9])<<32 | uint64(ports)
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	l := uint32(x >> 44)
	if l == 0 {
		l = 1
	}
	return l
}

// onesAdd is one's complement addition of 16-bit values.
// modelClampMSS lowers the MSS option of a TCP SYN in the IPv4 packet ip
// (option-less header) to max, patching the checksum as RFC 1624 says a
// middlebox must (never recomputing it: a wrong checksum stays wrong). The
// patch is derived from the one's complement sums of the whole segment
// before and after, so odd option offsets need no special case.
func modelClampMSS(ip []byte, max uint16) {
	if ip[9] != 6 || len(ip) < 40 {
		return
	}
	tcp := ip[20:]
	if tcp[13]&0x02 == 0 {
		return
	}
	doff := int(tcp[12]>>4) * 4
	if doff <= 20 || doff > len(tcp) {
		return
	}
	for off := 20; off < doff; {
		kind := tcp[off]
		if kind == 0 {
			return
		}
		if kind == 1 {
			off++
			continue
		}
		if off+1 >= doff {
			return
		}
		l := int(tcp[off+1])
		if l < 2 || off+l > doff {
			return
		}
		if kind == 2 {
			if l != 4 {
				return
			}
			mss := binary.BigEndian.Uint16(tcp[off+2:])
			if mss <= max {
				return
			}
			before := onesSum(tcp)
			binary.BigEndian.PutUint16(tcp[off+2:], max)
			after := onesSum(tcp)
			// The checksum field is part of both sums; the rest changed
			// by after - before.
			check := binary.BigEndian.Uint16(tcp[16:])
			binary.BigEndian.PutUint16(tcp[16:], ^onesAdd(onesAdd(^check, ^before), after))
			return
		}
		off += l
	}
}

func fixIPv4Header(ip []byte) {
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], rfc1071(ip[:20]))
}

// modelEncap is the frame the WAN sends for the option-less IPv4 packet in
// frame (arrived on the LAN): IPv6 outer header with traffic class = inner
// TOS, flow label from the inner flow, no extension header; inner TTL - 1;
// MSS clamped to mtu - 40; Ethernet padding dropped.
func modelEncap(frame []byte, t modelTunnel) []byte {
	tot := int(binary.BigEndian.Uint16(frame[16:18]))
	inner := bytes.Clone(frame[14 : 14+tot])
	label := modelFlowLabel(inner)
	inner[8]--
	fixIPv4Header(inner)
	modelClampMSS(inner, uint16(t.mtu-40))

	out := make([]byte, 0, 14+40+tot)
	out = append(out, t.nextHopMAC...)
	out = append(out, t.egressMAC...)
	out = append(out, 0x86, 0xdd)
	out = binary.BigEndian.AppendUint32(out, 6<<28|uint32(inner[1])<<20|label)
	out = binary.BigEndian.AppendUint16(out, uint16(tot))
	out = append(out, 4, t.hopLimit)
	l, r := t.local.As16(), t.remote.As16()
	out = append(out, l[:]...)
	out = append(out, r[:]...)
	return append(out, inner...)
}

// ecn6040 is RFC 6040 section 4.2's decapsulation table: the inner ECN
// field that leaves, indexed [inner][outer]; -1 means drop.
var ecn6040 = [4][4]int{
	// outer: Not-ECT, ECT(1), ECT(0), CE
	{0, 0, 0, -1}, // inner Not-ECT
	{1, 1, 1, 3},  // inner ECT(1)
	{2, 1, 2, 3},  // inner ECT(0)
	{3, 3, 3, 3},  // inner CE
}

// modelDecap is what leaves the LAN for the ipip6 frame (arrived on the
// WAN, inner option-less IPv4 for a LAN host, directly after the IPv6
// header or after the 8-octet encapsulation-limit header Linux adds): the inner packet with ECN
// combined, TTL - 1, MSS clamped; ok is false when RFC 6040 says drop.
func modelDecap(frame []byte, mtu int, dstMAC, srcMAC net.HardwareAddr) (out []byte, ok bool) {
	outerTC := (frame[14]&0x0f)<<4 | frame[15]>>4
	off := 54
	if frame[20] == 60 { // the encapsulation limit option of a Linux peer
		off += 8
	}
	inner := bytes.Clone(frame[off:])
	tot := int(binary.BigEndian.Uint16(inner[2:4]))
	inner = inner[:tot]
	e := ecn6040[inner[1]&3][outerTC&3]
	if e < 0 {
		return nil, false
	}
	inner[1] = inner[1]&^3 | byte(e)
	inner[8]--
	fixIPv4Header(inner)
	modelClampMSS(inner, uint16(mtu-40))
	out = append(append(append([]byte{}, dstMAC...), srcMAC...), 0x08, 0x00)
	return append(out, inner...), true
}

// modelFragNeeded is the ICMPv4 "fragmentation needed" (type 3 code 4,
// next-hop MTU per RFC 1191) a router sends back to the source of frame,
// from routerIP, quoting the IP header and 8 octets (RFC 792), with the
// precedence of internetwork control (RFC 1812 4.3.2.5) and TTL 64.
func modelFragNeeded(frame []byte, routerIP netip.Addr, mtu int) []byte {
	in := frame[14:]
	ip := make([]byte, 20)
	ip[0] = 0x45
	ip[1] = 0xc0 | in[1]&0x1e
	binary.BigEndian.PutUint16(ip[2:], 20+8+28)
	ip[8], ip[9] = 64, 1
	src := routerIP.As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], in[12:16])
	fixIPv4Header(ip)
	icmp := []byte{3, 4, 0, 0, 0, 0, byte(mtu >> 8), byte(mtu)}
	icmp = append(icmp, in[:28]...)
	binary.BigEndian.PutUint16(icmp[2:], rfc1071(icmp))
	out := append(append(append([]byte{}, frame[6:12]...), frame[0:6]...), 0x08, 0x00)
	return append(append(out, ip...), icmp...)
}

// linuxEncapLimit is the destination options header a Linux ip6tnl peer
// sends by default (RFC 2473 4.1.1): next header 4, tunnel encapsulation
// limit 4, PadN.
var linuxEncapLimit = []byte{4, 0, 4, 1, 4, 1, 1, 0}

// withEncapLimit inserts linuxEncapLimit (or ext) after the IPv6 header of
// an ipip6 frame.
func withEncapLimit(frame, ext []byte) []byte {
	out := append([]byte{}, frame[:54]...)
	out[20] = 60
	binary.BigEndian.PutUint16(out[18:20], binary.BigEndian.Uint16(frame[18:20])+uint16(len(ext)))
	out = append(out, ext...)
	return append(out, frame[54:]...)
}
