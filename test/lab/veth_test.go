package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// A veth takes frames XDP transmits to it (a redirect from another port,
// or XDP_TX on the port itself) only into its peer's NAPI, which exists
// while the peer has GRO on or an XDP program; XDP_TX frames are moreover
// only flushed to a peer that runs XDP. These tests give the router's
// veths peers in other namespaces in each state and check that what the
// kernel did before attach still works, through the fast path wherever
// the peer allows it.

// TestVethPeerWithoutNAPI: host-b's end of the to-b link has neither GRO
// nor an XDP program. Before, everything XDP redirected to to-b was
// dropped (pings and TCP from host-a died). Now attach warns, status says
// to-b's egress is the kernel's, the kernel forwards toward host-b
// (pass_egress_no_napi) while host-b's replies stay in XDP; once host-b's
// end has GRO, or an XDP program, status finds it and the fast path
// carries both directions again; when the program goes, status puts to-b
// back on the kernel path.
func TestVethPeerWithoutNAPI(t *testing.T) {
	topo, cli, ctx := newLab(t)
	r := cli.Runner
	groB := func(on string) {
		t.Helper()
		mustRun(t, ctx, r, netlab.InNS(topo.HostB, "ethtool", "-K", labkit.HostIf, "gro", on)...)
	}
	groB("off")
	att := mustCLI(t, ctx, cli, "attach", labkit.RouterIfA, labkit.RouterIfB, "--ct-gate", "off")

	// 1. No NAPI on host-b's end.
	pingHosts(t, ctx, r, topo, "no NAPI on host-b's end")
	d := transferDelta(t, ctx, cli, topo, labkit.HostB4.Addr(), "no NAPI on host-b's end")
	if d.ok {
		if want := uint64(d.res.SenderTCP.DataSegsOut) * 9 / 10; d.c["pass_egress_no_napi"].Packets < want {
			t.Errorf("pass_egress_no_napi %d, want >= %d: host-a's data segments toward to-b are the kernel's", d.c["pass_egress_no_napi"].Packets, want)
		}
		if d.c["fwd_ipv4"].Packets == 0 {
			t.Errorf("fwd_ipv4 0: host-b's ACKs toward to-a (whose peer has GRO) should stay in XDP")
		}
	}
	if !strings.Contains(att.Stderr, labkit.RouterIfB+": ") || !strings.Contains(att.Stderr, "no NAPI") {
		t.Errorf("attach did not warn about %s's peer:\nstdout:\n%s\nstderr:\n%s", labkit.RouterIfB, att.Stdout, att.Stderr)
	}
	wantTX(t, ctx, cli, map[string]string{labkit.RouterIfA: "redirect", labkit.RouterIfB: "kernel"})
	if res := mustCLI(t, ctx, cli, "status"); !strings.Contains(res.Stdout, labkit.RouterIfB+": veth peer has no NAPI") {
		t.Errorf("status does not explain %s's transmit path:\n%s", labkit.RouterIfB, res.Stdout)
	}

	// 2. GRO on host-b's end: status re-checks, the fast path is back.
	groB("on")
	st := mustCLI(t, ctx, cli, "status")
	if !strings.Contains(st.Stdout, labkit.RouterIfB+": transmit path kernel -> redirect") {
		t.Errorf("status did not report the change of %s's transmit path:\n%s", labkit.RouterIfB, st.Stdout)
	}
	wantTX(t, ctx, cli, map[string]string{labkit.RouterIfB: "redirect"})
	d = transferDelta(t, ctx, cli, topo, labkit.HostB4.Addr(), "GRO on host-b's end")
	fastAgain(t, d, "fwd_ipv4")

	// 3. GRO off again but an XDP program on host-b's end: NAPI stays.
	groB("off")
	prog := xdpPassIn(t, topo.Lab, topo.HostB, labkit.HostIf)
	wantTX(t, ctx, cli, map[string]string{labkit.RouterIfB: "redirect"})
	d = transferDelta(t, ctx, cli, topo, labkit.HostB6.Addr(), "XDP program on host-b's end")
	fastAgain(t, d, "fwd_ipv6")

	// 4. The program goes: no NAPI again, and the next status sees it.
	if err := prog.Close(); err != nil {
		t.Fatal(err)
	}
	wantTX(t, ctx, cli, map[string]string{labkit.RouterIfB: "kernel"})
	pingHosts(t, ctx, r, topo, "the XDP program on host-b's end removed")
	t.Logf("counters at the end: %s", mustCounters(t, ctx, cli))
}

// TestVethPeerNDPProxy: the ISP's end of the WAN link in the seed-000 lab
// has, in turn, GRO but no XDP program (an XDP_TX answer of the NDP proxy
// waited in its ring until other traffic came, and its neighbour entry
// for the proxied address went FAILED), neither (the answer was dropped),
// and an XDP program. In each the ISP resolves the LAN host's outside
// address and pings it: answered by a redirect to the port where the peer
// has NAPI (tx_ndp_na_redirect), through TC where it has not
// (pass_ndp_na_tc, tc_reply).
func TestVethPeerNDPProxy(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := newNPTLab(t)
	t.Logf("lab:\n%s", topo.Diagram())
	cli := topo.CLI(xdprouterBin, t)
	r := cli.Runner
	const mode = "rfc6296"
	cfg := filepath.Join(t.TempDir(), "xdprouter.yaml")
	if err := os.WriteFile(cfg, []byte(topo.Config(mode)), 0o600); err != nil {
		t.Fatal(err)
	}
	app := mustCLI(t, ctx, cli, "apply", "--config", cfg)
	outside := outsideAddr(labkit.LANHostAddr.Addr(), labkit.NPTInside, labkit.NPTOutside, mode)
	wanMAC := mustIface(t, mustStatus(t, ctx, cli), labkit.CPEWANIf).MAC

	resolve := func(step string, counters ...string) {
		t.Helper()
		mustRun(t, ctx, r, netlab.InNS(topo.ISP, "ip", "-6", "neigh", "flush", "dev", labkit.ISPIf)...)
		c0 := mustCounters(t, ctx, cli)
		_, err := r.Ping(ctx, topo.ISP, outside, 2)
		d := mustCounters(t, ctx, cli).Sub(c0)
		neigh := mustRun(t, ctx, r, netlab.InNS(topo.ISP, "ip", "-6", "neigh", "show", outside.String(), "dev", labkit.ISPIf)...)
		t.Logf("%s: the ISP's neighbour entry: %q; counters: %s", step, strings.TrimSpace(neigh.Stdout), d)
		if err != nil {
			t.Errorf("%s: the ISP cannot reach %s: %v", step, outside, err)
		}
		if !strings.Contains(neigh.Stdout, "lladdr "+wanMAC) {
			t.Errorf("%s: the ISP's neighbour entry for %s is %q, want the CPE's WAN MAC %s", step, outside, neigh.Stdout, wanMAC)
		}
		for _, c := range counters {
			if d[c].Packets == 0 {
				t.Errorf("%s: %s did not count", step, c)
			}
		}
	}

	// 1. GRO (the lab's default) and no XDP program on the ISP's end.
	wantTX(t, ctx, cli, map[string]string{labkit.CPEWANIf: "redirect", labkit.CPELANIf: "redirect"})
	resolve("GRO, no XDP on the ISP's end", "tx_ndp_na_redirect")

	// 2. Neither.
	mustRun(t, ctx, r, netlab.InNS(topo.ISP, "ethtool", "-K", labkit.ISPIf, "gro", "off")...)
	wantTX(t, ctx, cli, map[string]string{labkit.CPEWANIf: "kernel"})
	resolve("no NAPI on the ISP's end", "pass_ndp_na_tc", "tc_reply")

	// 3. An XDP program, GRO still off.
	xdpPassIn(t, topo.Lab, topo.ISP, labkit.ISPIf)
	wantTX(t, ctx, cli, map[string]string{labkit.CPEWANIf: "redirect"})
	resolve("XDP on the ISP's end", "tx_ndp_na_redirect")
	t.Logf("apply said:\n%s", app.Stdout)
}

// pingHosts pings host-b over IPv4 and IPv6 from host-a.
func pingHosts(t *testing.T, ctx context.Context, r labkit.Runner, topo *labkit.Topology, step string) {
	t.Helper()
	for _, dst := range []netip.Addr{labkit.HostB4.Addr(), labkit.HostB6.Addr()} {
		if _, err := r.Ping(ctx, topo.HostA, dst, 3); err != nil {
			t.Errorf("%s: ping host-b: %v", step, err)
		}
	}
}

type transfer struct {
	ok  bool
	res labkit.TransferResult
	c   labkit.Counters
}

// transferDelta sends 2 MB from host-a to dst on host-b, content checked,
// and returns the counters it moved.
func transferDelta(t *testing.T, ctx context.Context, cli labkit.CLI, topo *labkit.Topology, dst netip.Addr, step string) transfer {
	t.Helper()
	const size = 2 << 20
	c0 := mustCounters(t, ctx, cli)
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := labkit.Transfer(tctx, topo.Lab, topo.HostA, topo.HostB, dst, size)
	d := mustCounters(t, ctx, cli).Sub(c0)
	t.Logf("%s: TCP to [%s]: %d bytes in %v, host-a sent %d segments (%d with data); counters: %s",
		step, dst, res.Bytes, res.Elapsed.Round(time.Millisecond), res.SenderTCP.SegsOut, res.SenderTCP.DataSegsOut, d)
	if err != nil {
		t.Errorf("%s: TCP to [%s]: %v", step, dst, err)
		return transfer{c: d}
	}
	if res.Bytes != size || res.SentSHA != res.RecvSHA {
		t.Errorf("%s: sent %d bytes %s, received %d bytes %s", step, int64(size), res.SentSHA, res.Bytes, res.RecvSHA)
		return transfer{c: d}
	}
	return transfer{ok: true, res: res, c: d}
}

// fastAgain checks that XDP forwarded the transfer (both directions) and
// handed nothing to the kernel for want of NAPI.
func fastAgain(t *testing.T, d transfer, counter string) {
	t.Helper()
	if !d.ok {
		return
	}
	both := uint64(d.res.SenderTCP.SegsOut) + uint64(d.res.RecvTCP.SegsOut)
	if got, want := d.c[counter].Packets, both*9/10; got < want {
		t.Errorf("%s %d, want >= 90%% of the %d segments both hosts sent", counter, got, both)
	}
	if n := d.c["pass_egress_no_napi"].Packets; n != 0 {
		t.Errorf("pass_egress_no_napi %d, want 0 once the peer has NAPI", n)
	}
}

// wantTX runs status (which re-checks the peers) and compares the
// transmit paths of the named interfaces.
func wantTX(t *testing.T, ctx context.Context, cli labkit.CLI, want map[string]string) {
	t.Helper()
	st := mustStatus(t, ctx, cli)
	for name, path := range want {
		if i := mustIface(t, st, name); i.TXPath != path {
			t.Errorf("status: %s transmit path %q (%s), want %q", name, i.TXPath, i.TXNote, path)
		}
	}
}

// xdpPassIn attaches an XDP_PASS program to dev in ns until the test
// ends or the returned Closer is closed.
func xdpPassIn(t *testing.T, lab *netlab.Lab, ns, dev string) io.Closer {
	t.Helper()
	var c io.Closer
	if err := lab.Do(ns, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		c, err = loader.AttachXDPPass(ifc.Index)
		return err
	}); err != nil {
		t.Fatal(fmt.Errorf("XDP program on %s in %s: %w", dev, ns, err))
	}
	once := &closeOnce{c: c}
	t.Cleanup(func() { _ = once.Close() })
	return once
}

type closeOnce struct {
	c    io.Closer
	done bool
}

func (o *closeOnce) Close() error {
	if o.done {
		return nil
	}
	o.done = true
	return o.c.Close()
}

// TestVethPeerDaemon: the daemon follows a veth peer that gains and loses
// NAPI after it started, from the kernel's announcement (no status or
// attach run in between): host-b's end starts without GRO, so to-b's
// egress is the kernel's and TCP still works; with GRO on, the daemon moves
// to-b to the fast path within moments; with GRO off again, back, and TCP
// goes on working.
func TestVethPeerDaemon(t *testing.T) {
	topo, cli, ctx := newLab(t)
	r := cli.Runner
	groB := func(on string) {
		t.Helper()
		mustRun(t, ctx, r, netlab.InNS(topo.HostB, "ethtool", "-K", labkit.HostIf, "gro", on)...)
	}
	groB("off")
	cfg := writeConfig(t, topo, "config.yaml", labConfig)
	d := startDaemon(t, ctx, cli, cfg)
	waitTX := func(path string) {
		t.Helper()
		waitFor(t, ctx, cli, labkit.RouterIfB+" on transmit path "+path, func(st labkit.Status) bool {
			i, ok := st.Interface(labkit.RouterIfB)
			return st.Daemon != nil && ok && i.TXPath == path
		})
	}
	waitTX("kernel")
	if !strings.Contains(d.Log(), "tx kernel: veth peer has no NAPI") {
		t.Errorf("the daemon did not log %s's transmit path", labkit.RouterIfB)
	}
	// The gate hands the handshake to the kernel, and XDP would carry
	// the established flow: toward to-b it cannot.
	if x := transferDelta(t, ctx, cli, topo, labkit.HostB6.Addr(), "no NAPI on host-b's end"); x.ok && x.c["pass_egress_no_napi"].Packets == 0 {
		t.Errorf("pass_egress_no_napi did not count")
	}

	groB("on")
	waitTX("redirect")
	if !strings.Contains(d.Log(), "transmit path change, reconciling") {
		t.Errorf("the daemon's log does not say why it reconciled")
	}
	x := transferDelta(t, ctx, cli, topo, labkit.HostB6.Addr(), "GRO on host-b's end")
	if x.ok && (x.c["fwd_ipv6"].Packets == 0 || x.c["pass_egress_no_napi"].Packets != 0) {
		t.Errorf("fwd_ipv6 %d, pass_egress_no_napi %d: want the established flow in XDP", x.c["fwd_ipv6"].Packets, x.c["pass_egress_no_napi"].Packets)
	}

	groB("off")
	waitTX("kernel")
	transferDelta(t, ctx, cli, topo, labkit.HostB6.Addr(), "GRO off again")
}
