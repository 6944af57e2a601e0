package lanra

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/xdprouter/xdprouter/control/learned"
)

// rdnssOnWire marshals ra and reads the RDNSS addresses back from the
// bytes by hand (RFC 8106 5.1: type 25, length 1+2n, 6 bytes of reserved
// and lifetime, then the addresses), independently of the ndp package.
func rdnssOnWire(t *testing.T, ra *ndp.RouterAdvertisement) []netip.Addr {
	t.Helper()
	b, err := ndp.MarshalMessage(ra)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var out []netip.Addr
	for opts := b[16:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			t.Fatalf("bad option framing at %x", opts)
		}
		l := int(opts[1]) * 8
		if opts[0] == 25 {
			for a := opts[8:l]; len(a) >= 16; a = a[16:] {
				out = append(out, netip.AddrFrom16([16]byte(a[:16])))
			}
		}
		opts = opts[l:]
	}
	return out
}

// Issue 13 item 1: with 16 or more DNS servers (two WAN RAs with 8 each)
// the LAN RA failed to marshal ("lan ra: send … unexpected EOF") and LAN
// hosts lost their prefix and route when lifetimes ran out.
func TestManyDNSServersAdvertised(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Sender{})
		now := time.Now()
		var dns []learned.Server
		var want []netip.Addr
		for i := range 40 {
			a := netip.MustParseAddr(fmt.Sprintf("2001:db8:53::%x", i+1))
			dns = append(dns, learned.Server{Addr: a, Until: now.Add(time.Hour)})
			want = append(want, a)
		}
		r.s.Set("lan0", Advert{
			Prefixes:       []learned.Prefix{{Prefix: oldPrefix, Valid: now.Add(2 * time.Hour), Preferred: now.Add(time.Hour)}},
			DNS:            dns,
			RouterLifetime: 1800 * time.Second,
		})
		sent := r.conn("lan0").take()
		if len(sent) != 1 {
			t.Fatalf("sent %d RAs, want 1 (send errors: %+v)", len(sent), r.s.Stats())
		}
		if got := rdnssOnWire(t, sent[0].ra); !slices.Equal(got, want) {
			t.Errorf("RDNSS on the wire %v, want %v", got, want)
		}
		if p := prefixes(sent[0].ra)[oldPrefix]; p == nil {
			t.Errorf("prefix missing: %+v", sent[0].ra.Options)
		}
		if st := r.s.Stats().Interfaces; len(st) != 1 || st[0].SendErrors != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// Issue 13 item 4: WAN DNS servers were re-advertised to the LAN as
// learned, the WAN's link-local fe80::1 (on the LAN, whoever claims it),
// ::1, ff02::1 and the router's own WAN address included. Only global
// unicast resolvers that are not the router's own go out.
func TestOnlyGlobalUnicastDNSAdvertised(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Sender{})
		now := time.Now()
		wanAddr := netip.MustParseAddr("2001:db8:1:2::feed")
		ula := netip.MustParseAddr("fd00:53::53")
		var dns []learned.Server
		for _, a := range []string{"fe80::1", "::1", "ff02::1", "::", "::ffff:192.0.2.53", "2001:db8::53", wanAddr.String(), ula.String()} {
			dns = append(dns, learned.Server{Addr: netip.MustParseAddr(a), Until: now.Add(time.Hour)})
		}
		r.s.Set("lan0", Advert{
			Prefixes: []learned.Prefix{{Prefix: oldPrefix, Valid: now.Add(2 * time.Hour), Preferred: now.Add(time.Hour)}},
			DNS:      dns,
			Own:      []netip.Addr{wanAddr},
		})
		sent := r.conn("lan0").take()
		if len(sent) != 1 {
			t.Fatalf("sent %d RAs, want 1", len(sent))
		}
		want := []netip.Addr{dnsAddr, ula}
		if got := rdnssOnWire(t, sent[0].ra); !slices.Equal(got, want) {
			t.Errorf("RDNSS on the wire %v, want %v", got, want)
		}
		st := r.s.Stats().Interfaces
		wantWithheld := []string{"fe80::1", "::1", "ff02::1", "::", "::ffff:192.0.2.53", wanAddr.String()}
		if len(st) != 1 || !slices.Equal(st[0].DNSWithheld, wantWithheld) {
			t.Errorf("stats %+v, want withheld %v", st, wantWithheld)
		}
		// Only withheld servers: no RDNSS option at all.
		r.sleepUntil(10 * time.Second)
		r.s.Set("lan0", Advert{
			Prefixes: []learned.Prefix{{Prefix: oldPrefix, Valid: now.Add(2 * time.Hour), Preferred: now.Add(time.Hour)}},
			DNS:      dns[:3],
		})
		r.sleepUntil(20 * time.Second)
		sent = r.conn("lan0").take()
		if len(sent) == 0 {
			t.Fatal("no RA after the change")
		}
		if o := option[*ndp.RecursiveDNSServer](sent[len(sent)-1].ra); len(o) != 0 {
			t.Errorf("RDNSS %+v, want none", o)
		}
	})
}

func TestAdvertisable(t *testing.T) {
	for a, want := range map[string]bool{
		"2001:db8::53": true, "2404:1a8:7f01:a::3": true, "fd00::53": true,
		"fe80::1": false, "::1": false, "::": false, "ff02::1": false, "ff05::1:3": false,
		"::ffff:192.0.2.53": false, "192.0.2.53": false,
	} {
		if got := Advertisable(netip.MustParseAddr(a)); got != want {
			t.Errorf("Advertisable(%s) = %v, want %v", a, got, want)
		}
	}
}
