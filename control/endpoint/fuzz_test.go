package endpoint

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzDNSAnswer feeds arbitrary DNS messages, as a server or anyone
// spoofing one might send them, to what the resolver does with an answer
// for a tunnel remote's name: the wire parser, the CNAME-following AAAA
// extraction and the screening of unusable addresses. No panic; what is
// taken is sorted, unique, IPv6 and not IPv4-mapped. Issue 13 item 14.
func FuzzDNSAnswer(f *testing.F) {
	name := "aftr.example.jp."
	add := func(rrs ...dns.RR) {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeAAAA)
		m.Response = true
		m.Answer = rrs
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	hdr := func(n string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: n, Rrtype: t, Class: dns.ClassINET, Ttl: 300}
	}
	aaaa := func(n, a string) *dns.AAAA { return &dns.AAAA{Hdr: hdr(n, dns.TypeAAAA), AAAA: net.ParseIP(a)} }
	add(aaaa(name, "2404:8e00::feed:140"), aaaa(name, "2404:8e00::feed:141"))
	add(&dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: "gw.example.jp."}, aaaa("gw.example.jp.", "2001:db8::1"))
	add(&dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: name}, aaaa(name, "::"))
	add(aaaa(name, "::ffff:192.0.2.1"), aaaa(name, "fe80::1"), aaaa(name, "ff02::1"), aaaa(name, "::1"))
	add(&dns.A{Hdr: hdr(name, dns.TypeA), A: net.ParseIP("192.0.2.1")})
	add()
	f.Fuzz(func(t *testing.T, b []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(b); err != nil {
			return
		}
		for _, n := range []string{name, strings.ToUpper(name)} {
			addrs, _ := aaaaAnswer(r, n)
			if !slices.IsSortedFunc(addrs, netip.Addr.Compare) || len(slices.Compact(slices.Clone(addrs))) != len(addrs) {
				t.Fatalf("addresses not sorted and unique: %v", addrs)
			}
			for _, a := range addrs {
				if !a.Is6() || a.Is4In6() {
					t.Fatalf("took %v", a)
				}
				if why := Unusable(a); why != "" && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() && !a.IsLinkLocalUnicast() {
					t.Fatalf("%v refused as %s", a, why)
				}
			}
			_ = describeRefused(addrs)
		}
	})
}
