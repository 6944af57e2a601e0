package loader

// xdpr_features in both states: the loader keeps each bit in step with its
// maps (SyncNPT, SyncNDPProxy, detach, Open), and the data plane skips a
// feature whose bit is clear and serves it when set.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func (rl *routerLab) wantFeatures(t *testing.T, d *Dataplane, want uint32) {
	t.Helper()
	got, err := d.features()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		names, _ := featureNames(got)
		t.Fatalf("xdpr_features %#x %v, want %#x", got, names, want)
	}
}

func TestFeaturesFollowTheMaps(t *testing.T) {
	rl := newRouterLab(t)
	d := &Dataplane{maps: *rl.maps}
	rl.wantFeatures(t, d, 0)
	r64 := nptTestRules[2]
	const remote = "2001:db8:100::1"
	dnpt := udp6(t, remote, r64.host(true, "::1234"), onWAN())
	snpt := udp6(t, r64.host(false, "::1234"), remote)
	ns := nsSpec{target: "3fff:64:1:2::abcd"}.build(t) // proxied on wan0

	// run checks which counter one frame lands on.
	run := func(t *testing.T, name string, frame []byte, ingress, counter string) {
		t.Helper()
		err := rl.lab.Do(rl.ns, func() error {
			_, _, delta, err := rl.runOnce(frame, ingress)
			if err != nil {
				return err
			}
			return rl.checkCounters(delta, rl.counterIndex(t, counter), len(frame))
		})
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	set := func(t *testing.T, flags uint32) {
		t.Helper()
		if err := rl.maps.XdprFeatures.Put(uint32(0), routerXdprFeatureWord{Flags: flags}); err != nil {
			t.Fatal(err)
		}
	}

	const nptAll = featureNPT | featureNPT64 | featureNPTTrie
	rl.setNPT(t, nptTestRules)
	rl.wantFeatures(t, d, nptAll)
	rl.setNDP(t)
	rl.wantFeatures(t, d, nptAll|featureNDPProxy)
	run(t, "dnpt, npt on", dnpt, "wan0", "fwd_npt_dnpt")
	run(t, "snpt, npt on", snpt, "lan0", "fwd_npt_snpt")
	run(t, "ns, proxy on", ns, "wan0", "tx_ndp_na")

	// The bits gate the lookups: with a bit clear the data plane acts as
	// if the maps were empty (the state the loader keeps a clear bit in):
	// the outside address is routed as it is, and the lab has no route
	// for it (pass_local is the fib's NOT_FWDED).
	set(t, featureNDPProxy)
	run(t, "dnpt, npt off", dnpt, "wan0", "pass_local")
	run(t, "snpt, npt off", snpt, "lan0", "fwd_ipv6")
	run(t, "ns, proxy still on", ns, "wan0", "tx_ndp_na")
	set(t, nptAll)
	run(t, "ns, proxy off", ns, "wan0", "pass_l2_multicast")
	run(t, "dnpt, npt on again", dnpt, "wan0", "fwd_npt_dnpt")
	if err := d.syncFeatures(); err != nil {
		t.Fatal(err)
	}
	rl.wantFeatures(t, d, nptAll|featureNDPProxy)

	// Emptying a map clears its bit; detaching an interface clears the
	// bits its entries alone needed (lan0 keeps a proxied prefix).
	err := rl.lab.Do(rl.ns, func() error { return d.SyncNPT(nil) })
	if err != nil {
		t.Fatal(err)
	}
	rl.wantFeatures(t, d, featureNDPProxy)
	run(t, "dnpt after the rules went", dnpt, "wan0", "pass_local")
	if err := rl.lab.Do(rl.ns, func() error { return d.SyncNDPProxy(nil) }); err != nil {
		t.Fatal(err)
	}
	rl.wantFeatures(t, d, 0)
	run(t, "ns after the prefixes went", ns, "wan0", "pass_l2_multicast")
	rl.setNDP(t)
	rl.wantFeatures(t, d, nptAll|featureNDPProxy)
	if err := rl.lab.Do(rl.ns, func() error { return d.deleteByIfindex(rl.ifindex["wan0"]) }); err != nil {
		t.Fatal(err)
	}
	rl.wantFeatures(t, d, featureNDPProxy)
	if err := rl.lab.Do(rl.ns, func() error { return d.deleteByIfindex(rl.ifindex["lan0"]) }); err != nil {
		t.Fatal(err)
	}
	rl.wantFeatures(t, d, 0)
}

// Open recomputes the bits from the pinned maps, so a bit lost between a
// map change and its update (a crash) is put right by the next command, and
// rebuilds /64 maps an older version did not have.
func TestOpenRecomputesFeatures(t *testing.T) {
	rl := newRouterLab(t)
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("xf%06x", rand.Uint32()&0xffffff))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	err := rl.lab.Do(rl.ns, func() error {
		d, err := Open(dir)
		if err != nil {
			return err
		}
		err = d.SyncNPT([]NPTRule{{Interface: "wan0", Inside: netip.MustParsePrefix("fd00:bbbb::/64"),
			Outside: netip.MustParsePrefix("3fff:aaaa::/64"), Mode: NPTRFC6296}})
		if err == nil {
			err = d.maps.XdprFeatures.Put(uint32(0), routerXdprFeatureWord{})
		}
		d.Close()
		if err != nil {
			return err
		}
		// An older version pinned the tries but no /64 maps: Open
		// creates them empty and fills them from the tries.
		for _, m := range []string{"xdpr_npt64_in", "xdpr_npt64_out"} {
			if err := os.Remove(filepath.Join(dir, m)); err != nil {
				return err
			}
		}
		d, err = Open(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		flags, err := d.features()
		if err == nil && flags != featureNPT|featureNPT64 {
			err = fmt.Errorf("after Open: xdpr_features %#x, want %#x", flags, featureNPT|featureNPT64)
		}
		st, serr := d.Status()
		if serr == nil && !bytes.Equal([]byte(fmt.Sprint(st.Features)), []byte("[npt npt64]")) {
			serr = fmt.Errorf("status features %v, want [npt npt64]", st.Features)
		}
		if err == nil {
			err = serr
		}
		if err == nil {
			var n int
			n, err = mapLen(d.maps.XdprNpt64Out)
			if err == nil && n != 1 {
				err = fmt.Errorf("xdpr_npt64_out holds %d entries after Open, want 1", n)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
