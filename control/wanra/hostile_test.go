package wanra

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
)

// RAs built byte by byte here, independently of the ndp package the
// tracker parses them with (RFC 4861 4.2 and 4.6, RFC 8106 5).

// raBytes is a Router Advertisement with the given router lifetime (s)
// and options: hop limit 64, no flags, checksum 0 (the kernel checks it).
func raBytes(routerLifetime uint16, opts ...[]byte) []byte {
	b := []byte{134, 0, 0, 0, 64, 0, byte(routerLifetime >> 8), byte(routerLifetime), 0, 0, 0, 0, 0, 0, 0, 0}
	for _, o := range opts {
		b = append(b, o...)
	}
	return b
}

const (
	flagL = 0x80
	flagA = 0x40
)

// pioBytes is a Prefix Information option (type 3, length 4).
func pioBytes(p netip.Prefix, flags byte, valid, preferred uint32) []byte {
	b := []byte{3, 4, byte(p.Bits()), flags}
	b = binary.BigEndian.AppendUint32(b, valid)
	b = binary.BigEndian.AppendUint32(b, preferred)
	b = append(b, 0, 0, 0, 0)
	a := p.Addr().As16()
	return append(b, a[:]...)
}

// rdnssBytes is an RDNSS option (type 25, length 1+2n).
func rdnssBytes(lifetime uint32, servers ...netip.Addr) []byte {
	b := []byte{25, byte(1 + 2*len(servers)), 0, 0}
	b = binary.BigEndian.AppendUint32(b, lifetime)
	for _, s := range servers {
		a := s.As16()
		b = append(b, a[:]...)
	}
	return b
}

// dnsslBytes is a DNSSL option (type 31): names in DNS wire format,
// padded with zeros to a multiple of 8 octets.
func dnsslBytes(lifetime uint32, names ...string) []byte {
	b := []byte{31, 0, 0, 0}
	b = binary.BigEndian.AppendUint32(b, lifetime)
	for _, n := range names {
		for _, l := range strings.Split(n, ".") {
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
		b = append(b, 0)
	}
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	b[1] = byte(len(b) / 8)
	return b
}

// optBytes is an option of type typ and length units*8 filled with a
// pattern.
func optBytes(typ, units byte) []byte {
	b := make([]byte, int(units)*8)
	b[0], b[1] = typ, units
	for i := 2; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	return b
}

func servers(n int, format string) []netip.Addr {
	var out []netip.Addr
	for i := range n {
		out = append(out, netip.MustParseAddr(fmt.Sprintf(format, i+1)))
	}
	return out
}

// Issue 13 item 1: options of 256 bytes or more (RDNSS with 16 servers,
// a long DNSSL, unknown options up to the maximum of 255*8 bytes) made
// the whole RA "malformed".
func TestLongOptionsAccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		dns := servers(MaxDNS, "2001:db8:53::%x")
		label := strings.Repeat("a", 60)
		names := []string{"one." + label + "." + label + ".example", "two." + label + "." + label + ".example",
			"three." + label + "." + label + ".example"}
		dnssl := dnsslBytes(600, names...)
		if len(dnssl) < 256 {
			t.Fatalf("DNSSL option of %d bytes, want 256 or more", len(dnssl))
		}
		r.send(raBytes(1800, pioBytes(prefix1, flagL|flagA, 7200, 3600), rdnssBytes(600, dns...), dnssl), 255, routerA)
		ra := r.last()
		if len(ra.Prefixes) != 1 || len(ra.Routers) != 1 || len(ra.DNS) != len(dns) || len(ra.DNSSL) != 3 {
			t.Fatalf("snapshot %+v: want the prefix, the router, %d DNS servers and 3 domains", ra, len(dns))
		}
		for i, s := range ra.DNS {
			if s.Addr != dns[i] {
				t.Errorf("dns[%d] %s, want %s", i, s.Addr, dns[i])
			}
		}
		for i, n := range ra.DNSSL {
			if n != names[i] {
				t.Errorf("dnssl[%d] %s, want %s", i, n, names[i])
			}
		}
		// Unknown options of every length class, up to 255 units, before
		// and after the prefix: skipped, the rest used.
		for _, units := range []byte{1, 31, 32, 33, 64, 128, 200, 254, 255} {
			p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, units, 0, 1}), 64)
			r.send(raBytes(1800, optBytes(253, units), pioBytes(p, flagL|flagA, 7200, 3600), optBytes(200, units)), 255, routerA)
			ra := r.last()
			if !hasPrefix(ra, p) {
				t.Errorf("unknown options of %d units: prefix %s not learned: %+v", units, p, ra.Prefixes)
			}
		}
		// 127 servers, the most an RDNSS option holds (255 units).
		r.send(raBytes(1800, rdnssBytes(600, servers(127, "2001:db8:54::%x")...)), 255, routerA)
		r.last()
		st := r.tr.Stats()
		if len(st.Rejected) != 0 || st.Accepted != 11 {
			t.Errorf("stats %+v: want 11 accepted, none rejected", st)
		}
	})
}

func hasPrefix(ra learned.RA, p netip.Prefix) bool {
	for _, x := range ra.Prefixes {
		if x.Prefix == p {
			return true
		}
	}
	return false
}

// Issue 13 item 1: one option whose content does not parse must not
// discard the rest of the RA (RFC 4861 4.6; hosts and the kernel skip
// it). An option of length zero still discards it (RFC 4861 4.6: "Nodes
// MUST silently discard an ND packet that contains an option with length
// zero"), as does one running past the end.
func TestMalformedOptionSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		dns := netip.MustParseAddr("2001:db8::53")
		badPIO := pioBytes(netip.MustParsePrefix("2001:db8:bad::/64"), flagL|flagA, 7200, 3600)[:24]
		badPIO[1] = 3                                                                    // a Prefix Information option is 4 units
		badRDNSS := []byte{25, 2, 0, 0, 0, 0, 2, 88, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1} // half an address
		badDNSSL := []byte{31, 2, 0, 0, 0, 0, 0x0e, 0x10, 40, 'a', 'b', 'c', 0, 0, 0, 0} // a label past the end
		badLLA := []byte{1, 2, 0x02, 0xaa, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}           // Ethernet is 1 unit
		b := raBytes(1800, badPIO, pioBytes(prefix1, flagL|flagA, 7200, 3600), badRDNSS, badDNSSL, badLLA,
			rdnssBytes(600, dns), dnsslBytes(600, "example.net"))
		r.send(b, 255, routerA)
		ra := r.last()
		if len(ra.Prefixes) != 1 || ra.Prefixes[0].Prefix != prefix1 || len(ra.Routers) != 1 ||
			len(ra.DNS) != 1 || ra.DNS[0].Addr != dns || len(ra.DNSSL) != 1 || ra.DNSSL[0] != "example.net" {
			t.Errorf("snapshot %+v: want %s, the router, %s and example.net", ra, prefix1, dns)
		}
		st := r.tr.Stats()
		if want := map[string]uint64{IgnoreMalformedOption: 4}; !mapsEqual(st.IgnoredOptions, want) {
			t.Errorf("ignored options %v, want %v", st.IgnoredOptions, want)
		}
		// Length zero anywhere, or past the end: the RA is discarded.
		zero := raBytes(1800, pioBytes(prefix1, flagL|flagA, 7200, 0), []byte{253, 0, 0, 0, 0, 0, 0, 0})
		past := raBytes(1800, pioBytes(prefix1, flagL|flagA, 7200, 0), []byte{253, 2, 0, 0, 0, 0, 0, 0})
		r.send(zero, 255, routerA)
		r.send(past, 255, routerA)
		if p := r.published(); len(p) != 0 {
			t.Errorf("discarded RAs published %+v", p)
		}
		st = r.tr.Stats()
		if want := map[string]uint64{RejectZeroOption: 1, RejectTruncOption: 1}; !mapsEqual(st.Rejected, want) {
			t.Errorf("rejected %v, want %v", st.Rejected, want)
		}
	})
}

// Issue 13 item 2: an RA from any host on the link with router lifetime
// 0 and the ISP's prefix at valid lifetime 0 removed the WAN prefix at
// once. RFC 4862 5.5.3 e), as the kernel applies it: the prefix is
// deprecated, and keeps two hours of its valid lifetime.
func TestSpoofedZeroLifetimeKeepsPrefix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		const day = 86400
		onlink := netip.MustParsePrefix("2001:db8:77::/64")
		r.send(raBytes(1800, pioBytes(prefix1, flagL|flagA, 30*day, 7*day), pioBytes(onlink, flagL, 30*day, 7*day)), 255, routerA)
		r.last()
		r.sleepUntil(time.Minute)
		now := time.Now()
		r.send(raBytes(0, pioBytes(prefix1, flagL|flagA, 0, 0)), 255, "fe80::bad")
		ra := r.last()
		if len(ra.Routers) != 1 || ra.Routers[0].Addr != netip.MustParseAddr(routerA) {
			t.Errorf("routers %+v: the spoofer's lifetime 0 removes only itself", ra.Routers)
		}
		p, ok := prefixOf(ra, prefix1)
		if !ok || !p.Valid.Equal(now.Add(2*time.Hour)) || !p.Preferred.Equal(now) || !p.Autonomous {
			t.Fatalf("prefix %+v (held: %v): want valid 2 h from now, deprecated", p, ok)
		}
		// Without the A flag the option does not touch the address's
		// prefix at all; the on-link-only prefix goes at once (RFC 4861
		// 6.3.4).
		r.send(raBytes(0, pioBytes(prefix1, flagL, 0, 0), pioBytes(onlink, flagL, 0, 0)), 255, "fe80::bad")
		ra = r.last()
		if p2, ok := prefixOf(ra, prefix1); !ok || !reflect.DeepEqual(p2, p) || hasPrefix(ra, onlink) {
			t.Errorf("prefixes %+v: want %s unchanged and %s gone", ra.Prefixes, prefix1, onlink)
		}
		// Two hours left: another lifetime of 0 (or 1 h) is ignored for
		// the valid lifetime.
		r.sleepUntil(time.Minute + time.Hour)
		r.published() // routerA's lifetime ended
		r.send(raBytes(0, pioBytes(prefix1, flagL|flagA, 0, 0)), 255, "fe80::bad")
		if p3, _ := prefixOf(r.last(), prefix1); !p3.Valid.Equal(p.Valid) {
			t.Errorf("valid until %v, want %v kept", p3.Valid, p.Valid)
		}
		r.send(raBytes(0, pioBytes(prefix1, flagL|flagA, 1800, 0)), 255, "fe80::bad")
		if p3, _ := prefixOf(r.last(), prefix1); !p3.Valid.Equal(p.Valid) {
			t.Errorf("valid until %v, want %v kept", p3.Valid, p.Valid)
		}
		// The ISP's next RA restores the lifetimes.
		now = time.Now()
		r.send(raBytes(1800, pioBytes(prefix1, flagL|flagA, 30*day, 7*day)), 255, routerA)
		if p4, _ := prefixOf(r.last(), prefix1); !p4.Valid.Equal(now.Add(30*day*time.Second)) || !p4.Preferred.Equal(now.Add(7*day*time.Second)) {
			t.Errorf("prefix %+v, want the ISP's lifetimes back", p4)
		}
	})
}

func prefixOf(ra learned.RA, p netip.Prefix) (learned.Prefix, bool) {
	for _, x := range ra.Prefixes {
		if x.Prefix == p {
			return x, true
		}
	}
	return learned.Prefix{}, false
}

func TestTwoHourRule(t *testing.T) {
	const h = time.Hour
	for _, tt := range []struct {
		received, remaining, want time.Duration
	}{
		{0, 30 * 24 * h, 2 * h},                 // 3: reset to two hours
		{h, 30 * 24 * h, 2 * h},                 // 3
		{3 * h, 30 * 24 * h, 3 * h},             // 1: over two hours
		{0, h, h},                               // 2: two hours or less left, ignored
		{30 * time.Minute, h, h},                // 2
		{90 * time.Minute, h, 90 * time.Minute}, // 1: over what remains
		{0, learned.Infinite, 2 * h},            // 3
		{learned.Infinite, h, learned.Infinite},
		{7200 * time.Second, 3 * h, 2 * h},
	} {
		if got := twoHourRule(tt.received, tt.remaining); got != tt.want {
			t.Errorf("received %v, remaining %v: %v, want %v", tt.received, tt.remaining, got, tt.want)
		}
	}
}

// Issue 13 item 3: 3000 RAs from one host kept 1627 routers, 13009
// prefixes and 13009 DNS servers. The tables are bounded, what was held
// first stays (and is refreshed), and the drops are counted.
func TestLearnedStateBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		isp := netip.MustParseAddr("2001:db8::53")
		r.send(raBytes(1800, pioBytes(prefix1, flagL|flagA, 7200, 3600), rdnssBytes(3600, isp), dnsslBytes(3600, "isp.example")), 255, routerA)
		r.last()
		const flood = 3000
		var ra learned.RA
		for i := range flood {
			src := fmt.Sprintf("fe80::1:%x", i+1)
			p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x10, 0, byte(i >> 8), byte(i)}), 64)
			extra := []byte{}
			for j := range 4 { // several prefixes per RA, as the flood had
				q := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x20 + byte(j), 0, byte(i >> 8), byte(i)}), 64)
				extra = append(extra, pioBytes(q, flagL|flagA, 600, 600)...)
			}
			r.send(raBytes(1800, pioBytes(p, flagL|flagA, 600, 600), extra,
				rdnssBytes(600, servers(4, fmt.Sprintf("2001:db8:%x::%%x", i+1))...),
				dnsslBytes(600, fmt.Sprintf("d%d.example", i))), 255, src)
			if pubs := r.published(); len(pubs) > 0 {
				ra = pubs[len(pubs)-1]
			}
		}
		if len(ra.Routers) != MaxRouters || len(ra.Prefixes) != MaxPrefixes || len(ra.DNS) != MaxDNS || len(ra.DNSSL) != MaxDNSSL {
			t.Fatalf("held %d routers, %d prefixes, %d DNS servers, %d domains; want %d, %d, %d, %d",
				len(ra.Routers), len(ra.Prefixes), len(ra.DNS), len(ra.DNSSL), MaxRouters, MaxPrefixes, MaxDNS, MaxDNSSL)
		}
		if !hasPrefix(ra, prefix1) || ra.DNS[0].Addr != isp || ra.DNSSL[0] != "isp.example" || !hasRouter(ra, routerA) {
			t.Errorf("the ISP's entries were pushed out: %+v", ra)
		}
		st := r.tr.Stats()
		want := map[string]uint64{
			TableRouters:  flood - (MaxRouters - 1),
			TablePrefixes: 5*flood - (MaxPrefixes - 1),
			TableDNS:      4*flood - (MaxDNS - 1),
			TableDNSSL:    flood - (MaxDNSSL - 1),
		}
		if !mapsEqual(st.Dropped, want) {
			t.Errorf("dropped %v, want %v", st.Dropped, want)
		}
		if st.Routers != MaxRouters || st.Prefixes != MaxPrefixes || st.DNS != MaxDNS || st.DNSSL != MaxDNSSL ||
			st.Limits[TablePrefixes] != MaxPrefixes {
			t.Errorf("stats %+v", st)
		}
		// The ISP's RA still refreshes what it holds.
		r.sleepUntil(5 * time.Minute)
		now := time.Now()
		r.send(raBytes(1800, pioBytes(prefix1, flagL|flagA, 7200, 3600), rdnssBytes(3600, isp)), 255, routerA)
		if p, _ := prefixOf(r.last(), prefix1); !p.Valid.Equal(now.Add(2 * time.Hour)) {
			t.Errorf("prefix %+v not refreshed", p)
		}
		// Once the flood's entries expire there is room again.
		r.sleepUntil(40 * time.Minute)
		r.published()
		other := netip.MustParsePrefix("2001:db8:99::/64")
		r.send(raBytes(1800, pioBytes(other, flagL|flagA, 7200, 3600)), 255, routerB)
		ra = r.last()
		if !hasPrefix(ra, other) || !hasRouter(ra, routerB) {
			t.Errorf("after the flood expired: %+v", ra)
		}
	})
}

func hasRouter(ra learned.RA, a string) bool {
	for _, x := range ra.Routers {
		if x.Addr == netip.MustParseAddr(a) {
			return true
		}
	}
	return false
}

// Issue 13 item 4, first half: RDNSS addresses that are no unicast
// address at all are not learned. A link-local one is (the router may ask
// it on the WAN); the LAN sender leaves it out (lanra).
func TestRDNSSNotUnicastIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		bad := []netip.Addr{netip.MustParseAddr("ff02::1"), netip.MustParseAddr("::1"), netip.IPv6Unspecified(),
			netip.MustParseAddr("::ffff:192.0.2.53")}
		good := []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::53")}
		r.send(raBytes(1800, rdnssBytes(600, append(bad, good...)...)), 255, routerA)
		ra := r.last()
		if len(ra.DNS) != 2 || ra.DNS[0].Addr != good[0] || ra.DNS[1].Addr != good[1] {
			t.Errorf("dns %+v, want %v", ra.DNS, good)
		}
		if want := map[string]uint64{IgnoreRDNSSNotUnicast: 4}; !mapsEqual(r.tr.Stats().IgnoredOptions, want) {
			t.Errorf("ignored %v, want %v", r.tr.Stats().IgnoredOptions, want)
		}
	})
}
