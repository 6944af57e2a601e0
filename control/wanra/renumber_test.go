package wanra

import (
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// Issue 13 item 6: an ISP router that restarts advertising a new prefix
// and simply stops advertising the old one (RFC 8978 flash renumbering).
// The tracker deprecates the old prefix at the first RA that brings the
// new one without it, so the WAN address moves within one RA interval;
// its valid lifetime is left alone.
func TestFlashRenumberingDeprecatesOldPrefix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		const day = 86400
		old, neu := netip.MustParsePrefix("2001:db8:1:1::/64"), netip.MustParsePrefix("2001:db8:2:1::/64")
		r.send(raBytes(1800, pioBytes(old, flagL|flagA, 30*day, 7*day)), 255, routerA)
		was, _ := prefixOf(r.last(), old)
		if !slices.Equal(was.Routers, []netip.Addr{netip.MustParseAddr(routerA)}) {
			t.Errorf("routers of %s: %v, want [%s]", old, was.Routers, routerA)
		}
		r.sleepUntil(time.Minute)
		now := time.Now()
		// The router reboots with a new prefix.
		r.send(raBytes(1800, pioBytes(neu, flagL|flagA, 30*day, 7*day)), 255, routerA)
		ra := r.last()
		o, ok := prefixOf(ra, old)
		if !ok || !o.Preferred.Equal(now) || !o.Valid.Equal(was.Valid) {
			t.Errorf("old prefix %+v (held %v): want deprecated now (%v), valid kept (%v)", o, ok, now, was.Valid)
		}
		if n, ok := prefixOf(ra, neu); !ok || !n.Preferred.Equal(now.Add(7*day*time.Second)) {
			t.Errorf("new prefix %+v (held %v): want preferred 7 days", n, ok)
		}
		if st := r.tr.Stats(); st.Renumbered != 1 {
			t.Errorf("renumbered %d, want 1", st.Renumbered)
		}
		// The router's next RAs change nothing more; advertising the
		// old prefix again makes it preferred again.
		r.sleepUntil(2 * time.Minute)
		r.send(raBytes(1800, pioBytes(neu, flagL|flagA, 30*day, 7*day)), 255, routerA)
		if o2, _ := prefixOf(r.last(), old); !o2.Preferred.Equal(now) {
			t.Errorf("old prefix preferred until %v, want %v", o2.Preferred, now)
		}
		now = time.Now()
		r.send(raBytes(1800, pioBytes(old, flagL|flagA, 30*day, 7*day), pioBytes(neu, flagL|flagA, 30*day, 7*day)), 255, routerA)
		if o3, _ := prefixOf(r.last(), old); !o3.Preferred.Equal(now.Add(7 * day * time.Second)) {
			t.Errorf("old prefix preferred until %v, want 7 days again", o3.Preferred)
		}
		if st := r.tr.Stats(); st.Renumbered != 1 {
			t.Errorf("renumbered %d, want still 1", st.Renumbered)
		}
	})
}

// What the flash-renumbering rule must not touch: a prefix another live
// router still advertises, another router's prefix, and a router that
// spreads its prefixes over several RAs (after the first round).
func TestRenumberingRuleLeavesOthersAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		const day = 86400
		p, q, x := netip.MustParsePrefix("2001:db8:1:1::/64"), netip.MustParsePrefix("2001:db8:1:2::/64"), netip.MustParsePrefix("2001:db8:9:1::/64")
		// Router B's own prefix.
		r.send(raBytes(1800, pioBytes(x, flagL|flagA, 30*day, 7*day)), 255, routerB)
		r.published()
		// Router A, one prefix per RA.
		r.send(raBytes(1800, pioBytes(p, flagL|flagA, 30*day, 7*day)), 255, routerA)
		r.send(raBytes(1800, pioBytes(q, flagL|flagA, 30*day, 7*day)), 255, routerA) // q is new: p deprecated once
		r.published()
		r.sleepUntil(time.Minute)
		for i := 0; i < 3; i++ {
			r.send(raBytes(1800, pioBytes(p, flagL|flagA, 30*day, 7*day)), 255, routerA)
			r.send(raBytes(1800, pioBytes(q, flagL|flagA, 30*day, 7*day)), 255, routerA)
		}
		ra := r.published()
		last := ra[len(ra)-1]
		for _, want := range []netip.Prefix{p, q, x} {
			if e, ok := prefixOf(last, want); !ok || !e.Preferred.After(time.Now()) {
				t.Errorf("%s: %+v (held %v), want preferred", want, e, ok)
			}
		}
		if st := r.tr.Stats(); st.Renumbered != 1 {
			t.Errorf("renumbered %d, want 1 (the first round only)", st.Renumbered)
		}
		// Both routers advertise a shared prefix; A moves on to a new
		// one, B still advertises it: it stays preferred.
		shared, n := netip.MustParsePrefix("2001:db8:5:1::/64"), netip.MustParsePrefix("2001:db8:6:1::/64")
		r.send(raBytes(1800, pioBytes(shared, flagL|flagA, 30*day, 7*day), pioBytes(p, flagL|flagA, 30*day, 7*day), pioBytes(q, flagL|flagA, 30*day, 7*day)), 255, routerA)
		r.send(raBytes(1800, pioBytes(shared, flagL|flagA, 30*day, 7*day), pioBytes(x, flagL|flagA, 30*day, 7*day)), 255, routerB)
		r.send(raBytes(1800, pioBytes(n, flagL|flagA, 30*day, 7*day)), 255, routerA)
		ra = r.published()
		last = ra[len(ra)-1]
		if e, _ := prefixOf(last, shared); !e.Preferred.After(time.Now()) {
			t.Errorf("%s deprecated, but router B still advertises it", shared)
		}
		if e, _ := prefixOf(last, x); !e.Preferred.After(time.Now()) {
			t.Errorf("router B's %s deprecated by router A's RA", x)
		}
		for _, gone := range []netip.Prefix{p, q} {
			if e, _ := prefixOf(last, gone); e.Preferred.After(time.Now()) {
				t.Errorf("%s still preferred after router A moved to %s", gone, n)
			}
		}
		// A host that is no router (lifetime 0) cannot deprecate the
		// ISP's prefix by sending it a new one of its own.
		r.send(raBytes(0, pioBytes(netip.MustParsePrefix("2001:db8:bad::/64"), flagL|flagA, 30*day, 7*day)), 255, "fe80::bad")
		if e, _ := prefixOf(r.last(), n); !e.Preferred.After(time.Now()) {
			t.Errorf("%s deprecated by another host's RA", n)
		}
	})
}
