package lab

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// Seed 001 end to end (issue 15, acceptance 5a): an xdprouter client
// against a server set up exactly as in the seed (kernel vxlan, `ip -6
// route … via`) across an IPv4-only internet. The LAN host gets an
// address from the ISP's prefix and one from the tunnel's /64 (and /48)
// by the router's RAs; from the tunnel address it reaches far (behind the
// server), from the ISP address the native host, each way content-verified
// in both directions, and captures prove each packet left the right way:
// no tunnel-prefix packet on the ISP's wire (only VXLAN in UDP), no
// ISP-prefix packet in the tunnel.
func TestVXLANSeed001(t *testing.T) {
	runSeed001(t, func(ctx context.Context, topo *labkit.VXLANTopology) (labkit.CLI, bool) {
		if err := topo.ServerSeed001(); err != nil {
			t.Fatal(err)
		}
		return labkit.CLI{}, false
	})
}

// The same with xdprouter on both ends (acceptance 5b): the server is
// `xdprouter apply` of a delegation of the seed's /40 with peer 1, the
// router, whose tunnel and routes it makes as the seed's lines did; its
// XDP encapsulates what far sends into the tunnel and decapsulates the
// router's.
func TestVXLANDelegationsBothEnds(t *testing.T) {
	runSeed001(t, func(ctx context.Context, topo *labkit.VXLANTopology) (labkit.CLI, bool) {
		cli := labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: topo.Server,
			BPFFS: filepath.Join(topo.Lab.RunDir(), "server"), Socket: filepath.Join(topo.Lab.RunDir(), "server.sock")}
		cfg := filepath.Join(topo.Lab.RunDir(), "server.yaml")
		if err := os.WriteFile(cfg, []byte(topo.ServerConfig()), 0o600); err != nil {
			t.Fatal(err)
		}
		mustCLI(t, ctx, cli, "apply", "--config", cfg)
		out, err := topo.Lab.Exec(topo.Server, "ip", "-6", "route", "show", "dev", labkit.VXLANName)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{labkit.VXLANPeer64.String() + " via " + labkit.VXLANLinkClient.Addr().String(),
			labkit.VXLANPeer48.String() + " via " + labkit.VXLANLinkClient.Addr().String()} {
			if !strings.Contains(out, w) {
				t.Errorf("server: no %q in\n%s", w, out)
			}
		}
		return cli, true
	})
}

// runSeed001 is the seed-001 lab with the server set up by server,
// which returns the server's xdprouter CLI when it runs one.
func runSeed001(t *testing.T, server func(context.Context, *labkit.VXLANTopology) (labkit.CLI, bool)) {
	needRoot(t)
	needISP(t, "radvd", "kea-dhcp6", "tcpdump")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	topo, err := labkit.NewVXLANTopology()
	if err != nil {
		t.Fatal(err)
	}
	labkit.CloseAtEnd(t, topo)
	serverCLI, serverXDP := server(ctx, topo)
	cli := labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: topo.Router, BPFFS: topo.BPFFS,
		Socket: filepath.Join(topo.Lab.RunDir(), "xdprouter.sock")}
	cfg := filepath.Join(topo.Lab.RunDir(), "seed001.yaml")
	if err := os.WriteFile(cfg, []byte(topo.ClientConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, ctx, cli, "check", "--config", cfg)
	d := startDaemon(t, ctx, cli, cfg, "--state-dir", filepath.Join(topo.Lab.RunDir(), "state"), "--detach-on-exit")

	// The ISP's prefix on the LAN comes from DHCPv6-PD; the ISP routes
	// the pool to the router; the host configures its addresses.
	l, err := topo.WaitLAN(ctx, cli, 90*time.Second)
	if err != nil {
		t.Fatalf("%v\ndaemon log:\n%s", err, d.Log())
	}
	ispLAN, hostISP, hostTun, host48 := l.ISPPrefix, l.HostISP, l.HostTun, l.Host48

	// The router holds what the seed's post-up lines made by hand.
	for _, c := range []struct {
		argv []string
		want []string
	}{
		{[]string{"ip", "-d", "link", "show", labkit.VXLANName}, []string{"vxlan id 1 remote " + labkit.VXLANServer4.Addr().String(), "dstport 4789", "alias xdprouter vxlan tunnel"}},
		{[]string{"ip", "-6", "addr", "show", "dev", labkit.VXLANName}, []string{labkit.VXLANLinkClient.String()}},
		{[]string{"ip", "-6", "rule", "show"}, []string{
			"2001:\tfrom " + labkit.VXLANPeer64.String() + " lookup 2000", "2001:\tfrom " + labkit.VXLANPeer48.String() + " lookup 2000",
			"2000:\tfrom all to " + ispLAN.String() + " lookup main"}},
		{[]string{"ip", "-6", "route", "show", "table", "2000"}, []string{"default via " + labkit.VXLANLinkServer.Addr().String() + " dev " + labkit.VXLANName,
			"unreachable " + labkit.VXLANPeer48.String()}},
	} {
		out, err := topo.Lab.Exec(topo.Router, c.argv...)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in\n%s", strings.Join(c.argv, " "), w, out)
			}
		}
	}

	// Status shows the tunnel, the steering and the fixed prefixes.
	st, err := cli.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.KernelTunnels) != 1 || st.KernelTunnels[0].Name != labkit.VXLANName || !st.KernelTunnels[0].Present ||
		st.KernelTunnels[0].VNI != 1 || st.KernelTunnels[0].Remote != labkit.VXLANServer4.Addr().String() {
		t.Errorf("status --json kernel_tunnels: %+v", st.KernelTunnels)
	}
	if st.Steering == nil || len(st.Steering.Rules) != 8 || len(st.Steering.Routes) != 3 {
		t.Errorf("status --json steering: %+v", st.Steering)
	}
	if l := st.Daemon.IPv6.LANs[0]; len(l.Fixed) != 2 || l.Fixed[0].Prefix != labkit.VXLANPeer64.String() ||
		l.Fixed[0].Address.Address != labkit.WithHost(labkit.VXLANPeer64, 1).String()+"/64" {
		t.Errorf("status --json lans[0].fixed_prefixes: %+v", l.Fixed)
	}
	human := mustCLI(t, ctx, cli, "status").Stdout
	for _, want := range []string{
		"lan lan0: fixed prefix " + labkit.VXLANPeer64.String() + " of " + labkit.VXLANPeer64.String() + " by vxlan01",
		"VXLAN", "source steering (ip -6 rule, protocol 200):", "2001: from " + labkit.VXLANPeer48.String() + " lookup 2000",
		"table 2000: default via " + labkit.VXLANLinkServer.Addr().String() + " dev vxlan01",
	} {
		if !strings.Contains(human, want) {
			t.Errorf("status lacks %q", want)
		}
	}

	r := labkit.Runner{Log: t}
	far, native := labkit.VXLANFar6.Addr(), labkit.VXLANNative6.Addr()
	for _, p := range []struct{ src, dst netip.Addr }{{hostTun, far}, {host48, far}, {hostISP, native}} {
		if _, err := r.PingFrom(ctx, topo.Host, p.src, p.dst, 3); err != nil {
			t.Fatalf("ping from %s: %v\ndaemon log:\n%s", p.src, err, d.Log())
		}
	}
	// No way around the tunnel: the ISP cannot reach the fixed prefix.
	if res, err := r.InNS(ctx, topo.Native, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", hostTun.String()); err == nil {
		t.Errorf("native reaches the tunnel address %s without the tunnel:\n%s", hostTun, res.Stdout)
	}

	dir := t.TempDir()
	wire, tun, underlay := filepath.Join(dir, "isp-wan.pcap"), filepath.Join(dir, "router-vxlan.pcap"), filepath.Join(dir, "server-underlay.pcap")
	stopWire := startCapture(t, topo.Lab, topo.ISP, labkit.ISPWANIf, wire)
	stopTun := startCapture(t, topo.Lab, topo.Router, labkit.VXLANName, tun, "ip6")
	stopUnder := startCapture(t, topo.Lab, topo.Server, labkit.ISPWANIf, underlay, "udp", "port", "4789")
	before := mustCounters(t, ctx, cli)
	devBefore := mustDevPackets(t, topo)
	var serverBefore labkit.Counters
	if serverXDP {
		serverBefore = mustCounters(t, ctx, serverCLI)
	}

	const size = 4 << 20
	for _, x := range []struct {
		what     string
		src, dst netip.Addr
		dstNS    string
	}{
		{"tunnel /64 address and far, behind the server", hostTun, far, topo.Far},
		{"ISP address and the native host", hostISP, native, topo.Native},
	} {
		up, err := labkit.TransferFrom(ctx, topo.Lab, topo.Host, x.src, x.dstNS, x.dst, size)
		if err != nil {
			vxlanDiagnose(t, ctx, topo, cli)
			t.Fatalf("%s, upload: %v", x.what, err)
		}
		down, err := labkit.DownloadFrom(ctx, topo.Lab, topo.Host, x.src, x.dstNS, x.dst, size)
		if err != nil {
			vxlanDiagnose(t, ctx, topo, cli)
			t.Fatalf("%s, download: %v", x.what, err)
		}
		t.Logf("%s: %d bytes up (sha256 %s, %.0f Mbit/s), %d bytes down (sha256 %s, %.0f Mbit/s)", x.what,
			up.Bytes, up.RecvSHA[:16], up.Throughput(), down.Bytes, down.RecvSHA[:16], down.Throughput())
	}
	delta := mustCounters(t, ctx, cli).Sub(before)
	devDelta := mustDevPackets(t, topo) - devBefore
	stopWire()
	stopTun()
	stopUnder()

	// Where each packet went.
	fixed := labkit.VXLANParent.String()
	type captureCheck struct {
		what   string
		file   string
		filter []string
		some   bool
	}
	checks := []captureCheck{
		{"tunnel-prefix packets on the ISP's wire", wire, []string{"ip6", "and", "net", fixed}, false},
		{"VXLAN on the ISP's wire", wire, []string{"udp", "port", "4789"}, true},
		{"ISP-address packets to/from native on the ISP's wire", wire, []string{"ip6", "and", "host", hostISP.String(), "and", "host", native.String()}, true},
		{"ISP-prefix packets in the tunnel", tun, []string{"net", ispLAN.String()}, false},
		{"native-host packets in the tunnel", tun, []string{"host", native.String()}, false},
	}
	// A capture on the server's port sees only what its kernel handles:
	// with xdprouter there, XDP takes the VXLAN it decapsulates before
	// the capture and transmits what it encapsulates past it, so that
	// capture holds some packets or none (its counters say what it
	// carried, below; the ISP's wire shows the VXLAN both ways).
	if !serverXDP {
		checks = append(checks, captureCheck{"VXLAN at the server", underlay, nil, true})
	}
	for _, c := range checks {
		n := countCaptured(t, ctx, c.file, c.filter...)
		t.Logf("%s: %d packets", c.what, n)
		if c.some && n == 0 || !c.some && n != 0 {
			t.Errorf("%s: %d packets (tcpdump -r %s %s)", c.what, n, filepath.Base(c.file), strings.Join(c.filter, " "))
		}
	}
	// The tunnel's flows are in VXLAN on the ISP's wire, the ISP's are
	// not: most of the tunnel's packets never meet vxlan01 (XDP carries
	// them), so the wire shows what went through the tunnel. tcpdump
	// decodes VXLAN on 4789.
	for _, c := range []struct {
		what       string
		a, b       string
		some       bool
		whereInner string
	}{
		{"tunnel-address packets to/from far inside VXLAN on the ISP's wire", hostTun.String(), far.String(), true, wire},
		{"ISP-address packets inside VXLAN on the ISP's wire", hostISP.String(), native.String(), false, wire},
	} {
		n := countCapturedText(t, ctx, c.whereInner, []string{c.a, c.b}, "udp", "port", "4789")
		t.Logf("%s: %d packets", c.what, n)
		if c.some != (n > 0) {
			t.Errorf("%s: %d packets", c.what, n)
		}
	}
	// XDP forwarded the native flow, and encapsulated and decapsulated
	// the tunnel's: of the tunnel packets the router carried, at least
	// 90% went through XDP (vxlan_encap, vxlan_decap); the rest through
	// vxlan01 (its packet counters), the first of each flow among them
	// where the conntrack gate sends them to the firewall.
	xdp := delta["vxlan_encap"].Packets + delta["vxlan_decap"].Packets
	t.Logf("tunnel packets: %d in XDP (vxlan_encap %d, vxlan_decap %d), %d through vxlan01", xdp,
		delta["vxlan_encap"].Packets, delta["vxlan_decap"].Packets, devDelta)
	if delta["fwd_ipv6"].Packets == 0 || delta["vxlan_encap"].Packets == 0 || delta["vxlan_decap"].Packets == 0 ||
		float64(xdp) < 0.9*float64(xdp+devDelta) {
		t.Errorf("counters: fwd_ipv6 %d, vxlan_encap %d, vxlan_decap %d, vxlan01 %d packets; want XDP to carry >= 90%% of the tunnel's\n%s",
			delta["fwd_ipv6"].Packets, delta["vxlan_encap"].Packets, delta["vxlan_decap"].Packets, devDelta, delta)
	}

	// status shows them under the vxlan netdevs.
	if human := mustCLI(t, ctx, cli, "status").Stdout; !strings.Contains(human, "vxlan in XDP: vxlan_encap ") {
		t.Errorf("status lacks the vxlan counters:\n%s", human)
	}

	if serverXDP {
		sd := mustCounters(t, ctx, serverCLI).Sub(serverBefore)
		if sd["vxlan_encap"].Packets == 0 || sd["vxlan_decap"].Packets == 0 {
			t.Errorf("server: vxlan_encap %d, vxlan_decap %d; its XDP should carry the peer's tunnel both ways", sd["vxlan_encap"].Packets, sd["vxlan_decap"].Packets)
		}
	}

	// Stopping with --detach-on-exit takes it all away again.
	if err := d.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{{"ip", "-6", "route", "show", "table", "2000"}, {"ip", "link", "show", "type", "vxlan"}} {
		if out, _ := topo.Lab.Exec(topo.Router, argv...); strings.TrimSpace(out) != "" {
			t.Errorf("after the daemon left, %s:\n%s", strings.Join(argv, " "), out)
		}
	}
	if out, err := topo.Lab.Exec(topo.Router, "ip", "-6", "rule", "show"); err != nil || strings.Contains(out, "proto 200") {
		t.Errorf("after the daemon left, xdprouter's rules (proto 200) remain: %v\n%s", err, out)
	}
}

// mustDevPackets is the router's vxlan01 packet count (DevPackets).
func mustDevPackets(t *testing.T, topo *labkit.VXLANTopology) uint64 {
	t.Helper()
	n, err := topo.DevPackets()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// countCapturedText counts the packets of file (tcpdump's decoding, so
// inside VXLAN too) whose text holds every string of all.
func countCapturedText(t *testing.T, ctx context.Context, file string, all []string, filter ...string) int {
	t.Helper()
	res, err := labkit.Runner{}.Run(ctx, nil, append([]string{"tcpdump", "-n", "-r", file}, filter...)...)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(res.Stdout, "\n") {
		ok := true
		for _, a := range all {
			ok = ok && strings.Contains(l, a)
		}
		if ok {
			n++
		}
	}
	return n
}

// vxlanDiagnose logs what tells where packets of a failed transfer went:
// the data plane's counters, the interfaces' drops, the firewall's.
func vxlanDiagnose(t *testing.T, ctx context.Context, topo *labkit.VXLANTopology, cli labkit.CLI) {
	t.Helper()
	r := labkit.Runner{Log: t}
	_, _ = cli.Run(ctx, "stats")
	for _, ns := range []string{topo.Router, topo.ISP} {
		_, _ = r.InNS(ctx, ns, "ip", "-s", "-s", "link", "show")
	}
	_, _ = r.InNS(ctx, topo.Router, "nft", "list", "counters")
}
