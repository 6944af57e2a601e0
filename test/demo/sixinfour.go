package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

func sitDiagram(t *labkit.SitTopology) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  host (netns %s): %s, default via %s\n", t.Host, labkit.SitHost6, labkit.SitRouterLAN6.Addr())
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "    %-5s %-22s (set by hand: sla-id 1 of the routed /48)\n", labkit.TunLANIf, labkit.SitRouterLAN6)
	fmt.Fprintf(&b, "  router (netns %s): xdprouter apply\n", t.Router)
	fmt.Fprintf(&b, "    %-5s %-22s IPv4 only, default via %s\n", labkit.TunWANIf, labkit.SitRouterWAN4, labkit.SitBroker4.Addr())
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "  broker (netns %s): %s, test/broker6in4/broker.py on tun %s\n", t.Broker, labkit.SitBroker4, labkit.SitTunIf)
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "  far (netns %s): %s, an IPv6 host behind the broker\n", t.Far, labkit.SitFar6.Addr())
	return b.String()
}

// runSixInFour is part 6: a HE.net-like 6in4 tunnel broker.
func runSixInFour(ctx context.Context, root, bin string, size int64) (err error) {
	heading("Build a lab: host — router —IPv4— broker — far")
	say("Seed 000's author had IPv6 from Hurricane Electric's tunnel broker: IPv6 in IPv4",
		"(protocol 41, RFC 4213) to HE's server, which routes a /48 to the client. The",
		"kernel here has no sit module; the broker is test/broker6in4/broker.py, written",
		"independently of xdprouter (a raw protocol-41 socket and a tun device); it checks",
		"every outer header it receives. Between router and broker there is only IPv4.")
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		return fmt.Errorf("the broker needs /usr/bin/python3 (apt-get install python3): %w", err)
	}
	topo, err := labkit.NewSitTopology()
	if err != nil {
		return err
	}
	defer cleanUp(&err, topo, fmt.Sprintf("Stopped broker.py; removed namespaces %s, %s, %s, %s and everything under %s.",
		topo.Host, topo.Router, topo.Broker, topo.Far, topo.Lab.RunDir()))
	fmt.Println(sitDiagram(topo))
	// Lab plumbing, not the router under test: see QuietBrokerGRO.
	if err := topo.QuietBrokerGRO(ctx, bin); err != nil {
		return err
	}
	if err := topo.StartBroker(ctx, root); err != nil {
		return err
	}
	fmt.Printf("$ %s &\nready\n\n", labkit.Cmdline(nil, netlab.InNS(topo.Broker, "/usr/bin/python3", "test/broker6in4/broker.py", "relay",
		"--tun", labkit.SitTunIf, "--router", labkit.SitRouterWAN4.Addr().String(), "--stats", "…")))

	cli := labkit.CLI{Runner: labkit.Runner{Log: transcript{}}, Bin: bin, NS: topo.Router, BPFFS: topo.BPFFS}
	sh := cli.Runner

	heading("Configure the tunnel from the broker's tunnel page")
	say("Each line of tunnelbroker.net's page is one setting. apply creates the `he` netdev",
		"(MTU 1480: 1500 less the 20-byte IPv4 header) with the client IPv6 address, the",
		"steering (traffic from the /48 and the link net leaves by the tunnel, a table of",
		"xdprouter's own), attaches XDP to both ports and tells it about the tunnel. LAN",
		"addresses and RAs are the daemon's, so the LAN /64 here was set by hand.")
	cfg := filepath.Join(topo.Lab.RunDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(topo.Config()), 0o600); err != nil {
		return err
	}
	fmt.Printf("$ cat %s\n%s\n", cfg, topo.Config())
	if _, err := cli.Run(ctx, "apply", "--config", cfg); err != nil {
		return err
	}
	if err := grepCLI(ctx, cli, `^(INTERFACE |(lan0|wan0) |TUNNEL |`+labkit.SitName+` |source steering|  [0-9]+: |  table )`, "status"); err != nil {
		return err
	}

	heading("IPv6 from the routed /48 to far, through the tunnel")
	far := labkit.SitFar6.Addr()
	before, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	if _, err := sh.Ping(ctx, topo.Host, far, 3); err != nil {
		return err
	}
	fmt.Printf("And %d random bytes over TCP each way, checked with sha256 on both ends:\n", size)
	up, err := labkit.Transfer(ctx, topo.Lab, topo.Host, topo.Far, far, size)
	if err != nil {
		return err
	}
	down, err := labkit.Download(ctx, topo.Lab, topo.Host, topo.Far, far, size)
	if err != nil {
		return err
	}
	fmt.Printf("  upload    %s -> %s: %d bytes in %v, sha256 %s… identical on both ends\n",
		labkit.SitHost6.Addr(), far, up.Bytes, up.Elapsed.Round(time.Millisecond), up.RecvSHA[:16])
	fmt.Printf("  download  %s <- %s: %d bytes in %v, sha256 %s… identical on both ends\n\n",
		labkit.SitHost6.Addr(), far, down.Bytes, down.Elapsed.Round(time.Millisecond), down.RecvSHA[:16])
	after, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	s, err := topo.BrokerStats()
	if err != nil {
		return err
	}
	if v := s.Violations(); len(v) > 0 {
		return fmt.Errorf("the broker rejected outer headers: %s", strings.Join(v, "; "))
	}
	fmt.Printf("The broker unwrapped %d packets and wrapped %d; every outer header was right\n", s.Decapsulated, s.Encapsulated)
	fmt.Printf("(DF set, TTL 64, TOS from the traffic class), inner hop limits %v.\n\n", s.HopLimits)

	heading("Counters: encapsulated and decapsulated in XDP")
	say("tun6in4_encap counts the LAN's IPv6 packets XDP wrapped in IPv4 and sent straight",
		"out of wan0, tun6in4_decap the broker's it unwrapped and forwarded to the LAN. The",
		"host's first segments are 1500 bytes, over the tunnel's 1480: XDP answers them with",
		"packet-too-big itself (tun6in4_icmp_ptb) and TCP shrinks its segments. What XDP",
		"leaves to the kernel - under the default firewall's conntrack gate, the pings",
		"(pass_ct_proto), each handshake and FIN (pass_ct_tcp_flags) and what follows a FIN",
		"(pass_ct_tcp_state) - the kernel routes into `he`, whose TC program encapsulates",
		"it (tc_encap_6in4); TC on wan0 decapsulates the broker's (tc_decap_6in4).")
	if err := grepCLI(ctx, cli, `^ *(COUNTER|tun6in4_[a-z_]+|tc_(en|de)cap_6in4) `, "stats"); err != nil {
		return err
	}
	d := after.Sub(before)
	fmt.Println("During the pings and the transfers:")
	printDeltas(d, "tun6in4_encap", "tun6in4_decap", "tun6in4_icmp_ptb", "tc_encap_6in4", "tc_decap_6in4",
		"pass_ct_proto", "pass_ct_tcp_flags", "pass_ct_tcp_state")
	fmt.Printf("The host sent the upload in %d segments (TCP_INFO); far, the download in at least %d.\n\n",
		up.SenderTCP.SegsOut, size/1480)
	// The data directions are XDP's; the gate passes what follows the
	// sender's FIN (pass_ct_tcp_state), as in TestSixInFourBroker.
	if d["tun6in4_encap"].Packets < uint64(up.SenderTCP.SegsOut)*9/10 ||
		d["tun6in4_decap"].Packets+d["pass_ct_tcp_state"].Packets < uint64(size)/1500*9/10 ||
		d["tun6in4_icmp_ptb"].Packets == 0 || d["pass_ct_proto"].Packets < 6 {
		return fmt.Errorf("want the transfers encapsulated and decapsulated in XDP, a packet-too-big from XDP and the pings in the kernel, got %s", d)
	}

	heading("Detach")
	say("detach --all also removes the `he` netdev, its routes and the TC programs.")
	if _, err := cli.Run(ctx, "detach", "--all"); err != nil {
		return err
	}
	if out, err := topo.Lab.Exec(topo.Router, "ip", "link", "show", labkit.SitName); err == nil {
		return fmt.Errorf("netdev %s still there after detach --all:\n%s", labkit.SitName, out)
	}
	return nil
}
