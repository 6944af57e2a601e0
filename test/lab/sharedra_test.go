package lab

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/ndpwake"
	"github.com/xdprouter/xdprouter/test/labkit"
)

// A line that hands out one /64 by RA and no prefix delegation: the daemon
// learns the /64 from radvd, keeps only its /128 on the WAN, gives the /64
// to the LAN (address ::1, RAs to the hosts) and the NDP proxy in
// lan-neighbor mode answers the ISP for the hosts behind the LAN. Nothing
// in the config names the prefix.
func TestSharedLAN64FromRA(t *testing.T) {
	needRoot(t)
	needISP(t, "radvd")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	topo := newNPTLab(t)
	lab := topo.Lab
	// Nothing static on the CPE's LAN or WAN, the host configures itself.
	if err := lab.MustExec(topo.CPE,
		[]string{"ip", "-6", "addr", "flush", "dev", labkit.CPELANIf, "scope", "global"},
		[]string{"ip", "-6", "route", "del", "default"}); err != nil {
		t.Fatal(err)
	}
	if err := lab.MustExec(topo.Host,
		[]string{"ip", "-6", "addr", "flush", "dev", labkit.HostIf, "scope", "global"},
		[]string{"ip", "-6", "route", "flush", "default"},
		[]string{"sysctl", "-qw", "net.ipv6.conf." + labkit.HostIf + ".accept_ra=1"}); err != nil {
		t.Fatal(err)
	}
	ispTakesXDPFrames(t, topo)
	rd, err := labkit.StartRadvd(lab, topo.ISP, labkit.RadvdConfig{Interface: labkit.ISPIf, RouterLifetime: 1800 * time.Second,
		MinInterval: 3 * time.Second, MaxInterval: 4 * time.Second,
		Prefixes: []labkit.RadvdPrefix{{Prefix: labkit.NPTOutside, Valid: 2 * time.Hour, Preferred: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Stop() })

	cli := topo.CLI(xdprouterBin, t)
	cli.Socket = filepath.Join(lab.RunDir(), "xdprouter.sock")
	cfg := filepath.Join(lab.RunDir(), "shared.yaml")
	config := `wan: {interface: wan0, token: "::feed"}
lan: [{interface: lan0}]
ndp-proxy:
  - interface: wan0
    mode: lan-neighbor
    prefixes: [auto]       # the WAN /64, shared with the LAN
firewall: {mode: "off"}  # this lab sends unsolicited inbound traffic on purpose
`
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("config:\n%s", config)
	startDaemon(t, ctx, cli, cfg, "--detach-on-exit")

	l := &ipoeLab{cli: cli}
	l.waitStatus(t, ctx, "the shared /64 learned", 20*time.Second, func(d labkit.DaemonStatus) bool {
		return wanAddress(d) == "2001:db8:aaaa::feed/128" && lanPrefix(d) == labkit.NPTOutside.String() &&
			d.IPv6.LANs[0].Address.Address == "2001:db8:aaaa::1/64"
	})
	st, err := cli.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Daemon.IPv6.Pending) != 0 {
		t.Errorf("waiting: %v", st.Daemon.IPv6.Pending)
	}
	routes, _ := lab.Exec(topo.CPE, "ip", "-6", "route", "show", labkit.NPTOutside.String())
	if !strings.Contains(routes, "dev "+labkit.CPELANIf) || strings.Contains(routes, "dev "+labkit.CPEWANIf) {
		t.Errorf("the /64's route must be the LAN's alone:\n%s", routes)
	}

	// The host takes a SLAAC address in the shared /64 from the CPE's RA.
	// It sends nothing from it, so the CPE does not know it: the ISP
	// reaches it first, through the proxy, once ndp-wake has had the
	// CPE resolve it on the LAN; then the host reaches the ISP, and the
	// ISP, its cache flushed, reaches it again (XDP answers at once).
	re := regexp.MustCompile(`inet6 (2001:db8:aaaa:0:[0-9a-f:]+)/64 scope global (.*)`)
	var hostAddr string
	for deadline := time.Now().Add(20 * time.Second); hostAddr == ""; time.Sleep(100 * time.Millisecond) {
		out, _ := lab.Exec(topo.Host, "ip", "-6", "addr", "show", "dev", labkit.HostIf, "scope", "global")
		if m := re.FindStringSubmatch(out); m != nil && !strings.Contains(m[2], "tentative") {
			hostAddr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("the host got no usable address in %s:\n%s", labkit.NPTOutside, out)
		}
	}
	t.Logf("host address %s", hostAddr)
	if n, _ := lab.Exec(topo.CPE, "ip", "-6", "neigh", "show", hostAddr, "dev", labkit.CPELANIf); strings.Contains(n, "lladdr") {
		t.Fatalf("the CPE already knows the host (%s): the first contact would not be tested", strings.TrimSpace(n))
	}
	c0 := mustCounters(t, ctx, cli)
	start := time.Now()
	res, err := cli.Runner.InNS(ctx, topo.ISP, "ping", "-n", "-c", "1", "-W", "5", hostAddr)
	if err != nil || !strings.Contains(res.Stdout, "1 received") {
		t.Fatalf("ISP -> host that has not talked first: %v\n%s\nndp-wake: %+v", err, res.Stdout, wakeStats(t, ctx, cli))
	}
	rtt := "?"
	if m := regexp.MustCompile(`time=([0-9.]+ ms)`).FindStringSubmatch(res.Stdout); m != nil {
		rtt = m[1]
	}
	t.Logf("ISP -> unknown host: answered %v after the ping started (rtt %s: from the ISP's first NS to the reply)",
		time.Since(start).Round(time.Millisecond), rtt)
	if w := wakeStats(t, ctx, cli); w.Probes == 0 || w.LastTarget != hostAddr || w.ProbeErrors != 0 {
		t.Errorf("ndp-wake %+v: want a probe for %s", w, hostAddr)
	}
	if d := mustCounters(t, ctx, cli).Sub(c0); d["pass_ndp_no_neigh"].Packets == 0 || d.NAsSent() == 0 {
		t.Errorf("want the first NS passed (no neighbour yet) and a later one answered by XDP: %s", d)
	}

	c0 = mustCounters(t, ctx, cli)
	if _, err := cli.Runner.Ping(ctx, topo.Host, labkit.ISPAddr, 3); err != nil {
		t.Fatalf("host -> ISP: %v", err)
	}
	if _, err := lab.Exec(topo.ISP, "ip", "-6", "neigh", "flush", "dev", labkit.ISPIf); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Runner.Ping(ctx, topo.ISP, netip.MustParseAddr(hostAddr), 3); err != nil {
		t.Fatalf("ISP -> host through the proxy: %v", err)
	}
	if d := mustCounters(t, ctx, cli).Sub(c0); d.NAsSent() == 0 {
		t.Errorf("the proxy sent no NA: %s", d)
	}
}

func wakeStats(t *testing.T, ctx context.Context, cli labkit.CLI) ndpwake.Stats {
	t.Helper()
	st, err := cli.Status(ctx)
	if err != nil || st.Daemon == nil {
		t.Fatalf("status: %v", err)
	}
	var w ndpwake.Stats
	if err := json.Unmarshal(st.Daemon.Tasks["ndp-wake"], &w); err != nil {
		t.Fatalf("ndp-wake task stats %s: %v", st.Daemon.Tasks["ndp-wake"], err)
	}
	return w
}
