package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// NPTv6 on a tunnel, end to end (issue 15, item 3: NPT, the firewall and
// the conntrack gate work the same on both upstreams). The LAN host has
// ULAs: one in the inside prefix of an npt entry on the tunnel's netdev,
// whose outside is a /64 of the tunnel's prefixes no LAN carves, and (in
// the VXLAN lab, which has a native ISP path) one in the inside prefix of
// an npt entry on the WAN.
var (
	nptWANInside = netip.MustParsePrefix("fd00:1::/64")
	nptTunInside = netip.MustParsePrefix("fd00:2::/64")
	// lan0 is sla-id 0 of vxlan01's /48 (and its /64): ff is no LAN's.
	vxlanNPTOutside = netip.MustParsePrefix("2001:db8:ae01:ff::/64")
	// lan0 is sla-id 1 of the broker's routed /48.
	sitNPTOutside = netip.MustParsePrefix("2001:db8:471:ff::/64")
)

// The tunnel NPT's inside host is pinholed for TCP to nptOpenPort only:
// a connection from far to its outside address there is allowed, to
// nptClosedPort it is not.
const (
	nptOpenPort   = 5001
	nptClosedPort = 5002
	nptBulk       = 4 << 20
)

// nptFirewall is the default firewall with the one pinhole.
func nptFirewall(host netip.Addr) string {
	return fmt.Sprintf("firewall:\n  allow: [{to: %q, proto: tcp, port: \"%d\"}]\n", host, nptOpenPort)
}

// TestNPTOverVXLAN: the seed-001 lab (kernel vxlan server, native ISP)
// with the host's fd00:2::2 translated onto a /64 of vxlan01's /48 and
// its fd00:1::2 onto the WAN /64 (outside: auto, the NDP proxy answering
// the ISP for it), under the default firewall with the conntrack gate.
// far sees the tunnel NPT's outside address, native the WAN NPT's; 4 MB
// content-verified each way, far also opening to the translated address
// through the pinhole; XDP translates >= 90% of the segments
// (vxlan_encap_snpt, vxlan_decap_dnpt, fwd_npt_*); pings, which the gate
// always hands to the kernel, are translated by the TC programs on
// vxlan01 (tc_snpt, tc_dnpt); what the firewall did not allow reaches
// the host neither through the kernel nor through XDP.
func TestNPTOverVXLAN(t *testing.T) {
	needRoot(t)
	needISP(t, "radvd", "kea-dhcp6", "tcpdump")
	labkit.NeedScapy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	topo, err := labkit.NewVXLANTopology()
	if err != nil {
		t.Fatal(err)
	}
	labkit.CloseAtEnd(t, topo)
	if err := topo.ServerSeed001(); err != nil {
		t.Fatal(err)
	}
	wanULA, err := labkit.AddInside(topo.Lab, topo.Router, labkit.TunLANIf, topo.Host, labkit.TunHostIf, nptWANInside)
	if err != nil {
		t.Fatal(err)
	}
	tunULA, err := labkit.AddInside(topo.Lab, topo.Router, labkit.TunLANIf, topo.Host, labkit.TunHostIf, nptTunInside)
	if err != nil {
		t.Fatal(err)
	}
	config := topo.ClientConfig() + fmt.Sprintf(`npt:
  - {interface: %s, inside: %s, outside: auto}
  - {interface: %s, inside: %s, outside: %s}
ndp-proxy:
  - {interface: %s, prefixes: [auto]}
`, labkit.TunWANIf, nptWANInside, labkit.VXLANName, nptTunInside, vxlanNPTOutside, labkit.TunWANIf) + nptFirewall(tunULA)
	t.Logf("config:\n%s", config)
	cfg := filepath.Join(topo.Lab.RunDir(), "npt-vxlan.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: topo.Router, BPFFS: topo.BPFFS,
		Socket: filepath.Join(topo.Lab.RunDir(), "xdprouter.sock")}
	mustCLI(t, ctx, cli, "check", "--config", cfg)
	d := startDaemon(t, ctx, cli, cfg, "--state-dir", filepath.Join(topo.Lab.RunDir(), "state"))
	if _, err := topo.WaitLAN(ctx, cli, 90*time.Second); err != nil {
		t.Fatalf("%v\ndaemon log:\n%s", err, d.Log())
	}
	wanOut := outsideAddr(wanULA, nptWANInside, labkit.VXLANWANPrefix, "rfc6296")
	tunOut := outsideAddr(tunULA, nptTunInside, vxlanNPTOutside, "rfc6296")
	t.Logf("host %s is %s on the ISP's side, %s is %s behind the tunnel", wanULA, wanOut, tunULA, tunOut)
	waitNPTRules(t, ctx, cli, labkit.VXLANWANPrefix, vxlanNPTOutside)
	checkNPTSteered(t, topo.Lab, topo.Router, nptTunInside)
	checkGateOn(t, ctx, cli, labkit.TunLANIf, labkit.TunWANIf)

	lab := nptLab{t: t, ctx: ctx, cli: cli, lab: topo.Lab, host: topo.Host, tunnel: labkit.VXLANName,
		router: topo.Router, encap: "vxlan_encap_snpt", decap: "vxlan_decap_dnpt"}
	far, native := labkit.VXLANFar6.Addr(), labkit.VXLANNative6.Addr()
	t.Run("slow path: pings translated by TC on vxlan01", func(t *testing.T) {
		lab.with(t).pingSlowPath(topo.Far, tunULA, tunOut, far)
	})
	t.Run("tunnel NPT: TCP both ways, far sees the outside address", func(t *testing.T) {
		lab.with(t).transfers(topo.Far, tunULA, tunOut, far)
	})
	t.Run("WAN NPT: TCP both ways, native sees the WAN outside address", func(t *testing.T) {
		l := lab.with(t)
		up := l.transfer("host -> native from the WAN ULA", topo.Host, wanULA, topo.Native, netip.AddrPort{}, netip.AddrPortFrom(native, 0), wanOut)
		l.atLeast90("fwd_npt_snpt", up)
		down := l.download("native -> host, opened by the host from the WAN ULA", wanULA, topo.Native, native, wanOut)
		l.atLeast90("fwd_npt_dnpt", down)
	})
	t.Run("gate and firewall: what is not allowed does not reach the host", func(t *testing.T) {
		lab.with(t).refused(refusedFlow{"far -> the tunnel outside address, pinholed", topo.Far, netip.AddrPortFrom(tunOut, nptOpenPort), ""}, []refusedFlow{
			{"far -> the tunnel outside address, port not pinholed", topo.Far, netip.AddrPortFrom(tunOut, nptClosedPort), "vxlan_decap_dnpt"},
			{"native -> the WAN outside address, not pinholed", topo.Native, netip.AddrPortFrom(wanOut, nptOpenPort), "fwd_npt_dnpt"},
		})
	})
}

// TestNPTOver6in4: the 6in4 lab (broker.py, no native IPv6) with the
// host's fd00:2::2 translated onto a /64 of the routed /48, by `apply`,
// under both TC modes: tc_tun_snpt must run before tunegress on the he
// netdev, which far's captures of the inner source show (broker.py checks
// only the outer headers). As TestNPTOverVXLAN otherwise, with
// tun6in4_encap_snpt and tun6in4_decap_dnpt. Then the tunnel goes with
// its npt entry, and no NPT slow path pin or link is left of it.
func TestNPTOver6in4(t *testing.T) { forEachTCMode(t, testNPTOver6in4) }

func testNPTOver6in4(t *testing.T) {
	labkit.NeedScapy(t)
	tunULA := labkit.WithHost(nptTunInside, 2)
	topo, cli, path, ctx := newSixInFourLab(t, fmt.Sprintf("npt:\n  - {interface: %s, inside: %s, outside: %s}\n",
		labkit.SitName, nptTunInside, sitNPTOutside)+nptFirewall(tunULA))
	if _, err := labkit.AddInside(topo.Lab, topo.Router, labkit.TunLANIf, topo.Host, labkit.TunHostIf, nptTunInside); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, ctx, cli, "apply", "--config", path)
	tunOut := outsideAddr(tunULA, nptTunInside, sitNPTOutside, "rfc6296")
	t.Logf("host %s is %s behind the tunnel", tunULA, tunOut)
	checkNPTSteered(t, topo.Lab, topo.Router, nptTunInside)
	checkGateOn(t, ctx, cli, labkit.TunLANIf, labkit.TunWANIf)
	checkTunSNPTFirst(t, ctx, cli, topo.Lab, topo.Router)

	lab := nptLab{t: t, ctx: ctx, cli: cli, lab: topo.Lab, host: topo.Host, tunnel: labkit.SitName,
		router: topo.Router, encap: "tun6in4_encap_snpt", decap: "tun6in4_decap_dnpt"}
	far := labkit.SitFar6.Addr()
	t.Run("slow path: pings translated by TC on he, before tunegress", func(t *testing.T) {
		lab.with(t).pingSlowPath(topo.Far, tunULA, tunOut, far)
	})
	t.Run("tunnel NPT: TCP both ways, far sees the outside address", func(t *testing.T) {
		lab.with(t).transfers(topo.Far, tunULA, tunOut, far)
	})
	t.Run("gate and firewall: what is not allowed does not reach the host", func(t *testing.T) {
		lab.with(t).refused(refusedFlow{"far -> the tunnel outside address, pinholed", topo.Far, netip.AddrPortFrom(tunOut, nptOpenPort), ""}, []refusedFlow{
			{"far -> the tunnel outside address, port not pinholed", topo.Far, netip.AddrPortFrom(tunOut, nptClosedPort), "tun6in4_decap_dnpt"},
		})
	})
	s, err := topo.BrokerStats()
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Violations(); len(v) > 0 {
		t.Errorf("the broker rejected outer headers: %s", strings.Join(v, "; "))
	}

	// The tunnel goes with its last npt entry: the netdev is deleted
	// (the kernel takes its TC programs along), and what xdprouter
	// pinned of them must go too.
	t.Run("tunnel removed with its npt entry: no NPT slow path left", func(t *testing.T) {
		cli := cli.WithLog(t)
		if got := nptPins(t, topo.BPFFS); len(got) != 2 {
			t.Fatalf("NPT slow path pins before: %v, want tc_dnpt and tc_tun_snpt of %s", got, labkit.SitName)
		}
		bare := filepath.Join(topo.Lab.RunDir(), "bare.yaml")
		if err := os.WriteFile(bare, []byte(fmt.Sprintf("wan: {interface: %s}\nlan: [{interface: %s}]\n", labkit.TunWANIf, labkit.TunLANIf)), 0o600); err != nil {
			t.Fatal(err)
		}
		mustCLI(t, ctx, cli, "apply", "--config", bare)
		if out, err := topo.Lab.Exec(topo.Router, "ip", "link", "show", labkit.SitName); err == nil {
			t.Fatalf("%s is still there:\n%s", labkit.SitName, out)
		}
		if got := nptPins(t, topo.BPFFS); len(got) != 0 {
			t.Errorf("NPT slow path pins of the removed tunnel left: %v", got)
		}
		if st := mustCLI(t, ctx, cli, "status").Stdout; strings.Contains(st, "tc_dnpt") || strings.Contains(st, "tc_tun_snpt") {
			t.Errorf("status still lists an NPT slow path:\n%s", st)
		}
	})
}

// nptPins are the NPT slow path's pins under bpffs's links/.
func nptPins(t *testing.T, bpffs string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(bpffs, "links"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		for _, kind := range []string{"tc_dnpt_", "tc_snpt_", "tc_tun_snpt_"} {
			if strings.HasPrefix(e.Name(), kind) {
				out = append(out, e.Name())
			}
		}
	}
	return out
}

// waitNPTRules waits until status lists an NPT rule for each outside
// prefix (`auto` resolves once the daemon learned the WAN prefix).
func waitNPTRules(t *testing.T, ctx context.Context, cli labkit.CLI, outside ...netip.Prefix) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := cli.Run(ctx, "status")
		missing := ""
		for _, o := range outside {
			if err != nil || !strings.Contains(st.Stdout, o.String()) {
				missing = o.String()
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no NPT rule with outside %s in status:\n%s", missing, st.Stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkNPTSteered: the tunnel NPT's inside prefix leaves by the tunnel's
// table (the steering xdprouter installs).
func checkNPTSteered(t *testing.T, lab *netlab.Lab, router string, inside netip.Prefix) {
	t.Helper()
	out, err := lab.Exec(router, "ip", "-6", "rule", "show")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "from "+inside.String()+" lookup") {
		t.Errorf("no steering rule from %s:\n%s", inside, out)
	}
}

// checkGateOn: the router's ports run with the conntrack gate.
func checkGateOn(t *testing.T, ctx context.Context, cli labkit.CLI, ports ...string) {
	t.Helper()
	st := mustStatus(t, ctx, cli)
	for _, p := range ports {
		if g := mustIface(t, st, p).CTGate; g != "on" {
			t.Errorf("%s: ct_gate %q, want on", p, g)
		}
	}
}

// checkTunSNPTFirst: on the 6in4 netdev's egress under clsact, SNPT's
// filter comes before the encapsulation's (tc lists them by priority).
// Under TCX the tools here list no order; the inner source far sees is
// the proof there (pingSlowPath, transfers).
func checkTunSNPTFirst(t *testing.T, ctx context.Context, cli labkit.CLI, lab *netlab.Lab, router string) {
	t.Helper()
	if tcMode() != "clsact" {
		return // this bpftool lists no TCX links; far's captures show the order
	}
	out, err := lab.Exec(router, "tc", "filter", "show", "dev", labkit.SitName, "egress")
	if err != nil {
		t.Fatal(err)
	}
	snpt, encap := strings.Index(out, "xdpr_tc_snpt"), strings.Index(out, "xdpr_tun_egress")
	if snpt < 0 || encap < 0 || snpt > encap {
		t.Errorf("%s egress (%s): want xdpr_tc_snpt before the encapsulation:\n%s", labkit.SitName, tcMode(), out)
	}
}

// nptLab is what the NPT-on-a-tunnel checks share: the router's CLI, the
// LAN host, the tunnel netdev and its XDP counters.
type nptLab struct {
	t                    *testing.T
	ctx                  context.Context
	cli                  labkit.CLI
	lab                  *netlab.Lab
	host, router, tunnel string
	encap, decap         string // XDP's counters of the tunnel's translated packets
}

func (l nptLab) with(t *testing.T) nptLab {
	l.t, l.cli = t, l.cli.WithLog(t)
	return l
}

// pingSlowPath pings far from the tunnel ULA: ICMP is the kernel's (the
// gate passes it), so the TC programs on the tunnel netdev translate
// both ways, and far counts the echo requests from the outside address
// and none from the inside prefix.
func (l nptLab) pingSlowPath(farNS string, ula, out, far netip.Addr) {
	t := l.t
	seen := watchIn(t, l.lab, farNS, map[string]string{
		"outside": fmt.Sprintf("ip6 saddr %s icmpv6 type echo-request", out),
		"inside":  fmt.Sprintf("ip6 saddr %s", nptTunInside),
	})
	before := mustCounters(t, l.ctx, l.cli)
	if _, err := l.cli.Runner.PingFrom(l.ctx, l.host, ula, far, 3); err != nil {
		t.Fatalf("ping far from %s: %v", ula, err)
	}
	delta := mustCounters(t, l.ctx, l.cli).Sub(before)
	t.Logf("counters: %s", delta)
	for _, c := range []string{"tc_snpt", "tc_dnpt"} {
		if delta[c].Packets < 3 {
			t.Errorf("%s +%d, want the 3 echoes (the slow path on %s)", c, delta[c].Packets, l.tunnel)
		}
	}
	if delta[l.encap].Packets+delta[l.decap].Packets != 0 {
		t.Errorf("%s +%d, %s +%d: the gate hands ICMP to the kernel", l.encap, delta[l.encap].Packets, l.decap, delta[l.decap].Packets)
	}
	got := seen()
	if got["outside"] != 3 || got["inside"] != 0 {
		t.Errorf("far saw %d echo requests from %s and %d packets from %s, want 3 and 0", got["outside"], out, got["inside"], nptTunInside)
	}
	l.checkTCOn()
}

// watchIn counts, in namespace ns, the packets arriving that match each
// nft expression (before anything else of ns sees them); the func it
// returns reads the counts.
func watchIn(t *testing.T, lab *netlab.Lab, ns string, match map[string]string) func() map[string]uint64 {
	t.Helper()
	var b strings.Builder
	b.WriteString("table inet nptwatch {\n")
	for name := range match {
		fmt.Fprintf(&b, "\tcounter %s {\n\t}\n", name)
	}
	b.WriteString("\tchain in {\n\t\ttype filter hook prerouting priority -500; policy accept;\n")
	for name, m := range match {
		fmt.Fprintf(&b, "\t\t%s counter name %q\n", m, name)
	}
	b.WriteString("\t}\n}\n")
	if _, err := lab.Exec(ns, "nft", "delete", "table", "inet", "nptwatch"); err != nil {
		t.Logf("(no earlier nptwatch table in %s)", ns)
	}
	if err := lab.NFT(ns, b.String()); err != nil {
		t.Fatal(err)
	}
	return func() map[string]uint64 {
		t.Helper()
		out := map[string]uint64{}
		for name := range match {
			res, err := lab.Exec(ns, "nft", "list", "counter", "inet", "nptwatch", name)
			if err != nil {
				t.Fatalf("nft list counter %s: %v", name, err)
			}
			m := counterPackets.FindStringSubmatch(res)
			if m == nil {
				t.Fatalf("no packet count in %q", res)
			}
			out[name], _ = strconv.ParseUint(m[1], 10, 64)
		}
		return out
	}
}

// checkTCOn: the NPT slow path is pinned for the tunnel netdev.
func (l nptLab) checkTCOn() {
	t := l.t
	idx, err := l.lab.IfIndex(l.router, l.tunnel)
	if err != nil {
		t.Fatal(err)
	}
	ifindex := strconv.Itoa(idx)
	pins := strings.Join(nptPins(t, l.cli.BPFFS), " ")
	if !strings.Contains(pins, "tc_dnpt_"+ifindex) || !strings.Contains(pins, "snpt_"+ifindex) {
		t.Errorf("NPT slow path pins %q, want tc_dnpt and an snpt of %s (ifindex %s)", pins, l.tunnel, ifindex)
	}
}

// transfers: the host uploads to far and downloads from it from the
// tunnel ULA, and far opens a connection to the outside address (the
// pinhole), which reaches the host's listener on the ULA.
func (l nptLab) transfers(farNS string, ula, out, far netip.Addr) {
	up := l.transfer("host -> far from the tunnel ULA", l.host, ula, farNS, netip.AddrPort{}, netip.AddrPortFrom(far, 0), out)
	l.atLeast90(l.encap, up)
	down := l.download("far -> host, opened by the host from the tunnel ULA", ula, farNS, far, out)
	l.atLeast90(l.decap, down)
	in := l.transfer("far -> host, opened by far to the outside address", farNS, netip.Addr{}, l.host,
		netip.AddrPortFrom(out, nptOpenPort), netip.AddrPortFrom(ula, nptOpenPort), far)
	l.atLeast90(l.decap, in)
}

// nptResult is a transfer and the counters during it.
type nptResult struct {
	res   labkit.TransferResult
	delta labkit.Counters
}

// transfer sends nptBulk from fromNS (from src, if valid) to a listener
// on listen in toNS, dialled at dial (invalid: listen), and checks the
// listener saw the connection come from client.
func (l nptLab) transfer(what, fromNS string, src netip.Addr, toNS string, dial, listen netip.AddrPort, client netip.Addr) nptResult {
	t := l.t
	before := mustCounters(t, l.ctx, l.cli)
	target := dial
	if !target.IsValid() {
		target = listen
	}
	var res labkit.TransferResult
	var err error
	if src.IsValid() {
		res, err = labkit.TransferFrom(l.ctx, l.lab, fromNS, src, toNS, listen.Addr(), nptBulk)
	} else {
		res, err = labkit.TransferVia(l.ctx, l.lab, fromNS, toNS, dial, listen, nptBulk)
	}
	if err != nil {
		l.diagnose()
		t.Fatalf("%s (to %s): %v", what, target, err)
	}
	return l.result(what, res, before, client)
}

// download has the host connect from src to a server on to in serverNS,
// which sends nptBulk, and checks the server saw the host as client.
func (l nptLab) download(what string, src netip.Addr, serverNS string, to, client netip.Addr) nptResult {
	t := l.t
	before := mustCounters(t, l.ctx, l.cli)
	res, err := labkit.DownloadFrom(l.ctx, l.lab, l.host, src, serverNS, to, nptBulk)
	if err != nil {
		l.diagnose()
		t.Fatalf("%s: %v", what, err)
	}
	return l.result(what, res, before, client)
}

func (l nptLab) result(what string, res labkit.TransferResult, before labkit.Counters, client netip.Addr) nptResult {
	t := l.t
	delta := mustCounters(t, l.ctx, l.cli).Sub(before)
	t.Logf("%s: %d bytes, sha256 %s on both ends, %.0f Mbit/s; the listener saw %s; sender sent %d segments (%d retransmitted)",
		what, res.Bytes, res.RecvSHA[:16], res.Throughput(), res.Client, res.SenderTCP.SegsOut, res.SenderTCP.TotalRetrans)
	t.Logf("counters: %s", delta)
	if res.Client.Addr() != client {
		t.Errorf("%s: the listener saw the connection from %s, want %s", what, res.Client.Addr(), client)
	}
	return nptResult{res, delta}
}

// atLeast90: XDP translated at least 90% of the segments the data's
// sender sent (counter counts the data direction).
func (l nptLab) atLeast90(counter string, r nptResult) {
	if want := uint64(r.res.SenderTCP.SegsOut) * 9 / 10; r.delta[counter].Packets < want || want == 0 {
		l.t.Errorf("%s +%d, want >= 90%% of the %d segments the sender sent", counter, r.delta[counter].Packets, r.res.SenderTCP.SegsOut)
	}
}

// refusedFlow is a flow the firewall does not allow: from ns to dst,
// whose fast path would count xdp.
type refusedFlow struct {
	what string
	ns   string
	dst  netip.AddrPort
	xdp  string
}

// refused: a connection for each flow fails, and TCP segments of the
// flow that no handshake preceded (what XDP would carry for an
// established flow) go to the kernel by the gate (pass_ct_new), are
// dropped there, and are not translated in XDP: the host counts none of
// them, nor of the SYNs, while a listener waits on the ULA. The allowed
// flow (the pinhole) connects, and the host counts it: the count works.
func (l nptLab) refused(allowed refusedFlow, flows []refusedFlow) {
	t := l.t
	const n = 20
	match := map[string]string{}
	for i, f := range append([]refusedFlow{allowed}, flows...) {
		match[fmt.Sprintf("f%d", i)] = fmt.Sprintf("ip6 daddr %s tcp dport %d", l.listenAddr(f.dst), f.dst.Port())
	}
	seen := watchIn(t, l.lab, l.host, match)
	before := mustCounters(t, l.ctx, l.cli)
	if err := dialVia(l.lab, l.host, netip.AddrPortFrom(l.listenAddr(allowed.dst), allowed.dst.Port()), allowed.ns, allowed.dst); err != nil {
		t.Errorf("%s: %v", allowed.what, err)
	}
	for _, f := range flows {
		if err := dialVia(l.lab, l.host, netip.AddrPortFrom(l.listenAddr(f.dst), f.dst.Port()), f.ns, f.dst); err == nil {
			t.Errorf("%s: TCP connected", f.what)
		}
		if err := labkit.InjectTCP(l.lab, f.ns, f.dst, n); err != nil {
			t.Fatal(err)
		}
	}
	delta := mustCounters(t, l.ctx, l.cli).Sub(before)
	got := seen()
	t.Logf("counters: %s; the host counted %v", delta, got)
	if got["f0"] == 0 {
		t.Errorf("%s: the host counted none of it", allowed.what)
	}
	if c := delta["pass_ct_new"].Packets; c < uint64(n*len(flows)) {
		t.Errorf("pass_ct_new +%d, want the %d injected segments handed to the kernel by the gate", c, n*len(flows))
	}
	for i, f := range flows {
		if delta[f.xdp].Packets != 0 {
			t.Errorf("%s: %s +%d, want nothing of it translated in XDP", f.what, f.xdp, delta[f.xdp].Packets)
		}
		if c := got[fmt.Sprintf("f%d", i+1)]; c != 0 {
			t.Errorf("%s: the host counted %d segments of it", f.what, c)
		}
	}
}

// listenAddr is the inside address (on the host) a refused flow's dst
// stands for: same port, the ULA whose outside dst is.
func (l nptLab) listenAddr(dst netip.AddrPort) netip.Addr {
	for _, p := range []netip.Prefix{nptTunInside, nptWANInside} {
		a := labkit.WithHost(p, 2)
		for _, o := range []netip.Prefix{vxlanNPTOutside, sitNPTOutside, labkit.VXLANWANPrefix} {
			if outsideAddr(a, p, o, "rfc6296") == dst.Addr() {
				return a
			}
		}
	}
	l.t.Fatalf("%s is no translated ULA", dst)
	return netip.Addr{}
}

// diagnose logs the counters and the tunnel's and firewall's state.
func (l nptLab) diagnose() {
	_, _ = l.cli.Run(l.ctx, "stats")
	_, _ = l.cli.Runner.InNS(l.ctx, l.router, "ip", "-s", "link", "show", l.tunnel)
	_, _ = l.cli.Runner.InNS(l.ctx, l.router, "nft", "list", "ruleset")
}

// dialVia tries one TCP connection from namespace from to dial, with a
// listener on listen in namespace to (where NPT makes dial arrive).
func dialVia(lab *netlab.Lab, to string, listen netip.AddrPort, from string, dial netip.AddrPort) error {
	var ln net.Listener
	if err := lab.Do(to, func() error {
		var err error
		ln, err = net.Listen("tcp", listen.String())
		return err
	}); err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	return lab.Do(from, func() error {
		c, err := net.DialTimeout("tcp", dial.String(), 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}
