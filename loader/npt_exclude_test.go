package loader

// The NPT rule's excluded address (the router's own outside address) in
// both states: with it, the address is the kernel's on every path (XDP,
// the TC slow path, the NDP proxy); after a SyncNPT without it, the same
// address is translated and proxied again; and back.

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckNPTExclude(t *testing.T) {
	out := netip.MustParsePrefix("3fff:aaaa::/64")
	for _, c := range []struct {
		addr string
		err  string
	}{
		{"", ""},
		{"3fff:aaaa::feed", ""},
		{"3fff:aaab::feed", "outside 3fff:aaaa::/64"},
		{"10.0.0.1", "not a plain IPv6"},
		{"::ffff:10.0.0.1", "not a plain IPv6"},
		{"3fff:aaaa::feed%wan0", "not a plain IPv6"},
	} {
		var a netip.Addr
		if c.addr != "" {
			a = netip.MustParseAddr(c.addr)
		}
		err := CheckNPTExclude(out, a)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.addr, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want one containing %q", c.addr, err, c.err)
		}
	}
}

// tcCounters reads the TC counters summed over CPUs.
func (rl *routerLab) tcCounters(t *testing.T) map[string]uint64 {
	t.Helper()
	names, err := TCCounterNames()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := readCounters(rl.maps.XdprTcCounters, 0, names, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, c := range cs {
		out[c.Name] = c.Packets
	}
	return out
}

func TestNPTExcludeStates(t *testing.T) {
	rl := newRouterLab(t)
	ph := nptTestRules[4] // preserve-64, excluding 3fff:aaaa::feed
	noEx := ph
	noEx.exclude = ""
	const remote = "2001:db8:100::1"
	toRouter := udp6(t, remote, ph.exclude, onWAN())
	fromInside := udp6(t, ph.excludedInside(), remote)
	ns := nsSpec{target: ph.exclude}.build(t)
	d := &Dataplane{maps: *rl.maps}
	setProxy := func() {
		err := rl.lab.Do(rl.ns, func() error {
			return d.SyncNDPProxy([]NDPProxyEntry{{Interface: "wan0", Prefix: netip.MustParsePrefix(ph.outside), Mode: NDPPrefix}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setProxy()

	check := func(t *testing.T, excluded bool) {
		var rules []NPTRule
		if err := rl.lab.Do(rl.ns, func() error {
			var err error
			rules, err = d.NPTRules()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(rules) != 1 || rules[0].Exclude.IsValid() != excluded || (excluded && rules[0].Exclude.String() != ph.exclude) {
			t.Fatalf("rules read back: %+v", rules)
		}
		before := rl.tcCounters(t)
		err := rl.lab.Do(rl.ns, func() error {
			// XDP, to the router's address.
			v, out, delta, err := rl.runOnce(toRouter, "wan0")
			if err != nil {
				return err
			}
			if excluded {
				if v != xdpPass || !bytes.Equal(out, toRouter) {
					t.Errorf("XDP to the excluded address: %s, %s", verdictName(v), diffBytes(out, toRouter))
				}
				if err := rl.checkCounters(delta, rl.counterIndex(t, "pass_npt_excluded"), len(toRouter)); err != nil {
					t.Error(err)
				}
			} else {
				want := bytes.Clone(toRouter)
				modelNPT(want[14:], noEx.model(true), true)
				if want = expectForward(want, "lan0"); v != xdpRedirect || !bytes.Equal(out, want) {
					t.Errorf("XDP to the no longer excluded address: %s, %s", verdictName(v), diffBytes(out, want))
				}
			}
			// XDP, from the inside address that maps onto it.
			v, out, delta, err = rl.runOnce(fromInside, "lan0")
			if err != nil {
				return err
			}
			if excluded {
				if v != xdpDrop {
					t.Errorf("XDP from the inside twin: %s, want drop", verdictName(v))
				}
				if err := rl.checkCounters(delta, rl.counterIndex(t, "drop_npt_excluded"), len(fromInside)); err != nil {
					t.Error(err)
				}
			} else {
				want := bytes.Clone(fromInside)
				modelNPT(want[14:], noEx.model(false), false)
				if want = expectForward(want, "wan0"); v != xdpRedirect || !bytes.Equal(out, want) {
					t.Errorf("XDP from the inside twin: %s, %s", verdictName(v), diffBytes(out, want))
				}
			}
			// The TC slow path, both directions.
			tv, tout, err := runTC(rl.tc.XdprTcDnpt, toRouter, rl.ifindex["wan0"])
			if err != nil {
				return err
			}
			if excluded && (tv != tcxNext || !bytes.Equal(tout, toRouter)) {
				t.Errorf("TC DNPT to the excluded address: verdict %d, %s", int32(tv), diffBytes(tout, toRouter))
			}
			tv, _, err = runTC(rl.tc.XdprTcSnpt, expectForward(fromInside, "wan0"), rl.ifindex["wan0"])
			if err != nil {
				return err
			}
			if wantV := map[bool]uint32{true: 2, false: tcxNext}[excluded]; tv != wantV {
				t.Errorf("TC SNPT from the inside twin: verdict %d, want %d", int32(tv), int32(wantV))
			}
			// The NDP proxy.
			v, out, delta, err = rl.runOnce(ns, "wan0")
			if err != nil {
				return err
			}
			if excluded {
				if v != xdpPass || !bytes.Equal(out, ns) {
					t.Errorf("NS for the excluded address: %s, %s", verdictName(v), diffBytes(out, ns))
				}
				if err := rl.checkCounters(delta, rl.counterIndex(t, "pass_ndp_excluded"), len(ns)); err != nil {
					t.Error(err)
				}
			} else if want := modelNA(t, ns, mustMAC(labIfaceByName("wan0").mac)); v != xdpTX || !bytes.Equal(out, want) {
				t.Errorf("NS for the no longer excluded address: %s, %s", verdictName(v), diffBytes(out, want))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		after := rl.tcCounters(t)
		wantTC := map[string]uint64{"tc_dnpt": 1, "tc_snpt": 1}
		if excluded {
			wantTC = map[string]uint64{"tc_npt_excluded": 1, "tc_drop_npt_excluded": 1}
		}
		for name, n := range after {
			if got := n - before[name]; got != wantTC[name] {
				t.Errorf("TC counter %s +%d, want +%d", name, got, wantTC[name])
			}
		}
	}

	rl.setNPT(t, []nptTestRule{ph})
	t.Run("excluded", func(t *testing.T) { check(t, true) })
	rl.setNPT(t, []nptTestRule{noEx})
	t.Run("exclude removed", func(t *testing.T) { check(t, false) })
	rl.setNPT(t, []nptTestRule{ph})
	t.Run("excluded again", func(t *testing.T) { check(t, true) })
}

func TestSyncNPTRejectsForeignExclude(t *testing.T) {
	rl := newRouterLab(t)
	d := &Dataplane{maps: *rl.maps}
	err := rl.lab.Do(rl.ns, func() error {
		return d.SyncNPT([]NPTRule{{Interface: "wan0", Inside: netip.MustParsePrefix("fd00:bbbb::/64"),
			Outside: netip.MustParsePrefix("3fff:aaaa::/64"), Mode: NPTRFC6296, Exclude: netip.MustParseAddr("3fff:cccc::feed")}})
	})
	if err == nil || !strings.Contains(err.Error(), "outside 3fff:aaaa::/64") {
		t.Fatalf("SyncNPT with an excluded address outside the prefix: %v", err)
	}
	if err := rl.lab.Do(rl.ns, func() error {
		rules, err := d.NPTRules()
		if err == nil && len(rules) != 0 {
			t.Errorf("rules written despite the error: %+v", rules)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
