package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// The daemon on the tunnel topology (host — router — isp/AFTR — internet):
// a reload that changes a tunnel's routes under a steady IPv4 stream, and
// --detach-on-exit with a fixed-IPv4 + NAT44 tunnel.

// tunStreamPPS is the IPv4 stream's rate through the tunnel. The AFTR is a
// Python relay, so the rate stays well below what it keeps up with (it
// moves a 10 MB TCP transfer), yet one datagram every 500 µs is dense
// enough that a route missing for a fraction of a millisecond during the
// reload shows up as loss.
const tunStreamPPS = 2000

// tunRouteProto is the routing protocol number xdprouter tags its tunnel
// routes with (control.rtprotXDPRouter): `ip route show proto 200`.
const tunRouteProto = "200"

// A second internet prefix: an address of the internet host that the ISP
// routes to it, so that a reload can route it into the tunnel explicitly.
var (
	tunSecond4 = netip.MustParsePrefix("192.0.2.1/24")
	// Outside every prefix of the reloaded config: routed into the
	// tunnel only while 0.0.0.0/0 is.
	tunElsewhere4 = netip.MustParseAddr("203.0.113.50")
)

// newDaemonTunnelLab builds the tunnel topology and starts the AFTR, but
// leaves the router to the daemon the test starts.
func newDaemonTunnelLab(t *testing.T) (*labkit.TunnelTopology, labkit.CLI, context.Context) {
	t.Helper()
	topo, ctx := newTunnelTopology(t, 90*time.Second)
	cli := labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: topo.Router, BPFFS: topo.BPFFS,
		Socket: filepath.Join(topo.Lab.RunDir(), "xdprouter.sock")}
	return topo, cli, ctx
}

func writeTunnelConfig(t *testing.T, topo *labkit.TunnelTopology, yaml string) string {
	t.Helper()
	path := filepath.Join(topo.Lab.RunDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s:\n%s", path, yaml)
	return path
}

// tunnelRoutes is the router's IPv4 routes with xdprouter's protocol, as
// "prefix dev" strings ("0.0.0.0/0 v4tun"), sorted.
func tunnelRoutes(t *testing.T, ctx context.Context, r labkit.Runner, ns string) []string {
	t.Helper()
	res := mustRun(t, ctx, r, netlab.InNS(ns, "ip", "-4", "route", "show", "proto", tunRouteProto)...)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		dst, dev := f[0], "?"
		if dst == "default" {
			dst = "0.0.0.0/0"
		}
		if i := slices.Index(f, "dev"); i >= 0 && i+1 < len(f) {
			dev = f[i+1]
		}
		out = append(out, dst+" "+dev)
	}
	slices.Sort(out)
	return out
}

// routeDev is the device `ip route get dst` picks in ns, or "" when there
// is no route.
func routeDev(ctx context.Context, r labkit.Runner, ns string, dst netip.Addr) string {
	res, err := r.InNS(ctx, ns, "ip", "-4", "route", "get", dst.String())
	if err != nil {
		return ""
	}
	f := strings.Fields(res.Stdout)
	if i := slices.Index(f, "dev"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	return ""
}

func mustTunnel(t *testing.T, st labkit.Status, name string) labkit.TunnelStatus {
	t.Helper()
	for _, tun := range st.Tunnels {
		if tun.Name == name {
			return tun
		}
	}
	t.Fatalf("status has no tunnel %q: %+v", name, st.Tunnels)
	return labkit.TunnelStatus{}
}

// routeMonitor records `ip -4 monitor route` in a namespace, to see the
// order in which a reload changed the routes.
type routeMonitor struct {
	cmd *os.Process
	out *bytes.Buffer
	err chan error
}

func startRouteMonitor(t *testing.T, topo *labkit.TunnelTopology) *routeMonitor {
	t.Helper()
	cmd := topo.Lab.Command(topo.Router, "ip", "-4", "monitor", "route")
	m := &routeMonitor{out: &bytes.Buffer{}, err: make(chan error, 1)}
	cmd.Stdout = m.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.cmd = cmd.Process
	go func() { m.err <- cmd.Wait() }()
	t.Cleanup(func() { m.stop() })
	time.Sleep(200 * time.Millisecond) // subscribed before the change
	return m
}

// stop ends the monitor and returns the events it printed.
func (m *routeMonitor) stop() []string {
	if m.cmd == nil {
		return nil
	}
	time.Sleep(200 * time.Millisecond) // the last events printed
	_ = m.cmd.Kill()
	<-m.err
	m.cmd = nil
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(m.out.String()), "\n") {
		if strings.Contains(l, "proto "+tunRouteProto) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// TestDaemonTunnelReload: the daemon runs a DS-Lite tunnel with routes
// [0.0.0.0/0] while the LAN host streams sequenced UDP to an internet
// address through it (the XDP encapsulation fast path). An invalid reload
// (mtu 10, together with a route change) is rejected with the field named
// and nothing of it applied; a valid reload replaces the default route by
// the internet's /24 and a second /24: the route table and status show
// it, the second prefix is reachable, an address outside both no longer
// is, the tunnel netdev and its TC link are the same, and the stream
// loses nothing across both reloads (routes are added before stale ones
// are deleted).
func TestDaemonTunnelReload(t *testing.T) { forEachTCMode(t, testDaemonTunnelReload) }

func testDaemonTunnelReload(t *testing.T) {
	topo, cli, ctx := newDaemonTunnelLab(t)
	r := cli.Runner
	internet := labkit.Internet4.Addr()
	// The internet host's second prefix, routed to it by the ISP.
	mustRun(t, ctx, r, netlab.InNS(topo.Internet, "ip", "addr", "add", tunSecond4.String(), "dev", labkit.InternetIf)...)
	mustRun(t, ctx, r, netlab.InNS(topo.ISP, "ip", "route", "add", tunSecond4.Masked().String(), "via", internet.String())...)

	cfg := writeTunnelConfig(t, topo, tunnelConfig(""))
	d := startDaemon(t, ctx, cli, cfg)
	first := mustStatus(t, ctx, cli)
	tun := mustTunnel(t, first, labkit.TunnelName)
	t.Logf("tunnel in force: %+v", tun)
	if !tun.Present || !tcAttached(tun) || tun.Local != labkit.TunRouterWAN6.Addr().String() || tun.Remote != labkit.AFTR6.String() {
		t.Fatalf("tunnel status %+v: want present, with a TC program (%s), %s -> %s", tun, tcMode(), labkit.TunRouterWAN6.Addr(), labkit.AFTR6)
	}
	if got, want := tunnelRoutes(t, ctx, r, topo.Router), []string{"0.0.0.0/0 " + labkit.TunnelName}; !slices.Equal(got, want) {
		t.Fatalf("routes with proto %s: %v, want %v", tunRouteProto, got, want)
	}
	if dev := routeDev(ctx, r, topo.Router, tunElsewhere4); dev != labkit.TunnelName {
		t.Errorf("%s is routed to %q, want %s (the default route into the tunnel)", tunElsewhere4, dev, labkit.TunnelName)
	}
	// Warm up the neighbour caches and the AFTR's B4 mapping; both
	// prefixes reach the internet host through the default route.
	if _, err := r.Ping(ctx, topo.Host, internet, 2); err != nil {
		t.Fatalf("ping the internet host through the tunnel: %v", err)
	}
	if _, err := r.Ping(ctx, topo.Host, tunSecond4.Addr(), 2); err != nil {
		t.Fatalf("ping the internet host's second prefix through the default route: %v", err)
	}

	before := mustCounters(t, ctx, cli)
	stream, err := labkit.StartStream(topo.Lab, topo.Host, topo.Internet, internet, tunStreamPPS)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_, _ = stream.Stop()
		}
	})
	time.Sleep(time.Second)

	newRoutes := fmt.Sprintf("[%s, %s]", labkit.Internet4.Masked(), tunSecond4.Masked())
	newConfig := strings.Replace(tunnelConfig(""), "routes: [0.0.0.0/0]", "routes: "+newRoutes, 1)
	if newConfig == tunnelConfig("") {
		t.Fatal("tunnelConfig no longer has routes: [0.0.0.0/0]")
	}

	t.Run("invalid reload is rejected", func(t *testing.T) {
		cli := cli.WithLog(t)
		writeTunnelConfig(t, topo, newConfig+"    mtu: 10\n")
		atSignal := stream.Received()
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		st := waitFor(t, ctx, cli, "the reload to be rejected", func(st labkit.Status) bool {
			return st.Daemon != nil && st.Daemon.LastReloadError != ""
		})
		t.Logf("reload error: %s", st.Daemon.LastReloadError)
		if !strings.Contains(st.Daemon.LastReloadError, "tunnels[0].mtu: 10 is out of range") {
			t.Errorf("reload error %q does not name tunnels[0].mtu", st.Daemon.LastReloadError)
		}
		if !strings.Contains(d.Log(), "reload rejected") || !strings.Contains(d.Log(), "tunnels[0].mtu") {
			t.Errorf("the daemon log does not say why the reload was rejected")
		}
		if st.Daemon.Generation != 1 || st.Daemon.Errors != 0 {
			t.Errorf("after a rejected reload: generation %d (want 1), reconcile errors %d (want 0)", st.Daemon.Generation, st.Daemon.Errors)
		}
		if got := mustTunnel(t, st, labkit.TunnelName); got != tun {
			t.Errorf("tunnel changed by a rejected reload: %+v -> %+v", tun, got)
		}
		// Nothing of the rejected file, not even its valid route change.
		if got, want := tunnelRoutes(t, ctx, cli.Runner, topo.Router), []string{"0.0.0.0/0 " + labkit.TunnelName}; !slices.Equal(got, want) {
			t.Errorf("routes after a rejected reload: %v, want %v", got, want)
		}
		if res := mustRun(t, ctx, cli.Runner, netlab.InNS(topo.Router, "ip", "link", "show", labkit.TunnelName)...); !strings.Contains(res.Stdout, "mtu 1460") {
			t.Errorf("tunnel netdev mtu changed by a rejected reload:\n%s", res.Stdout)
		}
		time.Sleep(300 * time.Millisecond)
		if got := stream.Received(); got <= atSignal {
			t.Errorf("the stream stopped after the rejected reload (%d -> %d datagrams)", atSignal, got)
		}
	})

	time.Sleep(500 * time.Millisecond)
	// breakBeforeMake: the reload deleted the default route before it
	// added the /24 that replaces it for the stream's destination.
	breakBeforeMake := false
	t.Run("route change is applied under traffic", func(t *testing.T) {
		cli := cli.WithLog(t)
		writeTunnelConfig(t, topo, newConfig)
		mon := startRouteMonitor(t, topo)
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		st := waitFor(t, ctx, cli, "generation 2", func(st labkit.Status) bool {
			return st.Daemon != nil && st.Daemon.Generation == 2
		})
		events := mon.stop()
		t.Logf("route events during the reload (ip -4 monitor route, proto %s):\n%s", tunRouteProto, strings.Join(events, "\n"))
		if st.Daemon.LastReloadError != "" || st.Daemon.Errors != 0 || st.Daemon.LastError != "" {
			t.Errorf("daemon status after the reload: %+v", st.Daemon)
		}
		want := []string{labkit.Internet4.Masked().String() + " " + labkit.TunnelName, tunSecond4.Masked().String() + " " + labkit.TunnelName}
		slices.Sort(want)
		if got := tunnelRoutes(t, ctx, cli.Runner, topo.Router); !slices.Equal(got, want) {
			t.Errorf("routes with proto %s after the reload: %v, want %v", tunRouteProto, got, want)
		}
		for _, dst := range []netip.Addr{internet, tunSecond4.Addr()} {
			if dev := routeDev(ctx, cli.Runner, topo.Router, dst); dev != labkit.TunnelName {
				t.Errorf("%s is routed to %q, want %s", dst, dev, labkit.TunnelName)
			}
		}
		if dev := routeDev(ctx, cli.Runner, topo.Router, tunElsewhere4); dev != "" {
			t.Errorf("%s is still routed (to %s): the default route into the tunnel was not removed", tunElsewhere4, dev)
		}
		for _, s := range []string{"route " + tunSecond4.Masked().String() + " into " + labkit.TunnelName, "route " + labkit.Internet4.Masked().String() + " into " + labkit.TunnelName} {
			if !strings.Contains(d.Log(), s) {
				t.Errorf("daemon log has no step %q", s)
			}
		}
		// The same netdev, map entry and TC link: a route change must not
		// recreate the tunnel.
		if got := mustTunnel(t, st, labkit.TunnelName); got != tun {
			t.Errorf("tunnel status changed by a route-only reload: %+v -> %+v", tun, got)
		}
		// Make before break: every new route was in place before the
		// default route went, else the stream's destination had no route
		// for a moment.
		added, deleted := -1, -1
		for i, e := range events {
			if strings.HasPrefix(e, "Deleted default") && deleted < 0 {
				deleted = i
			}
			if strings.HasPrefix(e, labkit.Internet4.Masked().String()) && added < 0 {
				added = i
			}
		}
		if deleted >= 0 && added >= 0 && deleted < added {
			breakBeforeMake = true
			t.Logf("NOTE: the default route was deleted before %s was added (break before make): "+
				"datagrams in between had no route (NetlinkTunnelDevs.SetRoutes removes stale routes before it adds)", labkit.Internet4.Masked())
		}
		if _, err := cli.Runner.Ping(ctx, topo.Host, tunSecond4.Addr(), 3); err != nil {
			t.Errorf("ping %s through its new route: %v", tunSecond4.Addr(), err)
		}
	})

	time.Sleep(time.Second)
	res, err := stream.Stop()
	stopped = true
	if err != nil {
		t.Fatal(err)
	}
	delta := mustCounters(t, ctx, cli).Sub(before)
	t.Logf("UDP stream host -> %s through the tunnel, across both reloads: %s", internet, res)
	t.Logf("counters during the stream: %s", delta)
	switch {
	case res.Sent == 0:
		t.Errorf("the stream sent nothing")
	case res.Lost != 0:
		t.Errorf("stream lost %d of %d datagrams across the reloads (break-before-make: %v)", res.Lost, res.Sent, breakBeforeMake)
	}
	// The stream took the XDP fast path: every datagram encapsulated
	// there (the pings add a few).
	if got := delta["tun_encap"].Packets; got < uint64(res.Received) {
		t.Errorf("tun_encap +%d, less than the %d datagrams received: the stream left the fast path", got, res.Received)
	}
	checkAFTR(t, topo)

	t.Run("dropping every tunnel removes them all", func(t *testing.T) {
		cli := cli.WithLog(t)
		base, _, _ := strings.Cut(tunnelConfig(""), "tunnels:")
		writeTunnelConfig(t, topo, base)
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, cli, "generation 3", func(st labkit.Status) bool {
			return st.Daemon != nil && st.Daemon.Generation == 3
		})
		if got := tunnelRoutes(t, ctx, cli.Runner, topo.Router); len(got) != 0 {
			t.Errorf("routes with proto %s left: %v", tunRouteProto, got)
		}
		if res, err := cli.Runner.InNS(ctx, topo.Router, "ip", "link", "show", labkit.TunnelName); err == nil {
			t.Errorf("tunnel netdev left:\n%s", res.Stdout)
		}
		// The WAN's decapsulating TC program has no tunnel left to serve.
		links, err := os.ReadDir(filepath.Join(topo.BPFFS, "links"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if strings.HasPrefix(l.Name(), "tun") {
				t.Errorf("tunnel link still pinned: %s", l.Name())
			}
		}
	})
	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonTunnelMovePrefix: two tunnels to the AFTR (local ::feed and
// ::beef); a reload moves the internet's /24 from the first to the second
// while the LAN host streams to it. The stream must lose nothing: the
// prefix has a route all the time.
// (Before applyTunnels added every tunnel's routes ahead of deleting stale
// ones, this lost ~0.3-0.6 s of traffic.)
func TestDaemonTunnelMovePrefix(t *testing.T) { forEachTCMode(t, testDaemonTunnelMovePrefix) }

func testDaemonTunnelMovePrefix(t *testing.T) {
	topo, cli, ctx := newDaemonTunnelLab(t)
	r := cli.Runner
	internet := labkit.Internet4.Addr()
	const second = "v4tun2"
	config := func(first, other string) string {
		return fmt.Sprintf(`wan: {interface: %s}
lan:
  - {interface: %s, ipv4: %s}
tunnels:
  - {name: %s, remote: %s, local: %s, routes: %s}
  - {name: %s, remote: %s, local: %s, routes: %s}
firewall: {mode: "off"}  # this lab sends unsolicited inbound traffic on purpose
`, labkit.TunWANIf, labkit.TunLANIf, labkit.TunRouterLAN4,
			labkit.TunnelName, labkit.AFTR6, labkit.TunRouterWAN6.Addr(), first,
			second, labkit.AFTR6, labkit.TunRouterOther6.Addr(), other)
	}
	inet := labkit.Internet4.Masked().String()
	cfg := writeTunnelConfig(t, topo, config("[10.0.0.0/8, "+inet+"]", "[192.0.2.0/24]"))
	d := startDaemon(t, ctx, cli, cfg)
	if got := tunnelRoutes(t, ctx, r, topo.Router); !slices.Contains(got, inet+" "+labkit.TunnelName) {
		t.Fatalf("routes %v: want %s into %s", got, inet, labkit.TunnelName)
	}
	if _, err := r.Ping(ctx, topo.Host, internet, 2); err != nil {
		t.Fatal(err)
	}
	stream, err := labkit.StartStream(topo.Lab, topo.Host, topo.Internet, internet, tunStreamPPS)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	writeTunnelConfig(t, topo, config("[10.0.0.0/8]", "[192.0.2.0/24, "+inet+"]"))
	mon := startRouteMonitor(t, topo)
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, ctx, cli, "generation 2", func(st labkit.Status) bool {
		return st.Daemon != nil && st.Daemon.Generation == 2
	})
	events := mon.stop()
	t.Logf("route events during the reload:\n%s", strings.Join(events, "\n"))
	// Timing-independent: the kernel saw the prefix deleted (from the
	// first tunnel) rather than replaced (into the second).
	for _, e := range events {
		if strings.HasPrefix(e, "Deleted "+inet+" ") {
			t.Errorf("route event %q: %s was without a route until the second tunnel added it; RouteReplace moves it in one step", e, inet)
		}
	}
	if st.Daemon.LastReloadError != "" || st.Daemon.Errors != 0 {
		t.Errorf("daemon status after the reload: %+v", st.Daemon)
	}
	want := []string{"10.0.0.0/8 " + labkit.TunnelName, "192.0.2.0/24 " + second, inet + " " + second}
	slices.Sort(want)
	if got := tunnelRoutes(t, ctx, r, topo.Router); !slices.Equal(got, want) {
		t.Errorf("routes after the reload: %v, want %v", got, want)
	}
	time.Sleep(time.Second)
	res, err := stream.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("UDP stream host -> %s while %s moved from %s to %s: %s", internet, inet, labkit.TunnelName, second, res)
	if res.Sent == 0 || res.Lost != 0 {
		t.Errorf("stream lost %d of %d datagrams (%.0f ms without a route) while the prefix moved between tunnels",
			res.Lost, res.Sent, float64(res.Lost)*1000/tunStreamPPS)
	}
	checkAFTR(t, topo)
	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// tcAttached says whether a tunnel's encapsulating program is attached in
// the TC mode of the running subtest (forEachTCMode).
func tcAttached(tun labkit.TunnelStatus) bool {
	return tun.TCProgram != 0 && tun.TCMode == tcMode() && (tun.TCMode != "tcx" || tun.TCLink != 0)
}

// pinnedLinks returns the BPF links pinned under bpffs/links, by id, with
// the pin's name: every XDP and TCX link the daemon made. The pins of
// clsact filters' programs are not links: they are counted in programs;
// the records of clsact qdiscs (directories) are skipped.
func pinnedLinks(t *testing.T, ctx context.Context, r labkit.Runner, bpffs string) (out map[uint32]string, programs int) {
	t.Helper()
	pins, err := filepath.Glob(filepath.Join(bpffs, "links", "*"))
	if err != nil {
		t.Fatal(err)
	}
	out = map[uint32]string{}
	for _, p := range pins {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			continue // links/qdisc_<ifindex>: xdprouter added a clsact qdisc
		}
		if _, err := (labkit.Runner{}).Run(ctx, nil, "bpftool", "prog", "show", "pinned", p); err == nil {
			programs++
			continue
		}
		res := mustRun(t, ctx, labkit.Runner{}, "bpftool", "-j", "link", "show", "pinned", p)
		var l bpfLink
		if err := json.Unmarshal([]byte(res.Stdout), &l); err != nil {
			t.Fatalf("decode bpftool link show pinned %s: %v\n%s", p, err, res.Stdout)
		}
		out[l.ID] = fmt.Sprintf("%s (type %v, prog %d)", filepath.Base(p), l.Type, l.ProgID)
	}
	return out, programs
}

// TestDaemonTunnelDetachOnExit: a daemon with --detach-on-exit programs a
// fixed-IPv4 + NAT44 tunnel; traffic passes; SIGTERM removes everything:
// pins and links, the tunnel netdev, its routes, the nftables table and
// the config's LAN address.
func TestDaemonTunnelDetachOnExit(t *testing.T) { forEachTCMode(t, testDaemonTunnelDetachOnExit) }

func testDaemonTunnelDetachOnExit(t *testing.T) {
	topo, cli, ctx := newDaemonTunnelLab(t)
	r := cli.Runner
	internet := labkit.Internet4.Addr()
	netdevs := func() []string {
		res := mustRun(t, ctx, r, netlab.InNS(topo.Router, "ip", "-o", "link", "show")...)
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
			if f := strings.Fields(l); len(f) > 1 {
				names = append(names, strings.Split(strings.TrimSuffix(f[1], ":"), "@")[0])
			}
		}
		return names
	}
	devsBefore := netdevs()

	cfg := writeTunnelConfig(t, topo, tunnelConfig(fmt.Sprintf("    ipv4-address: %s\n    nat44: true\n", labkit.FixedIPv4)))
	d := startDaemon(t, ctx, cli, cfg, "--detach-on-exit")

	st := mustStatus(t, ctx, cli)
	tun := mustTunnel(t, st, labkit.TunnelName)
	if !tun.Present || !tun.NAT44 || !tcAttached(tun) {
		t.Fatalf("tunnel status %+v: want present, nat44, with a TC program (%s)", tun, tcMode())
	}
	links, programs := pinnedLinks(t, ctx, r, topo.BPFFS)
	t.Logf("links pinned by the daemon: %v, and %d clsact programs", links, programs)
	var want []uint32
	if tun.TCLink != 0 {
		want = append(want, tun.TCLink)
	}
	for _, dev := range []string{labkit.TunLANIf, labkit.TunWANIf} {
		want = append(want, mustIface(t, st, dev).LinkID)
	}
	for _, id := range want {
		if _, ok := links[id]; !ok {
			t.Errorf("link %d from status is not pinned under %s", id, topo.BPFFS)
		}
	}
	// XDP on lan0 and wan0, TC egress on the tunnel, TC ingress on wan0
	// (links with TCX, programs with clsact).
	if len(links)+programs < 4 {
		t.Errorf("%d pinned links and %d programs, want at least 4 (xdp lan0, xdp wan0, tc tunnel egress, tc wan0 ingress)", len(links), programs)
	}
	if got := tunnelRoutes(t, ctx, r, topo.Router); !slices.Equal(got, []string{"0.0.0.0/0 " + labkit.TunnelName}) {
		t.Errorf("routes with proto %s: %v, want the default into %s", tunRouteProto, got, labkit.TunnelName)
	}
	if res := mustRun(t, ctx, r, netlab.InNS(topo.Router, "nft", "list", "table", "ip", "xdprouter")...); !strings.Contains(res.Stdout, "snat to "+labkit.FixedIPv4Str) {
		t.Fatalf("nftables table ip xdprouter has no snat to %s:\n%s", labkit.FixedIPv4, res.Stdout)
	}

	before := mustCounters(t, ctx, cli)
	if _, err := r.Ping(ctx, topo.Host, internet, 3); err != nil {
		t.Fatalf("ping the internet host through the NAT44 tunnel: %v", err)
	}
	delta := mustCounters(t, ctx, cli).Sub(before)
	t.Logf("counters during the ping: %s", delta)
	// The daemon attaches gated: ICMP is the kernel's before the tunnel
	// is looked up (pass_ct_proto), without the gate pass_tun_nat44.
	if toKernel := delta["pass_tun_nat44"].Packets + delta["pass_ct_proto"].Packets; toKernel < 3 || delta["tc_encap"].Packets < 3 {
		t.Errorf("pass_tun_nat44 +%d, pass_ct_proto +%d, tc_encap +%d: want >= 3 to the kernel and >= 3 encapsulated (the echo requests, masqueraded in the slow path)",
			delta["pass_tun_nat44"].Packets, delta["pass_ct_proto"].Packets, delta["tc_encap"].Packets)
	}
	if s := checkAFTR(t, topo); !slices.Equal(s.InnerSources, []string{labkit.FixedIPv4Str}) {
		t.Errorf("inner IPv4 sources the AFTR saw: %v, want only %s (masqueraded)", s.InnerSources, labkit.FixedIPv4)
	}

	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Log(), "detached: removed what the config put on the system") {
		t.Errorf("no detach message in the daemon log")
	}
	if left := leftovers(t, topo.BPFFS); len(left) > 0 {
		t.Errorf("pins left behind: %v", left)
	}
	if isBPFFSMount(t, topo.BPFFS) {
		t.Errorf("%s is still a bpffs mount", topo.BPFFS)
	}
	for _, l := range bpfLinks(t, ctx, labkit.Runner{}) {
		if what, ok := links[l.ID]; ok {
			t.Errorf("bpftool still lists link %d (%s)", l.ID, what)
		}
	}
	for _, dev := range []string{labkit.TunLANIf, labkit.TunWANIf} {
		if xdpProgOn(t, ctx, r, topo.Router, dev) {
			t.Errorf("%s still has an XDP program", dev)
		}
		// With clsact, the qdisc xdprouter added goes with its filters.
		checkNoClsact(t, ctx, r, topo.Router, dev)
	}
	if res, err := r.InNS(ctx, topo.Router, "ip", "link", "show", labkit.TunnelName); err == nil {
		t.Errorf("tunnel netdev left behind:\n%s", res.Stdout)
	}
	if after := netdevs(); !slices.Equal(after, devsBefore) {
		t.Errorf("netdevs before the daemon %v, after it %v", devsBefore, after)
	}
	if got := tunnelRoutes(t, ctx, r, topo.Router); len(got) > 0 {
		t.Errorf("routes with proto %s left behind: %v", tunRouteProto, got)
	}
	if res := mustRun(t, ctx, r, netlab.InNS(topo.Router, "nft", "list", "tables")...); strings.Contains(res.Stdout, "xdprouter") {
		t.Errorf("nftables table left behind:\n%s", res.Stdout)
	}
	if res := mustRun(t, ctx, r, netlab.InNS(topo.Router, "ip", "-4", "addr", "show", "dev", labkit.TunLANIf)...); strings.Contains(res.Stdout, labkit.TunRouterLAN4.String()) {
		t.Errorf("the config's lan[0].ipv4 %s is still on %s:\n%s", labkit.TunRouterLAN4, labkit.TunLANIf, res.Stdout)
	}
	if _, err := os.Stat(cli.Socket); err == nil {
		t.Errorf("socket %s left behind", cli.Socket)
	}
	res, _ := cli.Run(ctx, "status")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "nothing is attached") {
		t.Errorf("status after exit: exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
}
