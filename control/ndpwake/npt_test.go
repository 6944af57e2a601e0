package ndpwake

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestInsideAddress(t *testing.T) {
	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	a := netip.MustParseAddr
	for _, c := range []struct {
		name   string
		rule   NPT
		target netip.Addr
		want   netip.Addr
		ok     bool
	}{
		{"preserve-host", NPT{Outside: p("2001:db8:aaaa::/64"), Inside: p("2001:db8:bbbb::/64")},
			a("2001:db8:aaaa::123"), a("2001:db8:bbbb::123"), true},
		// README: with rfc6296 the host bbbb::123 is aaaa:0:1111::123 outside.
		{"rfc6296 /64", NPT{Outside: p("2001:db8:aaaa::/64"), Inside: p("2001:db8:bbbb::/64"), RFC6296: true},
			a("2001:db8:aaaa:0:1111::123"), a("2001:db8:bbbb::123"), true},
		// RFC 6296 section 2.4's example, from the external side.
		{"rfc6296 /48", NPT{Outside: p("2001:db8:1::/48"), Inside: p("fd01:203:405::/48"), RFC6296: true},
			a("2001:db8:1:d550::1234"), a("fd01:203:405:1::1234"), true},
		{"rfc6296 unmappable", NPT{Outside: p("2001:db8:aaaa::/64"), Inside: p("2001:db8:bbbb::/64"), RFC6296: true},
			a("2001:db8:aaaa:0:ffff:ffff:ffff:ffff"), netip.Addr{}, false},
		{"odd length", NPT{Outside: p("2001:db8:aaaa:a8::/61"), Inside: p("2001:db8:bbbb:b0::/61")},
			a("2001:db8:aaaa:af::7"), a("2001:db8:bbbb:b7::7"), true},
	} {
		got, ok := c.rule.inside(c.target)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: inside(%s) = %s, %v; want %s, %v", c.name, c.target, got, ok, c.want, c.ok)
		}
	}
}

// An rfc6296 mapping and its reverse give back the address.
func TestRFC6296RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		bits := 1 + rng.IntN(64)
		rnd := func() netip.Addr {
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			return netip.AddrFrom16(b)
		}
		out, in := netip.PrefixFrom(rnd(), bits).Masked(), netip.PrefixFrom(rnd(), bits).Masked()
		host := rnd()
		inAddr, ok := NPT{Outside: out, Inside: in, RFC6296: true}.inside(host)
		if !ok {
			continue
		}
		if !in.Contains(inAddr) {
			t.Fatalf("%s in %s -> %s: not in %s", host, out, inAddr, in)
		}
		back, ok := NPT{Outside: in, Inside: out, RFC6296: true}.inside(inAddr)
		want, _ := NPT{Outside: in, Inside: out}.inside(host) // host's own bits in out
		if !ok || back != want {
			t.Fatalf("%s -> %s -> %s, want %s back (%s <-> %s)", host, inAddr, back, want, out, in)
		}
	}
}
