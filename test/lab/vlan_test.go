package lab

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// vlanSize is the TCP payload of the VLAN checks (small: the matrix runs
// them under emulation).
const vlanSize = 2 << 20

var (
	routerVLAN4 = netip.MustParsePrefix("203.0.113.1/24")
	hostBVLAN4  = netip.MustParsePrefix("203.0.113.2/24")
	routerVLAN6 = netip.MustParsePrefix("fd00:100::1/64")
	hostBVLAN6  = netip.MustParsePrefix("fd00:100::2/64")
)

// TestVLAN records what xdprouter does with 802.1Q today, which it does not
// claim to handle (tagged frames are passed to the kernel, counted as
// pass_vlan): host-b reaches the router over VLAN 100 on the same veth as
// its untagged link, and host-a's traffic to host-b's VLAN address is
// routed through the router's VLAN subinterface to-b.100.
//
//   - "parent attached": xdprouter on to-a and to-b, the VLAN device's
//     lower link. The kernel must still carry the VLAN's traffic: pings both
//     families and a TCP transfer with its content verified.
//   - "subinterface attached": xdprouter asked to attach to to-b.100 itself.
//     Either it attaches (the mode it chose is logged) and the traffic
//     still flows, or it refuses in one line that says why; what it may not
//     do is attach and lose the traffic, or answer with a verifier log.
//
// The counters of each part are logged, so the matrix's log shows which
// path carried the VLAN's packets. The kernel here may have no 8021q (the
// project's test machines do not); the test then skips, saying so, and the
// kernel matrix (make test-kernels) runs it on Debian's kernels.
func TestVLAN(t *testing.T) {
	topo, cli, ctx := newLab(t)
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	r := cli.Runner
	res, err := r.Run(ctx, nil, netlab.InNS(topo.Router, "ip", "link", "add", "link", labkit.RouterIfB, "name", labkit.RouterIfB+".100", "type", "vlan", "id", "100")...)
	if err != nil {
		if strings.Contains(res.Stderr, "Unknown device type") {
			t.Skipf("this kernel has no 8021q (VLAN devices): %s; the kernel matrix (make test-kernels) runs this test on Debian's kernels", strings.TrimSpace(res.Stderr))
		}
		t.Fatal(err)
	}
	vlanIf := labkit.RouterIfB + ".100"
	hostIf := labkit.HostIf + ".100"
	if err := topo.Lab.MustExec(topo.Router,
		[]string{"ip", "addr", "add", routerVLAN4.String(), "dev", vlanIf},
		[]string{"ip", "addr", "add", routerVLAN6.String(), "dev", vlanIf, "nodad"},
		[]string{"ip", "link", "set", vlanIf, "up"},
	); err != nil {
		t.Fatal(err)
	}
	// host-b answers host-a over the VLAN, so both directions are tagged.
	if err := topo.Lab.MustExec(topo.HostB,
		[]string{"ip", "link", "add", "link", labkit.HostIf, "name", hostIf, "type", "vlan", "id", "100"},
		[]string{"ip", "addr", "add", hostBVLAN4.String(), "dev", hostIf},
		[]string{"ip", "addr", "add", hostBVLAN6.String(), "dev", hostIf, "nodad"},
		[]string{"ip", "link", "set", hostIf, "up"},
		[]string{"ethtool", "-K", hostIf, "tx", "off"},
		[]string{"ip", "route", "add", labkit.HostA4.Masked().String(), "via", routerVLAN4.Addr().String(), "dev", hostIf},
		[]string{"ip", "-6", "route", "add", labkit.HostA6.Masked().String(), "via", routerVLAN6.Addr().String(), "dev", hostIf},
	); err != nil {
		t.Fatal(err)
	}
	// The VLAN's traffic gets through, content intact, whatever path it
	// takes; the counters say which one that was.
	// withCounters: xdprouter is attached, so its counters can be read.
	traffic := func(t *testing.T, cli labkit.CLI, withCounters bool) {
		t.Helper()
		for _, dst := range []netip.Addr{hostBVLAN4.Addr(), hostBVLAN6.Addr()} {
			if _, err := cli.Runner.Ping(ctx, topo.HostA, dst, 3); err != nil {
				t.Fatalf("host-a to host-b's VLAN address: %v", err)
			}
		}
		var before, delta labkit.Counters
		if withCounters {
			before = mustCounters(t, ctx, cli)
		}
		res, err := labkit.Transfer(ctx, topo.Lab, topo.HostA, topo.HostB, hostBVLAN4.Addr(), vlanSize)
		if err != nil {
			t.Fatalf("TCP host-a -> host-b over VLAN 100: %v", err)
		}
		if withCounters {
			delta = mustCounters(t, ctx, cli).Sub(before)
		}
		if res.Bytes != vlanSize || res.SentSHA != res.RecvSHA {
			t.Fatalf("content: sent %d bytes %s, received %d bytes %s", int64(vlanSize), res.SentSHA, res.Bytes, res.RecvSHA)
		}
		t.Logf("TCP host-a -> host-b over VLAN 100: %d bytes, sha256 %s on both ends, %d segments sent; counters: %s",
			res.Bytes, res.RecvSHA, res.SenderTCP.SegsOut, delta)
	}

	t.Run("parent attached", func(t *testing.T) {
		cli := cli.WithLog(t)
		mustCLI(t, ctx, cli, "attach", labkit.RouterIfA, labkit.RouterIfB, "--role", "lan")
		traffic(t, cli, true)
		mustCLI(t, ctx, cli, "detach", "--all")
	})

	t.Run("subinterface attached", func(t *testing.T) {
		cli := cli.WithLog(t)
		res, err := cli.Run(ctx, "attach", labkit.RouterIfA, vlanIf, "--role", "lan")
		if err != nil {
			// Besides the reason: the kernel's missing features, one
			// line each ("kernel 6.1…: no TCX…"), printed first.
			lines := slices.DeleteFunc(res.StderrLines(), func(l string) bool { return strings.HasPrefix(l, "kernel ") })
			if len(lines) != 1 || !strings.Contains(lines[0], "VLAN") || strings.Contains(res.Stderr, "verifier") {
				t.Fatalf("attach to %s failed with %d lines of stderr, want one line that says why:\n%s", vlanIf, len(lines), res.Stderr)
			}
			t.Logf("xdprouter does not attach to a VLAN subinterface: %s", lines[0])
			mustCLI(t, ctx, cli, "detach", "--all")
			traffic(t, cli, false)
			return
		}
		st := mustStatus(t, ctx, cli)
		i := mustIface(t, st, vlanIf)
		t.Logf("xdprouter attached to %s in %s mode (link %d)", vlanIf, i.XDPMode, i.LinkID)
		traffic(t, cli, true)
		mustCLI(t, ctx, cli, "detach", "--all")
	})
}
