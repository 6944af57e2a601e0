package loader

// The /64 NPT maps: the loader keeps them an exact copy of the tries' /64
// entries (after every change, a failed one included, and when Open finds
// state pinned without them), and the data plane looks there first and in
// the tries only when the feature bits say they hold more.

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

func mapLen(m *ebpf.Map) (int, error) {
	var (
		k, v []byte
		n    int
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	return n, it.Err()
}

// checkNPT64Mirror reports unless each /64 map holds exactly the /64
// entries of its trie, with the same values.
func checkNPT64Mirror(d *Dataplane) error {
	for _, p := range []struct{ trie, m64 *ebpf.Map }{
		{d.maps.XdprNptIn, d.maps.XdprNpt64In},
		{d.maps.XdprNptOut, d.maps.XdprNpt64Out},
	} {
		want := map[routerXdprNpt64Key]routerXdprNptRule{}
		var (
			k routerXdprLpm6Key
			v routerXdprNptRule
		)
		it := p.trie.Iterate()
		for it.Next(&k, &v) {
			if k.Prefixlen == 32+64 {
				var hk routerXdprNpt64Key
				hk.Ifindex = k.Ifindex
				copy(hk.Prefix[:], k.Addr[:8])
				want[hk] = v
			}
		}
		if err := it.Err(); err != nil {
			return err
		}
		n, err := mapLen(p.m64)
		if err != nil {
			return err
		}
		if n != len(want) {
			return fmt.Errorf("%s holds %d entries, the trie %d /64s", p.m64, n, len(want))
		}
		for hk, wv := range want {
			var got routerXdprNptRule
			if err := p.m64.Lookup(hk, &got); err != nil {
				return fmt.Errorf("%s lacks %v: %w", p.m64, hk, err)
			}
			if got != wv {
				return fmt.Errorf("%s[%v] = %+v, the trie has %+v", p.m64, hk, got, wv)
			}
		}
	}
	return nil
}

func TestNPT64MapsFollowSyncNPT(t *testing.T) {
	rl := newRouterLab(t)
	d := &Dataplane{maps: *rl.maps}
	check := func(t *testing.T, wantIn int, flags uint32) {
		t.Helper()
		if err := checkNPT64Mirror(d); err != nil {
			t.Fatal(err)
		}
		if n, err := mapLen(d.maps.XdprNpt64In); err != nil || n != wantIn {
			t.Fatalf("xdpr_npt64_in holds %d entries (%v), want %d", n, err, wantIn)
		}
		rl.wantFeatures(t, d, flags)
	}
	rl.setNPT(t, nptTestRules) // two /64s among six
	check(t, 2, featureNPT|featureNPT64|featureNPTTrie)

	// Renumbered outside prefix: the /64 copy follows in place.
	renum := nptTestRules[4]
	renum.outside, renum.exclude = "3fff:cccc::/64", ""
	rl.setNPT(t, []nptTestRule{nptTestRules[2], renum})
	check(t, 2, featureNPT|featureNPT64)

	// A rule that fails part way (no such interface) leaves the copy of
	// what was written before it, and the bits that serve it.
	bad := []NPTRule{
		{Interface: "wan0", Inside: netip.MustParsePrefix("fd00:1::/64"), Outside: netip.MustParsePrefix("3fff:1::/64")},
		{Interface: "nosuch0", Inside: netip.MustParsePrefix("fd00:2::/48"), Outside: netip.MustParsePrefix("3fff:2::/48")},
	}
	if err := rl.lab.Do(rl.ns, func() error { return d.SyncNPT(bad) }); err == nil {
		t.Fatal("SyncNPT with a missing interface succeeded")
	}
	check(t, 3, featureNPT|featureNPT64)

	rl.setNPT(t, []nptTestRule{nptTestRules[0]}) // a /48 alone
	check(t, 0, featureNPT|featureNPTTrie)
	if err := rl.lab.Do(rl.ns, func() error { return d.SyncNPT(nil) }); err != nil {
		t.Fatal(err)
	}
	check(t, 0, 0)

	rl.setNPT(t, nptTestRules)
	if err := rl.lab.Do(rl.ns, func() error { return d.deleteByIfindex(rl.ifindex["wan0"]) }); err != nil {
		t.Fatal(err)
	}
	check(t, 0, 0)
}

// What a crash or a failed write can leave in a /64 map (a missing copy, a
// stale value, an entry of no rule) is put right by the next sync.
func TestNPT64MapsRepaired(t *testing.T) {
	rl := newRouterLab(t)
	d := &Dataplane{maps: *rl.maps}
	rl.setNPT(t, nptTestRules)
	var (
		k routerXdprNpt64Key
		v routerXdprNptRule
	)
	it := d.maps.XdprNpt64In.Iterate()
	if !it.Next(&k, &v) {
		t.Fatalf("xdpr_npt64_in empty: %v", it.Err())
	}
	stale := v
	stale.To[0] ^= 0xff
	if err := d.maps.XdprNpt64In.Put(k, stale); err != nil {
		t.Fatal(err)
	}
	var kout routerXdprNpt64Key
	var vout routerXdprNptRule
	if !d.maps.XdprNpt64Out.Iterate().Next(&kout, &vout) {
		t.Fatal("xdpr_npt64_out empty")
	}
	if err := d.maps.XdprNpt64Out.Delete(kout); err != nil {
		t.Fatal(err)
	}
	orphan := routerXdprNpt64Key{Ifindex: k.Ifindex, Prefix: [8]byte{0xfd, 0xee}}
	if err := d.maps.XdprNpt64Out.Put(orphan, vout); err != nil {
		t.Fatal(err)
	}
	if err := checkNPT64Mirror(d); err == nil {
		t.Fatal("the damage went unnoticed")
	}
	if err := d.syncFeatures(); err != nil {
		t.Fatal(err)
	}
	if err := checkNPT64Mirror(d); err != nil {
		t.Fatal(err)
	}
	rl.wantFeatures(t, d, featureNPT|featureNPT64|featureNPTTrie)
}

// The data plane reads the /64 maps first, and the tries after a miss only
// under XDPR_F_NPT_TRIE: a /64 rule present in the trie alone is invisible
// without the bit and found with it.
func TestNPT64LookupOrder(t *testing.T) {
	rl := newRouterLab(t)
	d := &Dataplane{maps: *rl.maps}
	r64 := nptTestRules[2]
	rl.setNPT(t, []nptTestRule{r64})
	const remote = "2001:db8:100::1"
	snpt := udp6(t, r64.host(false, "::1234"), remote)
	dnpt := udp6(t, remote, r64.host(true, "::1234"), onWAN())
	run := func(t *testing.T, frame []byte, ingress, counter string, want []byte) {
		t.Helper()
		err := rl.lab.Do(rl.ns, func() error {
			_, out, delta, err := rl.runOnce(frame, ingress)
			if err != nil {
				return err
			}
			if want != nil && string(out[:len(want)]) != string(want) {
				return fmt.Errorf("frame: %s", diffBytes(out[:len(want)], want))
			}
			return rl.checkCounters(delta, rl.counterIndex(t, counter), len(frame))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	translated := func(frame []byte, dn bool, egress string) []byte {
		out := append([]byte(nil), frame...)
		modelNPT(out[14:], r64.model(dn), dn)
		return expectForward(out, egress)
	}
	rl.wantFeatures(t, d, featureNPT|featureNPT64)
	run(t, snpt, "lan0", "fwd_npt_snpt", translated(snpt, false, "wan0"))
	run(t, dnpt, "wan0", "fwd_npt_dnpt", translated(dnpt, true, "lan0"))

	// The copies gone, the bits as they were: no trie lookup.
	for _, m := range []*ebpf.Map{d.maps.XdprNpt64In, d.maps.XdprNpt64Out} {
		var k routerXdprNpt64Key
		var v routerXdprNptRule
		if !m.Iterate().Next(&k, &v) {
			t.Fatalf("%s empty", m)
		}
		if err := m.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	// Changed behind the loader's back: a new generation, as the loader
	// starts after every change, retires the CPUs' cached lookups.
	bumpNPTGen(t, d, featureNPT|featureNPT64)
	run(t, snpt, "lan0", "fwd_ipv6", nil)
	run(t, dnpt, "wan0", "pass_local", nil)
	// With the trie bit the trie answers.
	bumpNPTGen(t, d, featureNPT|featureNPT64|featureNPTTrie)
	run(t, snpt, "lan0", "fwd_npt_snpt", translated(snpt, false, "wan0"))
	run(t, dnpt, "wan0", "fwd_npt_dnpt", translated(dnpt, true, "lan0"))
	if err := d.syncFeatures(); err != nil {
		t.Fatal(err)
	}
	if err := checkNPT64Mirror(d); err != nil {
		t.Fatal(err)
	}
	rl.wantFeatures(t, d, featureNPT|featureNPT64)
}

// bumpNPTGen writes xdpr_features with flags and the next generation.
func bumpNPTGen(t *testing.T, d *Dataplane, flags uint32) {
	t.Helper()
	var cur routerXdprFeatureWord
	if err := d.maps.XdprFeatures.Lookup(uint32(0), &cur); err != nil {
		t.Fatal(err)
	}
	if err := d.maps.XdprFeatures.Put(uint32(0), routerXdprFeatureWord{Flags: flags, Gen: cur.Gen + 1}); err != nil {
		t.Fatal(err)
	}
}

// TestNPTCache: a CPU answers a repeated lookup from its xdpr_npt_cache
// entry (a rule removed from the maps alone still translates) until the
// generation changes, and the loader starts a new generation with every
// change (rules removed through SyncNPT are gone for the next packet).
func TestNPTCache(t *testing.T) {
	rl := newRouterLab(t)
	d := &Dataplane{maps: *rl.maps}
	r64 := nptTestRules[2]
	rl.setNPT(t, []nptTestRule{r64})
	snpt := udp6(t, r64.host(false, "::1234"), "2001:db8:100::1")
	var before routerXdprFeatureWord
	if err := d.maps.XdprFeatures.Lookup(uint32(0), &before); err != nil {
		t.Fatal(err)
	}
	err := rl.lab.Do(rl.ns, func() error {
		return onOneCPU(func() error {
			run := func(step, counter string) error {
				_, _, delta, err := rl.runOnce(snpt, "lan0")
				if err != nil {
					return err
				}
				if err := rl.checkCounters(delta, rl.counterIndex(t, counter), len(snpt)); err != nil {
					return fmt.Errorf("%s: %w", step, err)
				}
				return nil
			}
			if err := run("configured", "fwd_npt_snpt"); err != nil {
				return err
			}
			var k routerXdprNpt64Key
			var v routerXdprNptRule
			if !d.maps.XdprNpt64In.Iterate().Next(&k, &v) {
				return fmt.Errorf("xdpr_npt64_in empty")
			}
			if err := d.maps.XdprNpt64In.Delete(k); err != nil {
				return err
			}
			if err := run("removed behind the loader's back, same generation", "fwd_npt_snpt"); err != nil {
				return err
			}
			bumpNPTGen(t, d, featureNPT|featureNPT64)
			if err := run("next generation", "fwd_ipv6"); err != nil {
				return err
			}
			if err := d.syncFeatures(); err != nil {
				return err
			}
			if err := run("/64 copy rebuilt from the trie", "fwd_npt_snpt"); err != nil {
				return err
			}
			if err := d.SyncNPT(nil); err != nil {
				return err
			}
			return run("rules removed through SyncNPT", "fwd_ipv6")
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	var after routerXdprFeatureWord
	if err := d.maps.XdprFeatures.Lookup(uint32(0), &after); err != nil {
		t.Fatal(err)
	}
	if after.Gen <= before.Gen+1 {
		t.Errorf("generation %d after a sync and a SyncNPT from %d", after.Gen, before.Gen)
	}
}
