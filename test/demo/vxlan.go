package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

func vxlanDiagram(t *labkit.VXLANTopology) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  host (netns %s): SLAAC from the router's RAs, token %s\n", t.Host, labkit.VXLANHostToken)
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "  router (netns %s): xdprouter run, IPv4 %s\n", t.Router, labkit.VXLANRouterWAN4)
	fmt.Fprintf(&b, "       | veth  %s <-> %s\n", labkit.TunWANIf, labkit.ISPWANIf)
	fmt.Fprintf(&b, "  isp (netns %s): radvd (%s), kea-dhcp6 (/56s of %s), IPv4 — native (netns %s) %s\n",
		t.ISP, labkit.VXLANWANPrefix, labkit.VXLANPool, t.Native, labkit.VXLANNative6.Addr())
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "  internet (netns %s): IPv4 only\n", t.Internet)
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "  server (netns %s): %s, kernel vxlan, owns %s\n", t.Server, labkit.VXLANServer4.Addr(), labkit.VXLANParent)
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "  far (netns %s): %s\n", t.Far, labkit.VXLANFar6.Addr())
	return b.String()
}

// runVXLAN is part 5: seed 001, fixed prefixes over VXLAN beside the
// ISP's prefix, with the server set up by the seed's own lines.
func runVXLAN(ctx context.Context, bin string, size int64) (err error) {
	heading("Build a lab: the ISP's prefix natively, fixed prefixes over VXLAN")
	say("Seed 001: a server owns a /40 and routes each client a /64 and a /48 over its own",
		"VXLAN tunnel (IPv6 in VXLAN over IPv4). The client keeps the ISP's (FLET'S) prefix",
		"beside them: traffic from the fixed prefixes must leave by the tunnel, everything",
		"else natively. The ISP runs radvd and kea-dhcp6-server; between the ISP and the",
		"server there is only IPv4.")
	topo, err := labkit.NewVXLANTopology()
	if err != nil {
		return err
	}
	defer cleanUp(&err, topo, fmt.Sprintf("Stopped the daemon, radvd and kea; removed namespaces %s, %s, %s, %s, %s, %s, %s.",
		topo.Host, topo.Router, topo.ISP, topo.Internet, topo.Server, topo.Far, topo.Native))
	fmt.Println(vxlanDiagram(topo))
	say("The server is plain Linux, set up with the seed's own post-up lines:")
	for _, c := range labkit.ServerSeed001Commands() {
		fmt.Printf("$ %s\n", labkit.Cmdline(nil, netlab.InNS(topo.Server, c...)))
	}
	fmt.Println()
	if err := topo.ServerSeed001(); err != nil {
		return err
	}
	cli := labkit.CLI{Runner: labkit.Runner{Log: transcript{}}, Bin: bin, NS: topo.Router, BPFFS: topo.BPFFS,
		Socket: filepath.Join(topo.Lab.RunDir(), "xdprouter.sock")}
	sh := cli.Runner

	heading("The router: one tunnels entry instead of the seed's post-up lines")
	say("The ISP's prefix comes by DHCPv6-PD; the tunnel's prefixes are carved into the LAN",
		"by sla-id like it (the /64 whole, the /48's first /64) and advertised in the LAN's",
		"RAs beside it. xdprouter makes the kernel's vxlan device, its link-net address,",
		"and the source steering: policy rules and a table of its own (protocol 200).")
	cfg := filepath.Join(topo.Lab.RunDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(topo.ClientConfig()), 0o600); err != nil {
		return err
	}
	fmt.Printf("$ cat %s\n%s\n", cfg, topo.ClientConfig())
	d, err := cli.StartDaemon(ctx, cfg, "--state-dir", filepath.Join(topo.Lab.RunDir(), "state"), "--detach-on-exit")
	if err != nil {
		return err
	}
	defer func() {
		if !d.Exited() {
			d.Kill()
		}
	}()
	start := time.Now()
	l, err := topo.WaitLAN(ctx, cli, 60*time.Second)
	if err != nil {
		return fmt.Errorf("%w\ndaemon log:\n%s", err, d.Log())
	}
	fmt.Printf("Within %s the router had its delegated prefix and the LAN host an address in\n", time.Since(start).Round(100*time.Millisecond))
	say("the ISP's /64 and in each fixed /64 (SLAAC, from the router's RAs):")
	if _, err := sh.InNS(ctx, topo.Host, "ip", "-6", "-br", "addr", "show", "dev", labkit.TunHostIf, "scope", "global"); err != nil {
		return err
	}
	if err := grepCLI(ctx, cli, `^(delegated prefix|lan |VXLAN|vxlan01 |source steering|  [0-9]+: |  table )`, "status"); err != nil {
		return err
	}
	say("The kernel's own route lookup answers by source, and XDP asks it the same way",
		"(bpf_fib_lookup goes through the policy rules):")
	far, native := labkit.VXLANFar6.Addr(), labkit.VXLANNative6.Addr()
	for _, r := range []struct {
		src, dst netip.Addr
		dev      string
	}{{l.HostTun, far, labkit.VXLANName}, {l.HostISP, native, labkit.TunWANIf}} {
		res, err := sh.InNS(ctx, topo.Router, "ip", "-6", "route", "get", r.dst.String(), "from", r.src.String(), "iif", labkit.TunLANIf)
		if err != nil {
			return err
		}
		if !strings.Contains(res.Stdout, " dev "+r.dev+" ") {
			return fmt.Errorf("%s from %s: want the route by %s, got %s", r.dst, r.src, r.dev, res.Stdout)
		}
	}

	heading("The tunnel address by the tunnel, the ISP address natively")
	for _, p := range []struct{ src, dst netip.Addr }{{l.HostTun, far}, {l.HostISP, native}} {
		if _, err := sh.PingFrom(ctx, topo.Host, p.src, p.dst, 3); err != nil {
			return err
		}
	}
	fmt.Printf("And %d random bytes over TCP each way between the host's tunnel address and far,\n", size)
	say("then to the native host from its ISP address, checked with sha256 on both ends:")
	tunBefore, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	devBefore, err := topo.DevPackets()
	if err != nil {
		return err
	}
	up, err := labkit.TransferFrom(ctx, topo.Lab, topo.Host, l.HostTun, topo.Far, far, size)
	if err != nil {
		return err
	}
	down, err := labkit.DownloadFrom(ctx, topo.Lab, topo.Host, l.HostTun, topo.Far, far, size)
	if err != nil {
		return err
	}
	tunAfter, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	devAfter, err := topo.DevPackets()
	if err != nil {
		return err
	}
	nat, err := labkit.TransferFrom(ctx, topo.Lab, topo.Host, l.HostISP, topo.Native, native, size)
	if err != nil {
		return err
	}
	natAfter, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("  upload    %s -> %s: %d bytes in %v, sha256 %s… identical on both ends\n",
		l.HostTun, far, up.Bytes, up.Elapsed.Round(time.Millisecond), up.RecvSHA[:16])
	fmt.Printf("  download  %s <- %s: %d bytes in %v, sha256 %s… identical on both ends\n",
		l.HostTun, far, down.Bytes, down.Elapsed.Round(time.Millisecond), down.RecvSHA[:16])
	fmt.Printf("  upload    %s -> %s: %d bytes in %v, sha256 %s… identical on both ends\n\n",
		l.HostISP, native, nat.Bytes, nat.Elapsed.Round(time.Millisecond), nat.RecvSHA[:16])

	heading("Counters: the tunnel's packets in XDP, the native flow beside it")
	say("vxlan_encap counts the LAN's packets XDP wrapped in VXLAN (inner Ethernet, UDP,",
		"outer IPv4) and sent straight out of wan0, vxlan_decap the server's it unwrapped",
		"and forwarded to the LAN; what XDP leaves to the kernel goes through vxlan01 (its",
		"packet counters): the flows' first packets and FINs under the conntrack gate of",
		"the default firewall, and the host's first 1500-byte segments, over vxlan01's MTU",
		"of 1450 (pass_vxlan_too_big: the kernel sends the packet-too-big).")
	if err := grepCLI(ctx, cli, `^vxlan in XDP`, "status"); err != nil {
		return err
	}
	td, nd := tunAfter.Sub(tunBefore), natAfter.Sub(tunAfter)
	dev := devAfter - devBefore
	fmt.Println("During the tunnel's transfers:")
	for _, n := range []string{"vxlan_encap", "vxlan_decap", "pass_vxlan_too_big"} {
		fmt.Printf("  %-18s +%d\n", n, td[n].Packets)
	}
	fmt.Printf("  %-18s +%d (rx + tx packets of the kernel's device)\n\n", labkit.VXLANName, dev)
	fmt.Println("During the native transfer:")
	printDeltas(nd, "fwd_ipv6", "vxlan_encap", "vxlan_decap")
	xdp := td["vxlan_encap"].Packets + td["vxlan_decap"].Packets
	// A data direction is at least size/1500 segments.
	bulk := uint64(size) / 1500 * 9 / 10
	if td["vxlan_encap"].Packets < bulk || td["vxlan_decap"].Packets < bulk || xdp*10 < (xdp+dev)*9 {
		return fmt.Errorf("XDP should carry the tunnel's flows: vxlan_encap +%d, vxlan_decap +%d (want >= %d each and >= 90%% of %d tunnel packets)",
			td["vxlan_encap"].Packets, td["vxlan_decap"].Packets, bulk, xdp+dev)
	}
	segs := uint64(nat.SenderTCP.SegsOut) + uint64(nat.RecvTCP.SegsOut)
	if nd["fwd_ipv6"].Packets*10 < segs*9 || (nd["vxlan_encap"].Packets+nd["vxlan_decap"].Packets)*100 > segs {
		return fmt.Errorf("the native flow (%d segments): fwd_ipv6 +%d, vxlan_encap +%d, vxlan_decap +%d; want it forwarded natively in XDP",
			segs, nd["fwd_ipv6"].Packets, nd["vxlan_encap"].Packets, nd["vxlan_decap"].Packets)
	}
	fmt.Printf("XDP carried %.1f%% of the tunnel's packets. The native flow's %d segments (both\n",
		100*float64(xdp)/float64(xdp+dev), segs)
	fmt.Printf("ways) were forwarded in XDP between lan0 and wan0 as they are, not by the tunnel.\n\n")

	heading("Stop the daemon")
	say("Started with --detach-on-exit, the daemon takes everything with it on SIGTERM: the",
		"XDP programs, vxlan01, the rules and table 2000.")
	if err := d.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
		return err
	}
	if out, _ := topo.Lab.Exec(topo.Router, "ip", "link", "show", "type", "vxlan"); strings.TrimSpace(out) != "" {
		return fmt.Errorf("after the daemon left, vxlan devices remain:\n%s", out)
	}
	res, err := sh.InNS(ctx, topo.Router, "ip", "-6", "rule", "show")
	if err == nil && strings.Contains(res.Stdout, "proto 200") {
		err = fmt.Errorf("after the daemon left, xdprouter's rules (proto 200) remain")
	}
	return err
}
