package lanra

import (
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/xdprouter/xdprouter/control/learned"
)

var (
	oldPrefix = netip.MustParsePrefix("2001:db8:1:1::/64")
	newPrefix = netip.MustParsePrefix("2001:db8:2:1::/64")
	dnsAddr   = netip.MustParseAddr("2001:db8::53")
)

func prefixes(ra *ndp.RouterAdvertisement) map[netip.Prefix]*ndp.PrefixInformation {
	out := map[netip.Prefix]*ndp.PrefixInformation{}
	for _, o := range ra.Options {
		if p, ok := o.(*ndp.PrefixInformation); ok {
			out[netip.PrefixFrom(p.Prefix, int(p.PrefixLength))] = p
		}
	}
	return out
}

func option[T ndp.Option](ra *ndp.RouterAdvertisement) []T {
	var out []T
	for _, o := range ra.Options {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

func TestRAContentFromDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Sender{})
		now := time.Now()
		r.s.Set("lan0", Advert{
			Prefixes: []learned.Prefix{
				{Prefix: oldPrefix, Valid: now.Add(2 * time.Hour), Preferred: now.Add(time.Hour)},
				{Prefix: netip.MustParsePrefix("2001:db8:ff::/56"), Valid: learned.Forever, Preferred: learned.Forever},
			},
			DNS:            []learned.Server{{Addr: dnsAddr, Until: now.Add(1000 * time.Second)}, {Addr: netip.MustParseAddr("2001:db8::54"), Until: learned.Forever}},
			DNSSL:          []string{"lan.example"},
			MTU:            1460,
			RouterLifetime: 1800 * time.Second,
		})
		sent := r.conn("lan0").take()
		if len(sent) != 1 || !sent[0].at.Equal(now) || sent[0].dst != allNodes {
			t.Fatalf("sent %+v, want one RA to ff02::1 at once", sent)
		}
		ra := sent[0].ra
		if ra.CurrentHopLimit != 64 || ra.ManagedConfiguration || ra.OtherConfiguration || ra.RouterLifetime != 1800*time.Second {
			t.Errorf("RA header %+v", ra)
		}
		ps := prefixes(ra)
		if p := ps[oldPrefix]; p == nil || !p.OnLink || !p.AutonomousAddressConfiguration ||
			p.ValidLifetime != 2*time.Hour || p.PreferredLifetime != time.Hour {
			t.Errorf("/64 prefix option %+v", p)
		}
		if p := ps[netip.MustParsePrefix("2001:db8:ff::/56")]; p == nil || !p.OnLink || p.AutonomousAddressConfiguration ||
			p.ValidLifetime != ndp.Infinity || p.PreferredLifetime != ndp.Infinity {
			t.Errorf("/56 prefix option %+v: want on-link, not autonomous, infinite", p)
		}
		// RDNSS lifetimes: the server's remaining lifetime, bounded by
		// 3 × MaxRtrAdvInterval (1800 s by default).
		rdnss := option[*ndp.RecursiveDNSServer](ra)
		if len(rdnss) != 2 || rdnss[0].Lifetime != 1000*time.Second || !slices.Equal(rdnss[0].Servers, []netip.Addr{dnsAddr}) ||
			rdnss[1].Lifetime != 1800*time.Second {
			t.Errorf("RDNSS options %+v", rdnss)
		}
		if d := option[*ndp.DNSSearchList](ra); len(d) != 1 || !slices.Equal(d[0].DomainNames, []string{"lan.example"}) {
			t.Errorf("DNSSL %+v", d)
		}
		if m := option[*ndp.MTU](ra); len(m) != 1 || m[0].MTU != 1460 {
			t.Errorf("MTU %+v", m)
		}
		if l := option[*ndp.LinkLayerAddress](ra); len(l) != 1 || l[0].Direction != ndp.Source || l[0].Addr.String() != fakeMAC.String() {
			t.Errorf("source link-layer option %+v", l)
		}
		// Later RAs carry what remains.
		r.sleepUntil(20 * time.Minute)
		sent = r.conn("lan0").take()
		last := sent[len(sent)-1]
		elapsed := last.at.Sub(now)
		p := prefixes(last.ra)[oldPrefix]
		wantValid, wantPreferred := (2*time.Hour - elapsed).Truncate(time.Second), (time.Hour - elapsed).Truncate(time.Second)
		if p.ValidLifetime != wantValid || p.PreferredLifetime != wantPreferred {
			t.Errorf("RA at +%v: lifetimes valid %v preferred %v, want %v %v", elapsed, p.ValidLifetime, p.PreferredLifetime,
				wantValid, wantPreferred)
		}
		st := r.s.Stats().Interfaces
		if len(st) != 1 || st[0].Unsolicited != uint64(len(sent)+1) || st[0].Source != fakeLL.String() || st[0].RouterLifetime != 1800 ||
			!slices.Contains(st[0].Prefixes, PrefixStat{Prefix: oldPrefix.String(), Valid: uint32(wantValid / time.Second), Preferred: uint32(wantPreferred / time.Second)}) {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestUnsolicitedSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Sender{MinInterval: 200 * time.Second, MaxInterval: 600 * time.Second})
		r.s.Set("lan0", Advert{RouterLifetime: 1800 * time.Second})
		r.sleepUntil(3 * time.Hour)
		sent := r.conn("lan0").take()
		if len(sent) < 3+3*3600/600 {
			t.Fatalf("%d RAs in 3 h, want at least %d", len(sent), 3+3*3600/600)
		}
		for i := 1; i < len(sent); i++ {
			gap := sent[i].at.Sub(sent[i-1].at)
			lo, hi := 200*time.Second, 600*time.Second
			if i < 3 {
				// The first few: at most MAX_INITIAL_RTR_ADVERT_INTERVAL.
				hi = 16 * time.Second
				lo = min(lo, hi)
			}
			if gap < lo || gap > hi {
				t.Errorf("RA %d came %v after the previous, want within [%v, %v]", i, gap, lo, hi)
			}
		}
	})
}

func TestRenumberingDeprecatesThenDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Sender{MinInterval: 3 * time.Second, MaxInterval: 4 * time.Second, MinDelay: time.Second})
		now := time.Now()
		old := learned.Prefix{Prefix: oldPrefix, Valid: now.Add(time.Hour), Preferred: now.Add(30 * time.Minute)}
		r.s.Set("lan0", Advert{Prefixes: []learned.Prefix{old}, RouterLifetime: time.Hour})
		r.sleepUntil(time.Minute)
		r.conn("lan0").take()
		// The renumbering: the old prefix's preferred deadline is now,
		// its valid one 2 minutes away.
		old.Preferred, old.Valid = time.Now(), time.Now().Add(2*time.Minute)
		fresh := learned.Prefix{Prefix: newPrefix, Valid: time.Now().Add(2 * time.Hour), Preferred: time.Now().Add(time.Hour)}
		r.s.Set("lan0", Advert{Prefixes: []learned.Prefix{old, fresh}, RouterLifetime: time.Hour})
		changed := time.Now()
		r.sleepUntil(time.Minute + 2*time.Second)
		sent := r.conn("lan0").take()
		// An RA with the change goes out at once, or MinDelay after the
		// last one if that was less than MinDelay ago.
		i := slices.IndexFunc(sent, func(s sentRA) bool { return prefixes(s.ra)[newPrefix] != nil })
		if i < 0 || sent[i].at.Sub(changed) > time.Second {
			t.Fatalf("sent %+v, want an RA with the new prefix within 1 s of the change", sent)
		}
		sent = sent[i:]
		elapsed := sent[0].at.Sub(changed)
		ps := prefixes(sent[0].ra)
		if p := ps[oldPrefix]; p == nil || p.PreferredLifetime != 0 || p.ValidLifetime != (2*time.Minute-elapsed).Truncate(time.Second) {
			t.Errorf("old prefix %+v, want preferred 0, valid what remains of 120 s", p)
		}
		if p := ps[newPrefix]; p == nil || p.PreferredLifetime != (time.Hour-elapsed).Truncate(time.Second) ||
			p.ValidLifetime != (2*time.Hour-elapsed).Truncate(time.Second) {
			t.Errorf("new prefix %+v", p)
		}
		r.sleepUntil(time.Minute + 2*time.Minute + 10*time.Second)
		for _, s := range append(sent, r.conn("lan0").take()...) {
			p, hasOld := prefixes(s.ra)[oldPrefix]
			// Lifetimes go out in whole seconds: the last second is 0.
			if gone := learned.Remaining(old.Valid, s.at) == 0; gone == hasOld {
				t.Errorf("RA at %v: old prefix present %v, want it until %v only", s.at.Sub(r.start), hasOld, old.Valid.Sub(r.start))
			}
			if hasOld && (p.PreferredLifetime != 0 || p.ValidLifetime != learned.Remaining(old.Valid, s.at)) {
				t.Errorf("RA at %v: old prefix %+v, want deprecated with what remains", s.at.Sub(r.start), p)
			}
			if _, ok := prefixes(s.ra)[newPrefix]; !ok {
				t.Errorf("RA at %v without the new prefix", s.at.Sub(r.start))
			}
		}
	})
}

func TestChangeRateLimitedAndRefreshIsNoChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Sender{MinInterval: 200 * time.Second, MaxInterval: 600 * time.Second})
		r.s.Set("lan0", Advert{RouterLifetime: time.Hour, Prefixes: []learned.Prefix{{Prefix: oldPrefix, Valid: time.Now().Add(time.Hour), Preferred: time.Now().Add(time.Hour)}}})
		r.sleepUntil(100 * time.Second)
		c := r.conn("lan0")
		c.take()
		// Refreshed deadlines only: nothing to tell at once.
		r.s.Set("lan0", Advert{RouterLifetime: time.Hour, Prefixes: []learned.Prefix{{Prefix: oldPrefix, Valid: time.Now().Add(2 * time.Hour), Preferred: time.Now().Add(2 * time.Hour)}}})
		if s := c.take(); len(s) != 0 {
			t.Errorf("sent %d RAs on a refresh, want none", len(s))
		}
		// A change right after an RA waits for MIN_DELAY_BETWEEN_RAS.
		r.s.Set("lan0", Advert{RouterLifetime: time.Hour, MTU: 1500})
		s := c.take()
		if len(s) != 1 || !s[0].at.Equal(r.start.Add(100*time.Second)) {
			t.Fatalf("sent %+v, want one RA at once", s)
		}
		r.sleepUntil(101 * time.Second)
		r.s.Set("lan0", Advert{RouterLifetime: time.Hour, MTU: 1480})
		r.sleepUntil(110 * time.Second)
		s = c.take()
		if len(s) == 0 || !s[0].at.Equal(r.start.Add(103*time.Second)) || option[*ndp.MTU](s[0].ra)[0].MTU != 1480 {
			t.Errorf("sent %+v, want the second change at 103 s (3 s after the first)", s)
		}
	})
}

func TestSolicitationsAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Sender{})
		r.s.Set("lan0", Advert{RouterLifetime: time.Hour})
		r.sleepUntil(time.Minute)
		c := r.conn("lan0")
		c.take()
		rs, err := ndp.MarshalMessage(&ndp.RouterSolicitation{Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: fakeMAC}}})
		if err != nil {
			t.Fatal(err)
		}
		host := netip.MustParseAddr("fe80::99")
		c.in <- packet{b: rs, hop: 254, src: host}
		c.in <- packet{b: rs, hop: 255, src: netip.IPv6Unspecified()} // "::" with a link-layer option
		r.sleepUntil(2 * time.Minute)
		// Only unsolicited RAs, none within the answer delay.
		if s := c.take(); len(s) != 0 && s[0].at.Sub(r.start) < time.Minute+maxRADelay {
			t.Errorf("answered invalid solicitations: %+v", s)
		}
		c.in <- packet{b: rs, hop: 255, src: host}
		asked := time.Now()
		synctest.Wait()
		time.Sleep(time.Second)
		s := c.take()
		if len(s) != 1 || s[0].at.Sub(asked) > maxRADelay || s[0].dst != allNodes {
			t.Fatalf("sent %+v, want one multicast RA within 0.5 s of the RS", s)
		}
		st := r.s.Stats().Interfaces[0]
		if st.RSReceived != 3 || st.Solicited != 1 || st.RSInvalid[RejectHopLimit] != 1 || st.RSInvalid[RejectUnspecified] != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestFinalAdvertisement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Sender{})
		ad := Advert{RouterLifetime: time.Hour, Prefixes: []learned.Prefix{{Prefix: oldPrefix, Valid: learned.Forever, Preferred: learned.Forever}}}
		r.s.Set("lan0", ad)
		r.s.Set("lan1", ad)
		r.sleepUntil(time.Minute)
		lan0, lan1 := r.conn("lan0"), r.conn("lan1")
		lan0.take()
		lan1.take()
		r.s.Remove("lan0")
		s := lan0.take()
		if len(s) != 1 || s[0].ra.RouterLifetime != 0 || !lan0.isClosed() {
			t.Fatalf("after Remove: sent %+v (closed %v), want one RA with router lifetime 0, then the socket closed", s, lan0.isClosed())
		}
		if s := lan1.take(); len(s) != 0 {
			t.Errorf("lan1 sent %+v when lan0 was removed", s)
		}
		r.stop()
		s = lan1.take()
		if len(s) != 1 || s[0].ra.RouterLifetime != 0 || !lan1.isClosed() {
			t.Fatalf("after stop: sent %+v, want one RA with router lifetime 0", s)
		}
		for _, st := range r.s.Stats().Interfaces {
			if st.Advertising || st.Final != 1 || st.RouterLifetime != 0 {
				t.Errorf("stats %+v", st)
			}
		}
	})
}

// A daemon that stops but leaves the router forwarding (KeepOnStop) sends
// no final RA: the hosts keep their default route until the next daemon
// advertises again. Remove still says goodbye.
func TestKeepOnStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Sender{KeepOnStop: true})
		ad := Advert{RouterLifetime: time.Hour, Prefixes: []learned.Prefix{{Prefix: oldPrefix, Valid: learned.Forever, Preferred: learned.Forever}}}
		r.s.Set("lan0", ad)
		r.s.Set("lan1", ad)
		r.sleepUntil(time.Minute)
		lan0, lan1 := r.conn("lan0"), r.conn("lan1")
		lan0.take()
		lan1.take()
		r.s.Remove("lan0")
		if s := lan0.take(); len(s) != 1 || s[0].ra.RouterLifetime != 0 {
			t.Fatalf("after Remove: sent %+v, want the final RA", s)
		}
		r.stop()
		if s := lan1.take(); len(s) != 0 || !lan1.isClosed() {
			t.Errorf("after stop: sent %+v (closed %v), want nothing sent and the socket closed", s, lan1.isClosed())
		}
	})
}
