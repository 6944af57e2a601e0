package lanra

import (
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// A fixed prefix (a tunnel's, carved to this LAN) goes out in every RA
// with the same lifetimes, hours later too, where a learned prefix's
// count down.
func TestRAFixedPrefixLifetimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Sender{})
		fixed := netip.MustParsePrefix("2001:db8:ae01::/64")
		r.s.Set("lan0", Advert{Fixed: []FixedPrefix{{Prefix: fixed, Valid: 24 * time.Hour, Preferred: 4 * time.Hour}},
			RouterLifetime: 1800 * time.Second})
		r.sleepUntil(5 * time.Hour)
		sent := r.conn("lan0").take()
		if len(sent) < 2 {
			t.Fatalf("%d RAs in 5 hours", len(sent))
		}
		for _, s := range []sentRA{sent[0], sent[len(sent)-1]} {
			p := prefixes(s.ra)[fixed]
			if p == nil || !p.OnLink || !p.AutonomousAddressConfiguration || p.ValidLifetime != 24*time.Hour || p.PreferredLifetime != 4*time.Hour {
				t.Errorf("RA at %v: fixed prefix option %+v, want valid 24h preferred 4h", s.at, p)
			}
		}
		st := r.s.Stats().Interfaces
		if len(st) != 1 || !slices.Contains(st[0].Prefixes, PrefixStat{Prefix: fixed.String(), Valid: 86400, Preferred: 14400}) {
			t.Errorf("stats %+v", st)
		}
	})
}
