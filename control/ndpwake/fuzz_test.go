package ndpwake

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzNS feeds arbitrary frames from a proxy interface to the waker's NS
// path (parseNS, then the prefix, own-address and NPT checks): no panic,
// and an accepted NS obeys what parseNS promises. Each input is tried as
// received and with its ICMPv6 checksum made right, so the fuzzer gets
// past the checksum. Issue 13 item 14.
func FuzzNS(f *testing.F) {
	isp := netip.MustParseAddr("fe80::1")
	host := netip.MustParseAddr("2001:db8:1:2::10")
	f.Add(nsPacket(isp, host, nil))
	f.Add(nsPacket(netip.IPv6Unspecified(), host, nil))
	f.Add(nsPacket(isp, netip.MustParseAddr("2001:db8:99::1"), nil))
	f.Add(nsPacket(isp, host, func(b []byte) { b[offHopLimit] = 64 }))
	f.Add(nsPacket(isp, host, func(b []byte) { binary.BigEndian.PutUint16(b[4:], 9000) }))
	f.Add(nsPacket(isp, host, nil)[:ipv6HeaderLen+10])
	l := &loop{cfg: Config{
		Proxies: []Proxy{{Interface: "wan0", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("::/0")},
			NPT: []NPT{
				{Outside: netip.MustParsePrefix("2001:db8:1:2::/64"), Inside: netip.MustParsePrefix("fd00:1::/64"), RFC6296: true},
				{Outside: netip.MustParsePrefix("2001:db8:1:3::/64"), Inside: netip.MustParsePrefix("fd00:2::/64")},
				{Outside: netip.MustParsePrefix("2001:db8:1::/48"), Inside: netip.MustParsePrefix("fd00::/48"), RFC6296: true},
			}}},
		LANs: []string{"lan0"},
		Own:  []netip.Addr{netip.MustParseAddr("2001:db8:1:2::1")},
	}}
	f.Fuzz(func(t *testing.T, b []byte) {
		try := func(b []byte) {
			m, reason := parseNS(b)
			if reason != "" {
				return
			}
			if m.target.IsMulticast() || m.src.IsUnspecified() || (m.dst != m.target && m.dst != solicitedNode(m.target)) {
				t.Fatalf("accepted %+v", m)
			}
			if l.check("wan0", &m) == "" && (!m.target.IsValid() || m.target.IsMulticast()) {
				t.Fatalf("would probe %v", m.target)
			}
		}
		try(b)
		if len(b) >= ipv6HeaderLen+4 {
			c := append([]byte(nil), b...)
			src, dst := netip.AddrFrom16([16]byte(c[8:24])), netip.AddrFrom16([16]byte(c[24:40]))
			end := len(c)
			if plen := ipv6HeaderLen + int(binary.BigEndian.Uint16(c[4:6])); plen < end && plen >= ipv6HeaderLen+4 {
				end = plen
			}
			msg := c[ipv6HeaderLen:end]
			msg[2], msg[3] = 0, 0
			binary.BigEndian.PutUint16(msg[2:], ^icmpChecksum(src, dst, msg))
			try(c)
		}
	})
}
