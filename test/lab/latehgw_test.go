package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// TestIPoELateHGW (issue 13 item 12): after a power cut the router is up
// before the home gateway. The daemon starts with no RA and no DHCPv6
// server on the WAN; its Solicits back off (1, 2, 4, 8, 16 s: after the
// fifth, ~15 s in, the next is due ~31 s in). Then the HGW comes up: kea,
// and radvd advertising the M and O flags. The RA makes the client
// solicit at once, and the prefix is delegated within a few seconds of
// the RA instead of at the next backed-off Solicit (~16 s later; more the
// longer the HGW takes). The daemon logs why it solicited again.
func TestIPoELateHGW(t *testing.T) {
	needRoot(t)
	ctx := t.Context()
	topo, err := labkit.NewIPoETopology()
	if err != nil {
		t.Fatal(err)
	}
	labkit.CloseAtEnd(t, topo)
	// The HGW is off.
	if err := topo.Radvd.Stop(); err != nil {
		t.Fatal(err)
	}
	topo.Kea.Stop()

	cli := labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: topo.Router, BPFFS: topo.BPFFS,
		Socket: filepath.Join(topo.Lab.RunDir(), "xdprouter.sock")}
	cfg := filepath.Join(topo.Lab.RunDir(), "ipoe.yaml")
	if err := os.WriteFile(cfg, []byte(topo.Config()), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &ipoeLab{topo: topo, cli: cli}
	l.d = startDaemon(t, ctx, cli, cfg, "--state-dir", filepath.Join(topo.Lab.RunDir(), "state"), "--detach-on-exit")
	l.waitStatus(t, ctx, "five Solicits unanswered", 30*time.Second, func(d labkit.DaemonStatus) bool {
		if p := lanPrefix(d); p != "" {
			t.Fatalf("a LAN prefix %s with no DHCPv6 server", p)
		}
		return l.pd(t, ctx).Sent["solicit"] >= 5
	})

	// The HGW comes up: its DHCPv6 server, then its RAs with M and O.
	if err := topo.Kea.Restart(); err != nil {
		t.Fatal(err)
	}
	rc := topo.RadvdConfig(labkit.IPoEWAN1, netip.Prefix{}, 5400*time.Second)
	rc.Managed, rc.Other = true, true
	radvd, err := labkit.StartRadvd(topo.Lab, topo.ISP, rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = radvd.Stop() })
	took := l.waitStatus(t, ctx, "a delegated LAN prefix after the HGW came up", 8*time.Second, func(d labkit.DaemonStatus) bool {
		return lanPrefix(d) != ""
	})
	t.Logf("LAN prefix %v after the HGW's first RA; sent %d Solicits in all", took.Round(10*time.Millisecond), l.pd(t, ctx).Sent["solicit"])
	if log := l.d.Log(); !strings.Contains(log, "soliciting again now") || !strings.Contains(log, "router advertises DHCPv6") {
		t.Errorf("the daemon's log does not say why it solicited again:\n%s", log)
	}
}
