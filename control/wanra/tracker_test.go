package wanra

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/xdprouter/xdprouter/control/learned"
)

const (
	routerA = "fe80::1"
	routerB = "fe80::2"
)

var prefix1 = netip.MustParsePrefix("2001:db8:1:2::/64")

func pio(p netip.Prefix, valid, preferred time.Duration) *ndp.PrefixInformation {
	return &ndp.PrefixInformation{PrefixLength: uint8(p.Bits()), OnLink: true, AutonomousAddressConfiguration: true,
		ValidLifetime: valid, PreferredLifetime: preferred, Prefix: p.Addr()}
}

func TestRAParsedIntoSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		r.sleepUntil(2 * time.Second)
		now := time.Now()
		dns := netip.MustParseAddr("2001:db8::53")
		mac := []byte{0x02, 0xaa, 0, 0, 0, 0x01}
		r.send(marshal(t, &ndp.RouterAdvertisement{
			CurrentHopLimit:           64,
			RouterSelectionPreference: ndp.High,
			RouterLifetime:            5400 * time.Second,
			Options: []ndp.Option{
				pio(prefix1, 7200*time.Second, 3600*time.Second),
				&ndp.PrefixInformation{PrefixLength: 48, OnLink: true, ValidLifetime: ndp.Infinity,
					PreferredLifetime: ndp.Infinity, Prefix: netip.MustParseAddr("2001:db8:9::")},
				&ndp.RecursiveDNSServer{Lifetime: 600 * time.Second, Servers: []netip.Addr{dns}},
				&ndp.DNSSearchList{Lifetime: 600 * time.Second, DomainNames: []string{"example.net"}},
				ndp.NewMTU(1460),
				&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac},
			},
		}), 255, routerA)
		got := r.last()
		want := learned.RA{
			Interface: "wan0",
			Prefixes: []learned.Prefix{
				{Prefix: prefix1, Valid: now.Add(7200 * time.Second), Preferred: now.Add(3600 * time.Second), OnLink: true, Autonomous: true},
				{Prefix: netip.MustParsePrefix("2001:db8:9::/48"), Valid: learned.Forever, Preferred: learned.Forever, OnLink: true},
			},
			Routers: []learned.Router{{Addr: netip.MustParseAddr(routerA), Until: now.Add(5400 * time.Second), Preference: 1, MAC: mac}},
			DNS:     []learned.Server{{Addr: dns, Until: now.Add(600 * time.Second)}},
			DNSSL:   []string{"example.net"},
			MTU:     1460,
		}
		if !equalRA(got, want) {
			t.Errorf("snapshot\n got %+v\nwant %+v", got, want)
		}
		st := r.tr.Stats()
		if st.Received != 1 || st.Accepted != 1 || len(st.Rejected) != 0 || st.Routers != 1 || st.Prefixes != 2 ||
			!st.LastRA.Equal(now) || st.LastRASource != routerA {
			t.Errorf("stats %+v", st)
		}
		// The RA ended the start-up solicitations after the first.
		r.sleepUntil(time.Minute)
		if rs := r.conn.solicitations(t); len(rs) != 1 || !rs[0].Equal(r.start) {
			t.Errorf("RS sent at %v, want one at start %v", rs, r.start)
		}
	})
}

func equalRA(a, b learned.RA) bool {
	return a.Interface == b.Interface && a.MTU == b.MTU &&
		slices.EqualFunc(a.Prefixes, b.Prefixes, func(x, y learned.Prefix) bool {
			return x.Prefix == y.Prefix && x.Valid.Equal(y.Valid) && x.Preferred.Equal(y.Preferred) &&
				x.OnLink == y.OnLink && x.Autonomous == y.Autonomous
		}) &&
		slices.EqualFunc(a.Routers, b.Routers, func(x, y learned.Router) bool {
			return x.Addr == y.Addr && x.Until.Equal(y.Until) && x.Preference == y.Preference && slices.Equal(x.MAC, y.MAC)
		}) &&
		slices.EqualFunc(a.DNS, b.DNS, func(x, y learned.Server) bool { return x.Addr == y.Addr && x.Until.Equal(y.Until) }) &&
		slices.Equal(a.DNSSL, b.DNSSL)
}

func TestSolicitationsAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		r.sleepUntil(10 * time.Minute)
		rs := r.conn.solicitations(t)
		want := []time.Time{r.start, r.start.Add(4 * time.Second), r.start.Add(8 * time.Second)}
		if !slices.EqualFunc(rs, want, time.Time.Equal) {
			t.Errorf("RS sent at %v, want %v (3, 4 s apart, then none)", rs, want)
		}
		if st := r.tr.Stats(); st.RSSent != 3 {
			t.Errorf("stats rs_sent %d, want 3", st.RSSent)
		}
		if p := r.published(); len(p) != 0 {
			t.Errorf("published %v without any RA", p)
		}
	})
}

func TestExpiryPublishesAndSolicitsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		dns := netip.MustParseAddr("2001:db8::53")
		r.send(marshal(t, &ndp.RouterAdvertisement{
			RouterLifetime: 60 * time.Second,
			Options: []ndp.Option{
				pio(prefix1, 30*time.Second, 10*time.Second),
				&ndp.RecursiveDNSServer{Lifetime: 20 * time.Second, Servers: []netip.Addr{dns}},
				&ndp.DNSSearchList{Lifetime: 20 * time.Second, DomainNames: []string{"example.net"}},
			},
		}), 255, routerA)
		if ra := r.last(); len(ra.Prefixes) != 1 || len(ra.DNS) != 1 || len(ra.Routers) != 1 {
			t.Fatalf("first snapshot %+v", ra)
		}
		// Preferred lifetime over: published, prefix still there.
		r.sleepUntil(10 * time.Second)
		if ra := r.last(); len(ra.Prefixes) != 1 || !ra.Prefixes[0].Preferred.Equal(r.start.Add(10*time.Second)) {
			t.Errorf("at 10 s: %+v, want the prefix still held (deprecated)", ra)
		}
		r.sleepUntil(20 * time.Second)
		if ra := r.last(); len(ra.DNS) != 0 || len(ra.DNSSL) != 0 || len(ra.Prefixes) != 1 {
			t.Errorf("at 20 s: %+v, want DNS gone, prefix kept", ra)
		}
		r.sleepUntil(30 * time.Second)
		if ra := r.last(); len(ra.Prefixes) != 0 || len(ra.Routers) != 1 {
			t.Errorf("at 30 s: %+v, want the prefix gone, the router kept", ra)
		}
		if p := r.published(); len(p) != 0 {
			t.Errorf("published %v with nothing changed", p)
		}
		r.sleepUntil(59 * time.Second)
		if p := r.published(); len(p) != 0 {
			t.Errorf("published %v before the router lifetime ended", p)
		}
		r.sleepUntil(60 * time.Second)
		if ra := r.last(); len(ra.Routers) != 0 {
			t.Errorf("at 60 s: %+v, want no router", ra)
		}
		r.sleepUntil(5 * time.Minute)
		want := []time.Time{r.start, r.start.Add(60 * time.Second), r.start.Add(64 * time.Second), r.start.Add(68 * time.Second)}
		if rs := r.conn.solicitations(t); !slices.EqualFunc(rs, want, time.Time.Equal) {
			t.Errorf("RS sent at %v, want %v: a new burst once the last router expired", rs, want)
		}
	})
}

func TestRouterLifetimeZeroAndMultipleRouters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		r.send(marshal(t, &ndp.RouterAdvertisement{RouterLifetime: 1800 * time.Second, RouterSelectionPreference: ndp.Low}), 255, routerA)
		r.send(marshal(t, &ndp.RouterAdvertisement{RouterLifetime: 600 * time.Second,
			Options: []ndp.Option{pio(prefix1, time.Hour, time.Hour)}}), 255, routerB)
		p := r.published()
		if len(p) != 2 {
			t.Fatalf("published %d snapshots, want 2", len(p))
		}
		ra := p[1]
		// Best first: B (medium) before A (low).
		if len(ra.Routers) != 2 || ra.Routers[0].Addr != netip.MustParseAddr(routerB) || ra.Routers[0].Preference != 0 ||
			ra.Routers[1].Addr != netip.MustParseAddr(routerA) || ra.Routers[1].Preference != -1 {
			t.Fatalf("routers %+v, want B (medium) then A (low)", ra.Routers)
		}
		if len(ra.Prefixes) != 1 {
			t.Errorf("prefixes %+v: A's RA without prefixes must not remove B's", ra.Prefixes)
		}
		r.sleepUntil(10 * time.Second)
		r.send(marshal(t, &ndp.RouterAdvertisement{RouterLifetime: 0}), 255, routerB)
		ra = r.last()
		if len(ra.Routers) != 1 || ra.Routers[0].Addr != netip.MustParseAddr(routerA) {
			t.Errorf("after B's lifetime 0: routers %+v, want only A", ra.Routers)
		}
		if len(ra.Prefixes) != 1 {
			t.Errorf("prefixes %+v: a router lifetime of 0 does not withdraw prefixes", ra.Prefixes)
		}
		r.send(marshal(t, &ndp.RouterAdvertisement{RouterLifetime: 0}), 255, routerA)
		if ra := r.last(); len(ra.Routers) != 0 {
			t.Errorf("routers %+v, want none", ra.Routers)
		}
		// Losing the last router by lifetime 0 solicits again at once.
		if rs := r.conn.solicitations(t); len(rs) != 2 || !rs[1].Equal(r.start.Add(10*time.Second)) {
			t.Errorf("RS sent at %v, want one at start and one when the last router left", rs)
		}
	})
}

func TestLifetimeZeroWithdraws(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		dns1, dns2 := netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("2001:db8::54")
		other := netip.MustParsePrefix("2001:db8:7::/64")
		r.send(marshal(t, &ndp.RouterAdvertisement{RouterLifetime: time.Hour, Options: []ndp.Option{
			pio(prefix1, time.Hour, time.Hour), pio(other, time.Hour, time.Hour),
			&ndp.RecursiveDNSServer{Lifetime: time.Hour, Servers: []netip.Addr{dns1, dns2}},
		}}), 255, routerA)
		r.last()
		r.sleepUntil(time.Minute)
		r.send(marshal(t, &ndp.RouterAdvertisement{RouterLifetime: time.Hour, Options: []ndp.Option{
			pio(prefix1, 0, 0),
			&ndp.RecursiveDNSServer{Lifetime: 0, Servers: []netip.Addr{dns1}},
			&ndp.RecursiveDNSServer{Lifetime: 2 * time.Hour, Servers: []netip.Addr{dns2}},
		}}), 255, routerA)
		ra := r.last()
		// An autonomous prefix is deprecated, its valid lifetime kept
		// (under two hours left: RFC 4862 5.5.3 e); see
		// TestSpoofedZeroLifetimeKeepsPrefix).
		if len(ra.Prefixes) != 2 || ra.Prefixes[0].Prefix != prefix1 || !ra.Prefixes[0].Valid.Equal(r.start.Add(time.Hour)) ||
			!ra.Prefixes[0].Preferred.Equal(r.start.Add(time.Minute)) || ra.Prefixes[1].Prefix != other {
			t.Errorf("prefixes %+v, want %s deprecated and %s", ra.Prefixes, prefix1, other)
		}
		if len(ra.DNS) != 1 || ra.DNS[0].Addr != dns2 || !ra.DNS[0].Until.Equal(r.start.Add(time.Minute+2*time.Hour)) {
			t.Errorf("dns %+v, want only %s with the new lifetime", ra.DNS, dns2)
		}
	})
}

func TestInvalidRAsCountedAndIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		good := marshal(t, &ndp.RouterAdvertisement{RouterLifetime: time.Hour, Options: []ndp.Option{pio(prefix1, time.Hour, time.Hour)}})
		badCode := slices.Clone(good)
		badCode[1] = 1
		zeroOpt := slices.Clone(good)
		zeroOpt[raHeaderLen+1] = 0
		truncOpt := slices.Clone(good)
		truncOpt[raHeaderLen+1] = 5
		r.send(good, 254, routerA)
		r.send(good, 64, routerA)
		r.send(good, 255, "2001:db8::1")
		r.send(good, 255, "::")
		r.send(badCode, 255, routerA)
		r.send(good[:12], 255, routerA)
		r.send(zeroOpt, 255, routerA)
		r.send(truncOpt, 255, routerA)
		if p := r.published(); len(p) != 0 {
			t.Errorf("invalid RAs published %+v", p)
		}
		st := r.tr.Stats()
		want := map[string]uint64{RejectHopLimit: 2, RejectSource: 2, RejectCode: 1, RejectShort: 1,
			RejectZeroOption: 1, RejectTruncOption: 1}
		if st.Received != 8 || st.Accepted != 0 || !mapsEqual(st.Rejected, want) {
			t.Errorf("stats %+v, want 8 received, rejected %v", st, want)
		}
		// They did not stop the start-up solicitations either.
		r.sleepUntil(time.Minute)
		if rs := r.conn.solicitations(t); len(rs) != 3 {
			t.Errorf("%d RS sent, want 3", len(rs))
		}
		r.send(good, 255, routerA)
		if ra := r.last(); len(ra.Prefixes) != 1 {
			t.Errorf("a valid RA after the invalid ones: %+v", ra)
		}
	})
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestOptionsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		r.send(marshal(t, &ndp.RouterAdvertisement{RouterLifetime: time.Hour, Options: []ndp.Option{
			pio(netip.MustParsePrefix("fe80::/64"), time.Hour, time.Hour),
			pio(netip.MustParsePrefix("ff02::/64"), time.Hour, time.Hour),
			&ndp.PrefixInformation{PrefixLength: 0, ValidLifetime: time.Hour, Prefix: netip.IPv6Unspecified()},
			pio(prefix1, time.Hour, 2*time.Hour),
			ndp.NewMTU(1000),
		}}), 255, routerA)
		ra := r.last()
		if len(ra.Prefixes) != 0 || ra.MTU != 0 || len(ra.Routers) != 1 {
			t.Errorf("snapshot %+v: want the router only", ra)
		}
		want := map[string]uint64{IgnorePrefixLinkLocal: 1, IgnorePrefixNotUnicast: 1, IgnorePrefixLength: 1,
			IgnorePreferredOver: 1, IgnoreMTUTooSmall: 1}
		if st := r.tr.Stats(); !mapsEqual(st.IgnoredOptions, want) {
			t.Errorf("ignored options %v, want %v", st.IgnoredOptions, want)
		}
	})
}

func TestSocketReopenedKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conns := []*fakeConn{newFakeConn(), newFakeConn()}
		opens := 0
		pubs := make(chan learned.RA, 10)
		tr := &Tracker{Interface: "wan0", Log: quiet, Publish: func(ra learned.RA) { pubs <- ra }, Listen: func(string) (Conn, error) {
			opens++
			switch opens {
			case 1:
				return nil, errors.New("no link-local address yet")
			case 2:
				return conns[0], nil
			}
			return conns[1], nil
		}}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go tr.Run(ctx)
		start := time.Now()
		synctest.Wait()
		if st := tr.Stats(); st.SocketErrors != 1 || st.RSSent != 0 {
			t.Fatalf("stats %+v after a failed open", st)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		conns[0].in <- packet{b: marshal(t, &ndp.RouterAdvertisement{RouterLifetime: 30 * time.Second}), hop: 255, src: netip.MustParseAddr(routerA)}
		synctest.Wait()
		<-pubs
		conns[0].Close() // the socket fails
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		if opens != 3 || tr.Stats().SocketErrors != 2 {
			t.Fatalf("opens %d, stats %+v: want the socket reopened", opens, tr.Stats())
		}
		// The router learned on the first socket still expires on time.
		time.Sleep(time.Until(start.Add(31 * time.Second)))
		synctest.Wait()
		select {
		case ra := <-pubs:
			if len(ra.Routers) != 0 {
				t.Errorf("%+v, want the router expired", ra)
			}
		default:
			t.Errorf("nothing published when the router expired")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if rs := conns[0].solicitations(t); len(rs) != 1 || !rs[0].Equal(start.Add(time.Second)) {
			t.Errorf("first socket sent RS at %v, want once at 1 s", rs)
		}
		if rs := conns[1].solicitations(t); len(rs) != 3 || !rs[0].Equal(start.Add(31*time.Second)) {
			t.Errorf("second socket sent RS at %v, want 3 from 31 s (router lost)", rs)
		}
	})
}
