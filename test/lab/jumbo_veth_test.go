package lab

import (
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// oneBuffer is the frame size beyond which a veth gives XDP a frame in
// more than one buffer (an MTU of 3498, loader.SingleBufferMTU, plus
// Ethernet and its slack): a counter averaging more saw jumbo frames.
const oneBuffer = 3520

// TestJumboVethPeerWithoutNAPI: jumbo frames and a veth peer without NAPI
// together. Every link of the basic lab is at MTU 9000 and host-b's end of
// to-b has no GRO. host-a's TCP segments of some 9000 octets reach XDP on
// to-a in several buffers; XDP can send none of them to to-b (neither
// xdpr_tx_ports nor xdpr_tx_ports_mb holds it), so the kernel forwards
// them (pass_egress_no_napi, not pass_mb_egress, nothing lost), and attach
// has a jumbo line for to-a only: to-b's transmit-path warning says where
// its traffic goes. With GRO on at host-b's end status moves to-b to
// redirect and XDP forwards the jumbo segments both ways; with GRO off
// again, back to the kernel path, out of both devmaps. A kernel before
// 6.3 redirects no multi-buffer frame (TestTransmitsMultiBuffer), and
// tells of host-b's end only what it reads in host-b's namespace: there
// the jumbo segments are the kernel's on every path (pass_mb_egress when
// to-b has NAPI), and nothing is lost.
func TestJumboVethPeerWithoutNAPI(t *testing.T) {
	mbRedirect := loader.ProbeKernel().Has(loader.FeatureXDPFeatures)
	topo, cli, ctx := newLab(t)
	r := cli.Runner
	for _, l := range []struct{ ns, dev string }{
		{topo.HostA, labkit.HostIf}, {topo.Router, labkit.RouterIfA},
		{topo.Router, labkit.RouterIfB}, {topo.HostB, labkit.HostIf},
	} {
		mustRun(t, ctx, r, netlab.InNS(l.ns, "ip", "link", "set", "dev", l.dev, "mtu", "9000")...)
	}
	groB := func(on string) {
		t.Helper()
		mustRun(t, ctx, r, netlab.InNS(topo.HostB, "ethtool", "-K", labkit.HostIf, "gro", on)...)
	}
	groB("off")
	att := mustCLI(t, ctx, cli, "attach", labkit.RouterIfA, labkit.RouterIfB, "--ct-gate", "off")
	want := labkit.RouterIfA + ": MTU 9000: frames beyond one buffer are forwarded multi-buffer in XDP"
	if !mbRedirect {
		want = labkit.RouterIfA + ": MTU 9000: frames beyond one buffer routed out of it are left to the kernel"
	}
	if !strings.Contains(att.Stdout, want) {
		t.Errorf("attach does not say %q:\n%s", want, att.Stdout)
	}
	if strings.Contains(att.Stdout, labkit.RouterIfB+": MTU") {
		t.Errorf("attach has a jumbo line for %s, whose traffic is all the kernel's:\n%s", labkit.RouterIfB, att.Stdout)
	}
	if !strings.Contains(att.Stderr, "no NAPI") {
		t.Errorf("attach did not warn about %s's peer:\n%s", labkit.RouterIfB, att.Stderr)
	}
	wantTX(t, ctx, cli, map[string]string{labkit.RouterIfA: "redirect", labkit.RouterIfB: "kernel"})

	viaKernel := func(step string) {
		t.Helper()
		pingHosts(t, ctx, r, topo, step)
		d := transferDelta(t, ctx, cli, topo, labkit.HostB4.Addr(), step)
		if !d.ok {
			return
		}
		noNAPI := d.c["pass_egress_no_napi"]
		if want := uint64(d.res.SenderTCP.DataSegsOut) * 9 / 10; noNAPI.Packets < want || noNAPI.Packets == 0 {
			t.Errorf("%s: pass_egress_no_napi %d, want >= %d: host-a's segments toward to-b are the kernel's", step, noNAPI.Packets, want)
		} else if noNAPI.Bytes/noNAPI.Packets <= oneBuffer {
			t.Errorf("%s: pass_egress_no_napi %d octets a frame: no jumbo frame reached XDP", step, noNAPI.Bytes/noNAPI.Packets)
		}
		if n := d.c["pass_mb_egress"].Packets; n != 0 {
			t.Errorf("%s: pass_mb_egress %d: to-b is on the kernel path, not a port without multi-buffer transmit", step, n)
		}
	}
	viaKernel("jumbo, no NAPI on host-b's end")

	groB("on")
	wantTX(t, ctx, cli, map[string]string{labkit.RouterIfB: "redirect"})
	d := transferDelta(t, ctx, cli, topo, labkit.HostB4.Addr(), "jumbo, GRO on host-b's end")
	if !mbRedirect {
		// The jumbo segments are the kernel's, the ACKs and the
		// segments of one buffer (slow start's first ones) XDP's.
		if d.ok {
			mb, fwd := d.c["pass_mb_egress"], d.c["fwd_ipv4"]
			if mb.Packets == 0 || mb.Bytes/mb.Packets <= oneBuffer || mb.Bytes+fwd.Bytes < uint64(d.res.Bytes) {
				t.Errorf("pass_mb_egress %d frames, %d octets, fwd_ipv4 %d octets: want the %d octets sent in them, "+
					"the jumbo segments left to the kernel", mb.Packets, mb.Bytes, fwd.Bytes, d.res.Bytes)
			}
			if n := d.c["pass_egress_no_napi"].Packets; n != 0 {
				t.Errorf("pass_egress_no_napi %d, want 0 once the peer has NAPI", n)
			}
		}
	} else {
		fastAgain(t, d, "fwd_ipv4")
		if d.ok {
			if fwd := d.c["fwd_ipv4"]; fwd.Bytes < uint64(d.res.Bytes) || int64(d.res.SenderTCP.DataSegsOut)*oneBuffer >= d.res.Bytes {
				t.Errorf("fwd_ipv4 %d octets for %d sent in %d segments: want the transfer in XDP in segments beyond one buffer",
					fwd.Bytes, d.res.Bytes, d.res.SenderTCP.DataSegsOut)
			}
			if n := d.c["pass_mb_egress"].Packets + d.c["pass_mb_headers"].Packets; n != 0 {
				t.Errorf("%d multi-buffer frames left to the kernel", n)
			}
		}
	}

	// GRO off again: status takes to-b out of both devmaps, or the jumbo
	// segments would still be redirected to a peer that drops them.
	groB("off")
	wantTX(t, ctx, cli, map[string]string{labkit.RouterIfB: "kernel"})
	viaKernel("jumbo, GRO off again on host-b's end")
}
