package loader

import (
	"testing"
	"time"
)

// TestConntrackGateCache: a CPU reuses the gate's "forward" verdict for a
// flow (ct_cache_hit) instead of asking conntrack per packet; the verdict
// outlives a deleted entry by at most the stated bound (ctCacheLife plus a
// jiffy), and a FIN clears both directions' verdicts on its CPU at once.
// The cached verdict carries no NAT it was not given (covered by TestNAT44,
// whose flows are cached too).
func TestConntrackGateCache(t *testing.T) {
	// A long life for the hits: a run seconds after the last (a guest
	// under emulation, a loaded host) must still find the verdict.
	t.Run("hit", func(t *testing.T) {
		old := ctCacheLife
		ctCacheLife = time.Minute
		defer func() { ctCacheLife = old }()
		cl := newCTLab(t)
		udp := udp4(t, "10.0.1.2", "198.51.100.9")
		err := onOneCPU(func() error {
			cl.conntrack(t, "-F")
			cl.conntrack(t, ctEntry("udp", "10.0.1.2", "198.51.100.9", udpSport, udpDport, "-u", "SEEN_REPLY,ASSURED")...)
			cl.expectGate(t, udp, "lan0", xdpRedirect, "fwd_ipv4", false)
			cl.expectGate(t, udp, "lan0", xdpRedirect, "fwd_ipv4", true)
			// IPv6 is cached the same way.
			cl.conntrack(t, ctEntry("udp", "2001:db8:1::2", "2001:db8:100::9", udpSport, udpDport, "-u", "SEEN_REPLY,ASSURED")...)
			udp6 := udp6(t, "2001:db8:1::2", "2001:db8:100::9")
			cl.expectGate(t, udp6, "lan0", xdpRedirect, "fwd_ipv6", false)
			cl.expectGate(t, udp6, "lan0", xdpRedirect, "fwd_ipv6", true)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	// The bound as shipped: a deleted entry is honoured once it passes.
	// (Two runs within the shipped 10 ms are more than emulation gives:
	// the hits are the subtest above's.)
	t.Run("bound", func(t *testing.T) {
		cl := newCTLab(t)
		udp := udp4(t, "10.0.1.2", "198.51.100.9")
		err := onOneCPU(func() error {
			cl.conntrack(t, "-F")
			cl.conntrack(t, ctEntry("udp", "10.0.1.2", "198.51.100.9", udpSport, udpDport, "-u", "SEEN_REPLY,ASSURED")...)
			cl.expectGate(t, udp, "lan0", xdpRedirect, "fwd_ipv4", false)
			cl.conntrack(t, "-D", "-p", "udp", "-s", "10.0.1.2", "-d", "198.51.100.9")
			time.Sleep(ctCacheLife + 2*time.Second/time.Duration(kernelHZ()))
			cl.expectGate(t, udp, "lan0", xdpPass, "pass_ct_new", false)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	// A long life, so that what follows cannot be the bound's doing.
	t.Run("forget on FIN", func(t *testing.T) {
		old := ctCacheLife
		ctCacheLife = time.Minute
		defer func() { ctCacheLife = old }()
		cl := newCTLab(t)
		ack := udp4(t, "10.0.1.2", "198.51.100.9", tcp())
		wan := labIfaceByName("wan0")
		reply := udp4(t, "198.51.100.9", "10.0.1.2", tcp(), swapPorts(), to(wan.mac), from(wan.peerMAC))
		fin := fixTCP(set(udp4(t, "10.0.1.2", "198.51.100.9", tcp()), 14+20+13, 0x11)) // FIN|ACK
		entry := ctEntry("tcp", "10.0.1.2", "198.51.100.9", tcpSport, tcpDport, "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED")
		err := onOneCPU(func() error {
			cl.conntrack(t, "-F")
			cl.conntrack(t, entry...)
			cl.expectGate(t, ack, "lan0", xdpRedirect, "fwd_ipv4", false)
			cl.expectGate(t, reply, "wan0", xdpRedirect, "fwd_ipv4", false)
			cl.conntrack(t, "-F")
			// Within the (minute-long) life, both directions are
			// answered from the cache although the entry is gone.
			cl.expectGate(t, ack, "lan0", xdpRedirect, "fwd_ipv4", true)
			cl.expectGate(t, reply, "wan0", xdpRedirect, "fwd_ipv4", true)
			// The FIN goes to the kernel and takes both with it.
			cl.expectGate(t, fin, "lan0", xdpPass, "pass_ct_tcp_flags", false)
			cl.expectGate(t, ack, "lan0", xdpPass, "pass_ct_new", false)
			cl.expectGate(t, reply, "wan0", xdpPass, "pass_ct_new", false)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// expectGate runs frame through the gated program of ingress and checks
// the verdict, the packet counter and whether the verdict came from the
// cache (ct_cache_hit).
func (cl *ctLab) expectGate(t *testing.T, frame []byte, ingress string, verdict uint32, counter string, hit bool) {
	t.Helper()
	v, _, delta, err := cl.run(cl.gated[ingress], frame, ingress)
	if err != nil {
		t.Fatal(err)
	}
	if v != verdict {
		t.Errorf("%s: verdict %s, want %s", counter, verdictName(v), verdictName(verdict))
	}
	if err := cl.checkCounters(delta[:routerXdprCounterXDPR_CNT__MAX], cl.counterIndex(t, counter), len(frame)); err != nil {
		t.Error(err)
	}
	hits := delta[int(routerXdprCounterLayoutXDPR_EV_BASE)+int(routerXdprEventXDPR_EV_CT_CACHE_HIT)].Packets
	if (hits == 1) != hit || hits > 1 {
		t.Errorf("%s: ct_cache_hit +%d, want cached %v", counter, hits, hit)
	}
}
