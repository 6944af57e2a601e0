package lab

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// TestNDPProxyLANNeighbor is the line with one /64 shared by WAN and LAN
// and no NPT: the proxy (mode lan-neighbor) answers the ISP only for
// addresses whose neighbour entry is resolved behind the LAN. An address
// nobody uses stays unanswered; the host becomes reachable once the CPE
// knows it.
func TestNDPProxyLANNeighbor(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	topo := newNPTLab(t)
	if err := topo.ShareOutsidePrefix(); err != nil {
		t.Fatal(err)
	}
	ispTakesXDPFrames(t, topo)
	cli := topo.CLI(xdprouterBin, t)
	r := cli.Runner
	cfg := filepath.Join(t.TempDir(), "xdprouter.yaml")
	if err := os.WriteFile(cfg, []byte(topo.SharedConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("config:\n%s", topo.SharedConfig())
	mustCLI(t, ctx, cli, "apply", "--config", cfg)

	host, nobody := labkit.SharedHostAddr.Addr(), netip.MustParseAddr("2001:db8:aaaa::999")
	c0 := mustCounters(t, ctx, cli)
	// Nobody has ::999: the ISP's solicitations stay unanswered.
	if _, err := r.Ping(ctx, topo.ISP, nobody, 1); err == nil {
		t.Errorf("ping %s answered; nobody has that address", nobody)
	}
	c1 := mustCounters(t, ctx, cli)
	if d := c1.Sub(c0); d["pass_ndp_no_neigh"].Packets == 0 || d.NAsSent() != 0 {
		t.Errorf("unknown target: %s (want pass_ndp_no_neigh, no NA sent)", d)
	}
	neigh := mustRun(t, ctx, r, netlab.InNS(topo.ISP, "ip", "-6", "neigh", "show", nobody.String())...)
	if strings.Contains(neigh.Stdout, "lladdr") {
		t.Errorf("the ISP resolved %s: %s", nobody, neigh.Stdout)
	}
	// The host talks first (the CPE learns its neighbour), then the ISP
	// reaches it through the proxy's answer.
	if _, err := r.Ping(ctx, topo.Host, labkit.ISPAddr, 2); err != nil {
		t.Fatal(err)
	}
	mustRun(t, ctx, r, netlab.InNS(topo.ISP, "ip", "-6", "neigh", "flush", "dev", labkit.ISPIf)...)
	c2 := mustCounters(t, ctx, cli)
	if _, err := r.Ping(ctx, topo.ISP, host, 3); err != nil {
		t.Fatal(err)
	}
	d := mustCounters(t, ctx, cli).Sub(c2)
	t.Logf("host known behind the LAN: %s", d)
	if d.NAsSent() == 0 {
		t.Errorf("no NA for %s: %s", host, d)
	}
	st := mustStatus(t, ctx, cli)
	neigh = mustRun(t, ctx, r, netlab.InNS(topo.ISP, "ip", "-6", "neigh", "show", host.String())...)
	if wan := mustIface(t, st, labkit.CPEWANIf); !strings.Contains(neigh.Stdout, "lladdr "+wan.MAC) {
		t.Errorf("the ISP's neighbour entry for %s is %q, want the CPE's WAN MAC %s", host, neigh.Stdout, wan.MAC)
	}
}
