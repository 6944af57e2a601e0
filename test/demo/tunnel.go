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

// tunnelConfig is the router of a DS-Lite line: no IPv4 on the WAN, all
// IPv4 of the LAN into an ipip6 tunnel to the AFTR.
func tunnelConfig() string {
	return fmt.Sprintf(`wan:
  interface: %s
lan:
  - interface: %s
    ipv4: %s
tunnels:
  - name: %s
    mode: ipip6
    remote: %-17s # the AFTR
    local: %-18s # our WAN address: the B4 end
    routes: [0.0.0.0/0]
`, labkit.TunWANIf, labkit.TunLANIf, labkit.TunRouterLAN4, labkit.TunnelName,
		labkit.AFTR6, labkit.TunRouterWAN6.Addr())
}

func tunnelDiagram(t *labkit.TunnelTopology) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  host (netns %s)\n", t.Host)
	fmt.Fprintf(&b, "    %-5s %-20s default via %s\n", labkit.TunHostIf, labkit.TunHost4, labkit.TunRouterLAN4.Addr())
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "    %-5s %-20s (from the config)\n", labkit.TunLANIf, labkit.TunRouterLAN4)
	fmt.Fprintf(&b, "  router (netns %s): xdprouter, the B4\n", t.Router)
	fmt.Fprintf(&b, "    %-5s %-20s IPv6 only, default via %s\n", labkit.TunWANIf, labkit.TunRouterWAN6, labkit.ISPWAN6.Addr())
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "    %-5s %s\n", labkit.ISPWANIf, labkit.ISPWAN6)
	fmt.Fprintf(&b, "  isp (netns %s): the AFTR %s (test/aftr/aftr.py on tun %s)\n", t.ISP, labkit.AFTR6, labkit.AFTRTunIf)
	fmt.Fprintf(&b, "    %-5s %s\n", labkit.ISPNetIf, labkit.ISPNet4)
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "    %-5s %-20s default via %s\n", labkit.InternetIf, labkit.Internet4, labkit.ISPNet4.Addr())
	fmt.Fprintf(&b, "  internet (netns %s): an IPv4 server\n", t.Internet)
	return b.String()
}

// runTunnel is part 2: DS-Lite through an independent AFTR.
func runTunnel(ctx context.Context, root, bin string, size int64) (err error) {
	heading("Build a lab: host — router — isp (AFTR) — internet")
	say("Seed 003 is a DS-Lite line (transix style, RFC 6333): the ISP gives the router",
		"IPv6 only. The LAN keeps private IPv4; the router (the B4) wraps every IPv4",
		"packet in IPv6 (ipip6, RFC 2473) and sends it to the ISP's AFTR, which unwraps it",
		"and NATs it to the IPv4 internet. The AFTR here is test/aftr/aftr.py, written",
		"independently of xdprouter; it checks every outer header it receives.")
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		return fmt.Errorf("the AFTR needs /usr/bin/python3 (apt-get install python3): %w", err)
	}
	topo, err := labkit.NewTunnelTopology()
	if err != nil {
		return err
	}
	defer cleanUp(&err, topo, fmt.Sprintf("Stopped aftr.py; removed namespaces %s, %s, %s, %s and everything under %s.",
		topo.Host, topo.Router, topo.ISP, topo.Internet, topo.Lab.RunDir()))
	fmt.Println(tunnelDiagram(topo))
	// Lab plumbing, not the router under test: see QuietISPGRO.
	if err := topo.QuietISPGRO(ctx, bin); err != nil {
		return err
	}
	if err := topo.StartAFTR(ctx, root); err != nil {
		return err
	}
	fmt.Printf("$ %s &\nready\n\n", labkit.Cmdline(nil, netlab.InNS(topo.ISP, "/usr/bin/python3", "test/aftr/aftr.py", "relay",
		"--wan", labkit.ISPWANIf, "--tun", labkit.AFTRTunIf, "--aftr", labkit.AFTR6.String(), "--stats", "…")))

	cli := labkit.CLI{Runner: labkit.Runner{Log: transcript{}}, Bin: bin, NS: topo.Router, BPFFS: topo.BPFFS,
		Socket: filepath.Join(topo.Lab.RunDir(), "xdprouter.sock")}
	sh := cli.Runner

	heading("Configure the tunnel")
	cfg := filepath.Join(topo.Lab.RunDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(tunnelConfig()), 0o600); err != nil {
		return err
	}
	say("One tunnels: entry. apply creates the ipip6 netdev (MTU 1460: 1500 minus the",
		"40-byte IPv6 header), routes 0.0.0.0/0 into it, attaches XDP to both ports and",
		"tells XDP about the tunnel: LAN IPv4 is encapsulated and the AFTR's replies",
		"decapsulated in XDP; the router's own IPv4 takes the kernel netdev with a TC program.")
	fmt.Printf("$ cat %s\n%s\n", cfg, tunnelConfig())
	if _, err := cli.Run(ctx, "apply", "--config", cfg); err != nil {
		return err
	}
	if _, err := cli.Run(ctx, "status"); err != nil {
		return err
	}

	heading("IPv4 from the LAN to the internet, through the tunnel")
	internet := labkit.Internet4.Addr()
	before, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	if _, err := sh.Ping(ctx, topo.Host, internet, 3); err != nil {
		return err
	}
	fmt.Printf("And %d random bytes over TCP, checked with sha256 on both ends:\n", size)
	res, err := labkit.Transfer(ctx, topo.Lab, topo.Host, topo.Internet, internet, size)
	if err != nil {
		return err
	}
	fmt.Printf("  %d bytes to %s in %v (%.0f Mbit/s), sha256 %s… identical on both ends\n",
		res.Bytes, internet, res.Elapsed.Round(time.Millisecond), res.Throughput(), res.RecvSHA[:16])
	fmt.Printf("  the host sent %d TCP segments, the internet host %d\n\n", res.SenderTCP.SegsOut, res.RecvTCP.SegsOut)
	after, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	d := after.Sub(before)
	s, err := topo.AFTRStats()
	if err != nil {
		return err
	}
	if v := s.Violations(); len(v) > 0 {
		return fmt.Errorf("the AFTR rejected outer headers: %s", strings.Join(v, "; "))
	}
	mss := "none"
	if len(s.MSSSeen) > 0 {
		mss = fmt.Sprint(s.MSSSeen[0])
	}
	fmt.Printf("The AFTR unwrapped %d packets and wrapped %d; every outer header was right.\n", s.Decapsulated, s.Encapsulated)
	fmt.Printf("The host's SYN reached the internet with MSS %s: the router clamps it to fit\n", mss)
	fmt.Printf("the tunnel (1460 - 40), so TCP never sends a segment too big for it.\n\n")

	heading("Counters: encapsulated and decapsulated in XDP")
	say("tun_encap counts LAN packets XDP wrapped in IPv6 and sent straight out of wan0,",
		"tun_decap the AFTR's packets it unwrapped and sent to the LAN. The config has no",
		"firewall section, so the default firewall is in force and the conntrack gate is",
		"on: XDP carries a flow once conntrack holds it established, and looks it up by",
		"the inner IPv4 packet. Everything else goes to the kernel, which routes it into",
		"the "+labkit.TunnelName+" netdev, where TC encapsulates (tc_encap), or decapsulates it in TC",
		"(tc_decap): the pings (pass_ct_proto), the handshake and the FIN (pass_ct_tcp_flags)",
		"and what follows the FIN (pass_ct_tcp_state) - the AFTR relays in Python, so many",
		"of the internet host's ACKs are still on their way when the host's FIN passes.")
	if _, err := cli.Run(ctx, "stats"); err != nil {
		return err
	}
	fmt.Println("During the pings and the transfer:")
	printDeltas(d, "tun_encap", "tun_decap", "tc_encap", "tc_decap", "pass_ct_proto", "pass_ct_tcp_flags", "pass_ct_tcp_state")
	fmt.Printf("The transfer was %d data-direction segments and %d ACKs (TCP_INFO).\n\n", res.SenderTCP.SegsOut, res.RecvTCP.SegsOut)
	if d["pass_no_neigh"].Packets > 0 {
		say("pass_no_neigh: the first packet left before the router had resolved its next hop",
			"to the AFTR; XDP handed it to the kernel, which routed it into "+labkit.TunnelName+",",
			"where the TC program encapsulated it (tc_encap).")
	}
	// The data direction is carried in XDP; of the ACKs, those behind the
	// FIN are the kernel's, and every one is accounted for.
	acks := d["tun_decap"].Packets + d["pass_ct_tcp_state"].Packets + d["pass_ct_tcp_flags"].Packets
	if d["tun_encap"].Packets < uint64(res.SenderTCP.SegsOut)*9/10 || d["tun_decap"].Packets == 0 ||
		acks < uint64(res.RecvTCP.SegsOut)*9/10 || d["pass_ct_proto"].Packets < 6 {
		return fmt.Errorf("XDP encapsulated %d and decapsulated %d packets for %d + %d TCP segments (%s)",
			d["tun_encap"].Packets, d["tun_decap"].Packets, res.SenderTCP.SegsOut, res.RecvTCP.SegsOut, d)
	}

	heading("Too big for the tunnel: Fragmentation Needed")
	say("A 1472-byte ping with Don't Fragment is a 1500-byte IPv4 packet: it fits the LAN",
		"but not the tunnel, where 40 bytes of IPv6 come on top. A ping is ICMP, so the",
		"gate leaves it to the kernel, which answers with ICMP Fragmentation Needed",
		"carrying the tunnel MTU, 1460 (path MTU discovery); XDP gives the same answer",
		"itself to a too-big packet of a flow it carries (tun_icmp_frag_needed). 1432",
		"bytes of payload fit and go through.")
	bigBefore, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	big, _ := sh.InNS(ctx, topo.Host, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1472", internet.String())
	if !strings.Contains(big.Stdout, "mtu = 1460") {
		return fmt.Errorf("want \"Frag needed and DF set (mtu = 1460)\" from the router, got:\n%s", big.Stdout)
	}
	if _, err := sh.InNS(ctx, topo.Host, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1432", internet.String()); err != nil {
		return err
	}
	bigAfter, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	bd := bigAfter.Sub(bigBefore)
	fmt.Printf("pass_ct_proto +%d (the pings and the reply: ICMP is the kernel's), tun_icmp_frag_needed +%d.\n\n",
		bd["pass_ct_proto"].Packets, bd["tun_icmp_frag_needed"].Packets)
	if bd["pass_ct_proto"].Packets < 2 {
		return fmt.Errorf("want the pings passed to the kernel as pass_ct_proto, got %s", bd)
	}

	heading("Detach")
	say("detach --all also removes the tunnel netdev and its routes.")
	_, err = cli.Run(ctx, "detach", "--all")
	return err
}
