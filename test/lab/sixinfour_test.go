package lab

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// The 6in4 lab (issue 15, item 1's 6in4 part; seed 000's author's HE.net
// prefix): a LAN host with an address from the broker's routed /48
// reaches an IPv6 host behind the broker over an IPv4-only underlay.
// Content-verified TCP both ways is encapsulated and decapsulated in XDP
// (counters), the router's own traffic takes the TC slow path, a packet
// over the tunnel MTU gets a packet-too-big from XDP, and the broker
// (broker.py, independent of xdprouter) finds every outer header right.
func TestSixInFourBroker(t *testing.T) { forEachTCMode(t, testSixInFourBroker) }

// newSixInFourLab builds the 6in4 lab, starts the broker with brokerArgs
// and writes the router's config with the firewall section given; the
// CLI has a daemon socket of its own.
func newSixInFourLab(t *testing.T, firewall string, brokerArgs ...string) (*labkit.SitTopology, labkit.CLI, string, context.Context) {
	t.Helper()
	needRoot(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Fatalf("the 6in4 lab needs /usr/bin/python3 for the broker: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	t.Cleanup(cancel)
	topo, err := labkit.NewSitTopology()
	if err != nil {
		t.Fatal(err)
	}
	labkit.CloseAtEnd(t, topo)
	root, err := labkit.FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.QuietBrokerGRO(ctx, xdprouterBin); err != nil {
		t.Fatal(err)
	}
	if err := topo.StartBroker(ctx, root, brokerArgs...); err != nil {
		t.Fatal(err)
	}
	config := topo.Config() + firewall + "\n"
	t.Logf("config:\n%s", config)
	path := filepath.Join(topo.Lab.RunDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: topo.Router, BPFFS: topo.BPFFS,
		Socket: filepath.Join(topo.Lab.RunDir(), "xdprouter.sock")}
	return topo, cli, path, ctx
}

func testSixInFourBroker(t *testing.T) {
	topo, cli, path, ctx := newSixInFourLab(t, `firewall: {mode: "off"}  # far opens connections to the LAN host`)
	mustCLI(t, ctx, cli, "apply", "--config", path)
	st := mustCLI(t, ctx, cli, "status").Stdout
	if !regexp.MustCompile(`(?m)^` + labkit.SitName + `\s+6in4\s`).MatchString(st) {
		t.Errorf("status shows no 6in4 tunnel %s:\n%s", labkit.SitName, st)
	}
	if strings.Contains(st, "outer-fragmented ipip6") {
		t.Errorf("status speaks of ipip6 where there is none:\n%s", st)
	}
	// The steering apply installed: from the routed /48 by the tunnel.
	rules, err := topo.Lab.Exec(topo.Router, "ip", "-6", "rule", "show")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rules, "from "+labkit.SitRouted48.String()+" lookup") {
		t.Errorf("no source rule for %s:\n%s", labkit.SitRouted48, rules)
	}
	host, far := labkit.SitHost6.Addr(), labkit.SitFar6.Addr()
	r := cli.Runner
	if _, err := r.Ping(ctx, topo.Host, far, 3); err != nil {
		t.Fatalf("ping far through the tunnel: %v", err)
	}
	checkBroker := func(t *testing.T) labkit.BrokerStats {
		t.Helper()
		s, err := topo.BrokerStats()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("broker: decapsulated %d, encapsulated %d, inner hop limits %v", s.Decapsulated, s.Encapsulated, s.HopLimits)
		if v := s.Violations(); len(v) > 0 {
			t.Errorf("the broker rejected outer headers: %s", strings.Join(v, "; "))
		}
		return s
	}

	t.Run("TCP 10 MB from the LAN host to far", func(t *testing.T) {
		// The host's link MTU is 1500: its first full-size segments
		// are over the tunnel's 1480 (the ping taught it nothing).
		res, delta := bulk(t, ctx, cli.WithLog(t), topo.Lab, topo.Host, topo.Far, far, bulkSize)
		if delta["tun6in4_icmp_ptb"].Packets == 0 {
			t.Errorf("no packet too big from XDP for the host's 1500-octet segments; counters: %s", delta)
		}
		if want := uint64(res.SenderTCP.SegsOut) * 9 / 10; delta["tun6in4_encap"].Packets < want {
			t.Errorf("tun6in4_encap: %d packets encapsulated in XDP, want >= 90%% of the %d segments the host sent",
				delta["tun6in4_encap"].Packets, res.SenderTCP.SegsOut)
		}
		s := checkBroker(t)
		for _, h := range s.HopLimits {
			if h != 63 {
				t.Errorf("inner hop limit %d at the broker, want 63 (the host's 64 less the router's one)", h)
			}
		}
	})
	t.Run("TCP 10 MB from far to the LAN host", func(t *testing.T) {
		res, delta := bulk(t, ctx, cli.WithLog(t), topo.Lab, topo.Far, topo.Host, host, bulkSize)
		// The gate passes what follows the sender's FIN (pass_ct_tcp_state).
		if want := uint64(res.SenderTCP.SegsOut) * 9 / 10; delta["tun6in4_decap"].Packets+delta["pass_ct_tcp_state"].Packets < want {
			t.Errorf("tun6in4_decap: %d packets decapsulated in XDP (+%d by the gate after the FIN), want >= 90%% of the %d segments far sent",
				delta["tun6in4_decap"].Packets, delta["pass_ct_tcp_state"].Packets, res.SenderTCP.SegsOut)
		}
		checkBroker(t)
	})
	t.Run("router-originated TCP (slow path)", func(t *testing.T) {
		res, err := labkit.TransferFrom(ctx, topo.Lab, topo.Router, labkit.SitLinkClient.Addr(), topo.Far, far, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("TCP router -> far: %d bytes, sha256 %s on both ends", res.Bytes, res.RecvSHA)
		st := mustCLI(t, ctx, cli, "stats").Stdout
		for _, c := range []string{"tc_encap_6in4", "tc_decap_6in4"} {
			if !strings.Contains(st, c) {
				t.Errorf("stats: no %s after the router's own transfer:\n%s", c, st)
			}
		}
		checkBroker(t)
	})
	// ICMP is the kernel's (the conntrack gate passes it): its forward
	// path answers from the tunnel netdev's MTU, the same 1480.
	t.Run("over the tunnel MTU: ping gets packet too big", func(t *testing.T) {
		// The transfers taught the host the path MTU already.
		if _, err := topo.Lab.Exec(topo.Host, "ip", "-6", "route", "flush", "cache"); err != nil {
			t.Fatal(err)
		}
		before := mustCounters(t, ctx, cli)
		out, err := topo.Lab.Exec(topo.Host, "ping", "-6", "-c", "1", "-W", "2", "-M", "do", "-s", "1450", far.String())
		delta := mustCounters(t, ctx, cli).Sub(before)
		if err == nil {
			t.Errorf("a 1498-octet ping went through a tunnel of MTU 1480:\n%s", out)
		}
		if delta["pass_ct_proto"].Packets != 1 {
			t.Errorf("pass_ct_proto +%d, want +1 (ICMP to the kernel); counters: %s", delta["pass_ct_proto"].Packets, delta)
		}
		route, _ := topo.Lab.Exec(topo.Host, "ip", "-6", "route", "get", far.String())
		if !strings.Contains(route, "mtu 1480") {
			t.Errorf("the host learned no path MTU of 1480 from the packet too big: %s", route)
		}
	})
	t.Run("detach --all removes the tunnel", func(t *testing.T) {
		mustCLI(t, ctx, cli, "detach", "--all")
		if out, err := topo.Lab.Exec(topo.Router, "ip", "link", "show", labkit.SitName); err == nil {
			t.Errorf("netdev %s still there after detach --all:\n%s", labkit.SitName, out)
		}
		if out, _ := topo.Lab.Exec(topo.Router, "ip", "-6", "rule", "show"); strings.Contains(out, labkit.SitRouted48.String()) {
			t.Logf("steering rules are left by detach (they are apply's, removed by the daemon on exit):\n%s", out)
		}
	})
}
