package lab

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// bigPings sends count echo requests with a 1400-octet pattern from the
// LAN host to far: each 1448-octet reply leaves the broker in two outer
// fragments (route MTU 1280). It returns ping's output, whether every
// reply came back intact, and the counter deltas.
func bigPings(t *testing.T, ctx context.Context, cli labkit.CLI, topo *labkit.SitTopology, count int) (string, bool, labkit.Counters) {
	t.Helper()
	before := mustCounters(t, ctx, cli)
	out, err := topo.Lab.Exec(topo.Host, "ping", "-6", "-n", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "2",
		"-s", "1400", "-p", "5a3c0ff1", labkit.SitFar6.Addr().String())
	delta := mustCounters(t, ctx, cli).Sub(before)
	t.Logf("ping -s 1400:\n%s\ncounters: %s", out, delta)
	ok := err == nil && strings.Contains(out, fmt.Sprintf("%d received", count)) && !strings.Contains(out, "wrong data")
	return out, ok, delta
}

// TestSixInFourOuterFragments: a broker that sends 6in4 without DF over a
// path of MTU 1280 (broker.py --no-df; the broker's kernel fragments the
// outer IPv4 packet, as a HE.net path may). The router must reassemble,
// then decapsulate, as Linux sit does. Before, XDP passed the fragments
// (pass_fragment), the kernel reassembled them and, with no sit module,
// nothing decapsulated them: every reply larger than 1260 octets was
// lost. With `apply` alone that is still so, but the fragments are counted
// (pass_tun_fragment) and status says it; with the daemon, the reassembled
// packet reaches its raw socket, goes back through the data plane's
// decapsulation (tc_decap_reassembled) and arrives intact: big pings and
// 10 MB of TCP from far to the LAN host, content-verified, with the
// default firewall (a pinhole for the TCP). 6in4 that arrives whole is
// decapsulated once, never relayed.
func TestSixInFourOuterFragments(t *testing.T) {
	topo, cli, path, ctx := newSixInFourLab(t, fmt.Sprintf("firewall: {allow: [{to: %q, proto: tcp}]}", labkit.SitHost6.Addr()), "--no-df")
	if err := topo.FragmentToRouter(1280); err != nil {
		t.Fatal(err)
	}

	t.Run("apply alone: counted, not decapsulated, said in status", func(t *testing.T) {
		cli := cli.WithLog(t)
		mustCLI(t, ctx, cli, "apply", "--config", path)
		st := mustStatus(t, ctx, cli)
		if !strings.Contains(st.OuterFragments, "not decapsulated") || !strings.Contains(st.OuterFragments, "pass_tun_fragment") {
			t.Errorf("status ipip6_outer_fragments %q: want it to say they are not decapsulated without the daemon and how they are counted", st.OuterFragments)
		}
		if _, err := cli.Runner.Ping(ctx, topo.Host, labkit.SitFar6.Addr(), 2); err != nil {
			t.Fatalf("small pings through the tunnel: %v", err)
		}
		out, ok, delta := bigPings(t, ctx, cli, topo, 3)
		if ok || !strings.Contains(out, "0 received") {
			t.Errorf("big pings came back without the daemon:\n%s", out)
		}
		if n := delta["pass_tun_fragment"].Packets; n != 6 {
			t.Errorf("pass_tun_fragment +%d, want +6 (3 replies in 2 fragments each)", n)
		}
		if n := delta["tc_decap_reassembled"].Packets; n != 0 {
			t.Errorf("tc_decap_reassembled +%d without the daemon", n)
		}
		res := mustCLI(t, ctx, cli, "status")
		if !strings.Contains(res.Stdout, "outer-fragmented 6in4: not decapsulated") || strings.Contains(res.Stdout, "outer-fragmented ipip6") {
			t.Errorf("status does not say (only) that outer-fragmented 6in4 is not decapsulated:\n%s", res.Stdout)
		}
	})

	startDaemon(t, ctx, cli, path)
	st := waitFor(t, ctx, cli, "the reassembly relay", func(st labkit.Status) bool {
		return strings.Contains(st.OuterFragments, "decapsulated through")
	})
	t.Logf("ipip6_outer_fragments: %s", st.OuterFragments)

	t.Run("big pings: replies fragmented by the broker arrive intact", func(t *testing.T) {
		out, ok, delta := bigPings(t, ctx, cli.WithLog(t), topo, 5)
		if !ok {
			t.Errorf("big pings lost or changed with the daemon:\n%s", out)
		}
		if n := delta["pass_tun_fragment"].Packets; n != 10 {
			t.Errorf("pass_tun_fragment +%d, want +10 (5 replies in 2 fragments each)", n)
		}
		if n := delta["tc_decap_reassembled"].Packets; n != 5 {
			t.Errorf("tc_decap_reassembled +%d, want +5", n)
		}
	})
	t.Run("TCP 10 MB from far to the LAN host, in outer fragments", func(t *testing.T) {
		// The host's MSS is its link's (1440): far's full segments are
		// 1500-octet IPv6 packets, over the tunnel MTU of 1480 too.
		res, delta := bulk(t, ctx, cli.WithLog(t), topo.Lab, topo.Far, topo.Host, labkit.SitHost6.Addr(), bulkSize)
		if want := uint64(res.SenderTCP.SegsOut) / 2; delta["tc_decap_reassembled"].Packets < want {
			t.Errorf("tc_decap_reassembled +%d, want at least half the %d segments far sent", delta["tc_decap_reassembled"].Packets, res.SenderTCP.SegsOut)
		}
		if delta["pass_tun_fragment"].Packets < 2*delta["tc_decap_reassembled"].Packets {
			t.Errorf("pass_tun_fragment +%d for %d reassembled packets, want two fragments or more each",
				delta["pass_tun_fragment"].Packets, delta["tc_decap_reassembled"].Packets)
		}
	})
	t.Run("whole 6in4 is decapsulated once, not relayed", func(t *testing.T) {
		// Host to far: far's ACKs come back whole (under 1280).
		_, delta := bulk(t, ctx, cli.WithLog(t), topo.Lab, topo.Host, topo.Far, labkit.SitFar6.Addr(), 1<<20)
		if n := delta["tc_decap_reassembled"].Packets + delta["pass_tun_fragment"].Packets; n != 0 {
			t.Errorf("tc_decap_reassembled + pass_tun_fragment = %d for unfragmented 6in4, want 0", n)
		}
		if delta["tun6in4_decap"].Packets+delta["tc_decap_6in4"].Packets == 0 {
			t.Errorf("no ACK decapsulated; counters: %s", delta)
		}
	})
	s, err := topo.BrokerStats()
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Violations(); len(v) > 0 {
		t.Errorf("the broker rejected outer headers: %s", strings.Join(v, "; "))
	}
	res := mustCLI(t, ctx, cli, "status")
	if !strings.Contains(res.Stdout, "outer-fragmented 6in4: reassembled by the kernel, decapsulated through xdpr-frag") {
		t.Errorf("status does not say how outer-fragmented 6in4 is decapsulated:\n%s", res.Stdout)
	}
}
