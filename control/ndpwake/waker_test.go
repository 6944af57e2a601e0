package ndpwake

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

var (
	shared   = netip.MustParsePrefix("2001:db8:aaaa::/64")
	isp      = netip.MustParseAddr("fe80::1")
	hostAddr = netip.MustParseAddr("2001:db8:aaaa:0:5054:ff:fe12:3456")
	wanAddr  = netip.MustParseAddr("2001:db8:aaaa::feed")
	lanAddr  = netip.MustParseAddr("2001:db8:aaaa::1")
)

func sharedConfig() Config {
	return Config{
		Proxies: []Proxy{{Interface: "wan0", Prefixes: []netip.Prefix{shared}}},
		LANs:    []string{"lan0", "lan1"},
		Own:     []netip.Addr{wanAddr, lanAddr},
	}
}

func TestUnknownTargetIsResolvedOnEveryLAN(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Waker{}, sharedConfig())
		start := time.Now()
		r.hear("wan0", nsPacket(isp, hostAddr, nil))
		got := r.take()
		want := []probe{{lan: "lan0", target: hostAddr, at: start}, {lan: "lan1", target: hostAddr, at: start}}
		if !slices.Equal(got, want) {
			t.Fatalf("probes %+v, want %+v", got, want)
		}
		st := r.w.Stats()
		if st.NSSeen != 1 || st.Probes != 2 || st.LastTarget != hostAddr.String() || !st.LastProbe.Equal(start) ||
			!slices.Equal(st.Interfaces, []string{"wan0"}) {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestOnlyTargetsInLANNeighborPrefixesAreProbed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Waker{}, sharedConfig())
		r.hear("wan0",
			nsPacket(isp, netip.MustParseAddr("2001:db8:bbbb::5"), nil), // not proxied
			nsPacket(isp, wanAddr, nil),                                 // the router's WAN address
			nsPacket(isp, lanAddr, nil),                                 // its LAN address
			nsPacket(netip.IPv6Unspecified(), hostAddr, nil),            // DAD
			nsPacket(isp, hostAddr, func(b []byte) { b[offHopLimit] = 64 }),
			nsPacket(isp, hostAddr, func(b []byte) { b[offICMPType+1] = 1 }),
			nsPacket(isp, hostAddr, func(b []byte) { b[24+15] ^= 1 }), // wrong solicited-node group
			nsPacket(isp, netip.MustParseAddr("ff02::1"), func(b []byte) { copy(b[24:40], netip.MustParseAddr("ff02::1").AsSlice()) }),
			func() []byte { b := nsPacket(isp, hostAddr, nil); b[ipv6HeaderLen+2] ^= 0xff; return b }(),
			nsPacket(isp, hostAddr, nil)[:ipv6HeaderLen+nsLen-1],
		)
		if got := r.take(); len(got) != 0 {
			t.Errorf("probes %+v, want none", got)
		}
		st := r.w.Stats()
		want := map[string]uint64{IgnoreOwn: 2, IgnoreDAD: 1, IgnoreHopLimit: 1, IgnoreCode: 1, IgnoreDest: 1,
			IgnoreTarget: 1, IgnoreChecksum: 1, IgnoreMalformed: 1}
		if st.NSSeen != 10 || st.OutsidePrefixes != 1 || st.Probes != 0 || fmt.Sprint(st.Ignored) != fmt.Sprint(want) {
			t.Errorf("stats %+v, want ignored %v", st, want)
		}
		// The same NS addressed to the target itself (a unicast probe)
		// is fine.
		r.hear("wan0", nsPacket(isp, hostAddr, func(b []byte) { copy(b[24:40], hostAddr.AsSlice()) }))
		if got := r.take(); len(got) != 2 {
			t.Errorf("unicast NS: probes %+v, want one per LAN", got)
		}
	})
}

func TestPerTargetInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Waker{}, sharedConfig())
		other := netip.MustParseAddr("2001:db8:aaaa::77")
		r.hear("wan0", nsPacket(isp, hostAddr, nil))
		time.Sleep(500 * time.Millisecond)
		r.hear("wan0", nsPacket(isp, hostAddr, nil), nsPacket(isp, other, nil))
		if got := r.take(); len(got) != 4 || got[2].target != other {
			t.Fatalf("probes %+v: want the host once and the other target once, on both LANs", got)
		}
		if st := r.w.Stats(); st.RateLimitedTarget != 1 {
			t.Errorf("rate_limited_target %d, want 1", st.RateLimitedTarget)
		}
		// The ISP's retransmission a second later probes again: the host
		// may have missed the first.
		time.Sleep(500 * time.Millisecond)
		r.hear("wan0", nsPacket(isp, hostAddr, nil))
		if got := r.take(); len(got) != 2 || got[0].target != hostAddr {
			t.Errorf("probes %+v after 1s, want the host again", got)
		}
	})
}

func TestFloodIsCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Waker{Rate: 10, Burst: 5}, Config{
			Proxies: []Proxy{{Interface: "wan0", Prefixes: []netip.Prefix{shared}}}, LANs: []string{"lan0"}})
		target := func(i int) netip.Addr {
			a := shared.Addr().As16()
			a[14], a[15] = byte(i>>8), byte(i)
			return netip.AddrFrom16(a)
		}
		var flood [][]byte
		for i := range 100 {
			flood = append(flood, nsPacket(isp, target(i+1), nil))
		}
		r.hear("wan0", flood...)
		if got := r.take(); len(got) != 5 {
			t.Errorf("%d probes for a flood of 100 at once, want the burst of 5", len(got))
		}
		if st := r.w.Stats(); st.RateLimitedGlobal != 95 || st.Probes != 5 {
			t.Errorf("stats %+v", st)
		}
		// Half a second later 5 more tokens have come.
		time.Sleep(500 * time.Millisecond)
		r.hear("wan0", flood[50:60]...)
		if got := r.take(); len(got) != 5 {
			t.Errorf("%d probes after 0.5s at 10/s, want 5", len(got))
		}
	})
}

func TestTableIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Waker{Rate: 1000, Burst: 1000, TableSize: 3}, Config{
			Proxies: []Proxy{{Interface: "wan0", Prefixes: []netip.Prefix{shared}}}, LANs: []string{"lan0"}})
		var ns [][]byte
		for i := range 5 {
			ns = append(ns, nsPacket(isp, netip.MustParseAddr(fmt.Sprintf("2001:db8:aaaa::%d", i+1)), nil))
		}
		r.hear("wan0", ns...)
		if got := r.take(); len(got) != 3 {
			t.Errorf("%d probes, want 3 (the table holds 3 targets)", len(got))
		}
		if st := r.w.Stats(); st.TableFull != 2 {
			t.Errorf("table_full %d, want 2", st.TableFull)
		}
		// Once their interval has passed, old targets make room.
		time.Sleep(time.Second)
		r.hear("wan0", ns[3:]...)
		if got := r.take(); len(got) != 2 {
			t.Errorf("%d probes after the interval, want 2", len(got))
		}
	})
}

func TestNPTOutsideTargetIsResolvedAsInside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, a := netip.MustParsePrefix, netip.MustParseAddr
		r := runRig(t, &Waker{}, Config{
			Proxies: []Proxy{{Interface: "wan0", Prefixes: []netip.Prefix{p("2001:db8:aaaa::/48")},
				NPT: []NPT{
					{Outside: p("2001:db8:aaaa::/48"), Inside: p("2001:db8:cccc::/48")},
					{Outside: shared, Inside: p("2001:db8:bbbb::/64"), RFC6296: true},
				}}},
			LANs: []string{"lan0"},
			Own:  []netip.Addr{a("2001:db8:cccc:1::1")},
		})
		r.hear("wan0",
			nsPacket(isp, a("2001:db8:aaaa:0:1111::123"), nil), // the /64 rule, the more specific
			nsPacket(isp, a("2001:db8:aaaa:2::5"), nil),        // the /48 rule
			nsPacket(isp, a("2001:db8:aaaa:1::1"), nil),        // maps onto the router's own inside address
			nsPacket(isp, a("2001:db8:aaaa:0:ffff:ffff:ffff:ffff"), nil),
		)
		var got []netip.Addr
		for _, pr := range r.take() {
			got = append(got, pr.target)
		}
		if want := []netip.Addr{a("2001:db8:bbbb::123"), a("2001:db8:cccc:2::5")}; !slices.Equal(got, want) {
			t.Errorf("resolved %v, want %v", got, want)
		}
		if st := r.w.Stats(); st.Ignored[IgnoreOwn] != 1 || st.Ignored[IgnoreUnmapped] != 1 {
			t.Errorf("ignored %v, want one own address and one unmappable", st.Ignored)
		}
	})
}

func TestSocketsFollowConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Waker{}, sharedConfig())
		wan0 := r.conn("wan0")
		cfg := sharedConfig()
		cfg.Proxies[0].Interface = "wan1"
		r.w.Set(cfg)
		synctest.Wait()
		if !wan0.isClosed() {
			t.Error("wan0's socket still open after it left the config")
		}
		r.hear("wan1", nsPacket(isp, hostAddr, nil))
		if got := r.take(); len(got) != 2 {
			t.Errorf("probes %+v from wan1", got)
		}
		if st := r.w.Stats(); !slices.Equal(st.Interfaces, []string{"wan1"}) {
			t.Errorf("interfaces %v", st.Interfaces)
		}
		// An NS counts against the interface it arrived on: wan1's
		// prefixes are not wan0's.
		cfg.Proxies = append(cfg.Proxies, Proxy{Interface: "wan0", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:cccc::/64")}})
		r.w.Set(cfg)
		synctest.Wait()
		r.hear("wan0", nsPacket(isp, netip.MustParseAddr("2001:db8:aaaa::99"), nil))
		if st := r.w.Stats(); st.OutsidePrefixes != 1 {
			t.Errorf("ns_outside_prefixes %d, want 1", st.OutsidePrefixes)
		}
		r.stop()
		if !r.conn("wan1").isClosed() || !r.conn("wan0").isClosed() || len(r.w.Stats().Interfaces) != 0 {
			t.Errorf("sockets left open after Run returned (interfaces %v)", r.w.Stats().Interfaces)
		}
	})
}

func TestSocketFailuresAreRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &Waker{}
		r := runRigWith(t, w, sharedConfig(), func(r *rig) { r.failOpen["wan0"] = true })
		if st := w.Stats(); st.SocketErrors != 1 {
			t.Errorf("socket_errors %d, want 1", st.SocketErrors)
		}
		r.mu.Lock()
		r.failOpen["wan0"] = false
		r.mu.Unlock()
		time.Sleep(reopenInterval)
		r.hear("wan0", nsPacket(isp, hostAddr, nil))
		if got := r.take(); len(got) != 2 {
			t.Errorf("probes %+v once the socket opened", got)
		}
		// A read error closes the socket; it is opened again.
		r.conn("wan0").Close()
		synctest.Wait()
		time.Sleep(reopenInterval)
		synctest.Wait()
		r.mu.Lock()
		opens := r.opens["wan0"]
		r.mu.Unlock()
		if opens != 3 || w.Stats().SocketErrors != 2 {
			t.Errorf("%d opens, %d socket errors; want 3 and 2", opens, w.Stats().SocketErrors)
		}
	})
}

func TestProbeErrorsAreCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRigWith(t, &Waker{}, sharedConfig(), func(r *rig) { r.failLAN["lan0"] = true })
		r.hear("wan0", nsPacket(isp, hostAddr, nil))
		if got := r.take(); len(got) != 1 || got[0].lan != "lan1" {
			t.Errorf("probes %+v, want lan1's despite lan0 failing", got)
		}
		if st := r.w.Stats(); st.ProbeErrors != 1 || st.Probes != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

// Targets the data plane leaves to other WAN nodes (issue 13 item 10): the
// subnet-router and reserved anycast addresses, and a WAN router's own
// address, are not resolved on the LANs either.
func TestElsewhereTargetsNotProbed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := sharedConfig()
		router := netip.MustParseAddr("2001:db8:aaaa::2")
		cfg.Proxies[0].Foreign = []netip.Addr{router}
		r := runRig(t, &Waker{}, cfg)
		r.hear("wan0",
			nsPacket(isp, shared.Addr(), nil),
			nsPacket(isp, netip.MustParseAddr("2001:db8:aaaa:0:fdff:ffff:ffff:ff80"), nil),
			nsPacket(isp, router, nil),
		)
		if got := r.take(); len(got) != 0 {
			t.Errorf("probes %+v, want none", got)
		}
		if st := r.w.Stats(); st.Ignored[IgnoreElsewhere] != 3 {
			t.Errorf("ignored %v, want 3 %s", st.Ignored, IgnoreElsewhere)
		}
		// Beside them, a host is probed as ever.
		r.hear("wan0", nsPacket(isp, netip.MustParseAddr("2001:db8:aaaa:0:fdff:ffff:ffff:ff7f"), nil))
		if got := r.take(); len(got) != 2 {
			t.Errorf("a host's address: probes %+v, want one per LAN", got)
		}
	})
}
