package lab

import (
	"context"
	"fmt"
	"github.com/xdprouter/xdprouter/test/netlab"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// streamPPS is the rate of the sequenced UDP stream that restarts and
// reloads must not disturb: steady, well below what veth and the hosts'
// sockets can take, so that any loss is the router's.
const streamPPS = 5000

func writeConfig(t *testing.T, topo *labkit.Topology, name, yaml string) string {
	t.Helper()
	path := filepath.Join(topo.Lab.RunDir(), name)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startDaemon(t *testing.T, ctx context.Context, cli labkit.CLI, config string, args ...string) *labkit.Daemon {
	t.Helper()
	d, err := cli.StartDaemon(ctx, config, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !d.Exited() {
			d.Kill()
		}
		t.Logf("daemon log (pid %d):\n%s", d.PID(), d.Log())
	})
	return d
}

// startStream warms up the neighbour caches (the first packet to an
// unresolved neighbour waits in the kernel, not in XDP) and starts a
// sequenced UDP stream host-a -> host-b.
func startStream(t *testing.T, ctx context.Context, topo *labkit.Topology, cli labkit.CLI) *labkit.Stream {
	t.Helper()
	if _, err := cli.Runner.Ping(ctx, topo.HostA, labkit.HostB6.Addr(), 2); err != nil {
		t.Fatal(err)
	}
	s, err := labkit.StartStream(topo.Lab, topo.HostA, topo.HostB, labkit.HostB6.Addr(), streamPPS)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stopStream ends the stream and fails the test on any loss.
func stopStream(t *testing.T, s *labkit.Stream) labkit.StreamResult {
	t.Helper()
	res, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("UDP stream host-a -> host-b [%s]: %s", labkit.HostB6.Addr(), res)
	if res.Lost != 0 || res.Sent == 0 {
		t.Errorf("stream lost %d of %d datagrams", res.Lost, res.Sent)
	}
	return res
}

// waitFor polls the daemon's status until ok, for what a signal starts
// asynchronously.
func waitFor(t *testing.T, ctx context.Context, cli labkit.CLI, what string, ok func(labkit.Status) bool) labkit.Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := cli.Status(ctx)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: last status %+v (error %v)", what, st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const labConfig = `# the lab's router: host-a behind to-a, host-b behind to-b
wan:
  interface: to-a
lan:
  - interface: to-b
    sla-id: 1
    ipv4: 198.51.100.1/24
firewall: {mode: "off"}  # this lab sends unsolicited inbound traffic on purpose
`

// TestDaemonHitlessRestart kills the daemon with SIGKILL under a steady
// stream, starts it again and requires that not one datagram was lost and
// that the new daemon adopted the pinned links, programs and counters.
func TestDaemonHitlessRestart(t *testing.T) {
	topo, cli, ctx := newLab(t)
	cfg := writeConfig(t, topo, "config.yaml", labConfig)
	d := startDaemon(t, ctx, cli, cfg)
	before := mustStatus(t, ctx, cli)
	if before.Daemon == nil || before.Daemon.PID != d.PID() {
		t.Fatalf("status does not come from the daemon: %+v", before.Daemon)
	}
	countersBefore, err := cli.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream := startStream(t, ctx, topo, cli)

	time.Sleep(time.Second)
	mustRun(t, ctx, cli.Runner, "kill", "-9", fmt.Sprint(d.PID()))
	d.Kill() // reaps it
	atKill := stream.Received()
	time.Sleep(time.Second)
	if got := stream.Received(); got <= atKill {
		t.Errorf("nothing forwarded while no daemon ran (%d -> %d)", atKill, got)
	}
	// No daemon: status falls back to the pinned state, still attached.
	orphan := mustStatus(t, ctx, cli)
	if orphan.Daemon != nil {
		t.Errorf("status claims a daemon after kill -9: %+v", orphan.Daemon)
	}
	for _, dev := range []string{labkit.RouterIfA, labkit.RouterIfB} {
		if !xdpProgOn(t, ctx, cli.Runner, topo.Router, dev) {
			t.Errorf("%s lost its XDP program when the daemon was killed", dev)
		}
	}

	d2 := startDaemon(t, ctx, cli, cfg)
	time.Sleep(time.Second)
	res := stopStream(t, stream)

	after := mustStatus(t, ctx, cli)
	if after.Daemon == nil || after.Daemon.PID != d2.PID() || after.Daemon.Errors != 0 {
		t.Errorf("status after restart: %+v", after.Daemon)
	}
	for _, dev := range []string{labkit.RouterIfA, labkit.RouterIfB} {
		b, a := mustIface(t, before, dev), mustIface(t, after, dev)
		if a.LinkID != b.LinkID || a.ProgramID != b.ProgramID {
			t.Errorf("%s: link/program %d/%d became %d/%d: the restart re-attached instead of adopting",
				dev, b.LinkID, b.ProgramID, a.LinkID, a.ProgramID)
		}
		if want := "what=\"attach " + dev; !strings.Contains(d2.Log(), want) {
			t.Errorf("new daemon's log has no %s step", want)
		}
	}
	if strings.Contains(d2.Log(), "result=attached") || strings.Contains(d2.Log(), "result=\"replaced program\"") {
		t.Errorf("the new daemon changed the data plane; its log:\n%s", d2.Log())
	}
	if !strings.Contains(d2.Log(), "changed=0") {
		t.Errorf("the new daemon's first pass changed something:\n%s", d2.Log())
	}
	countersAfter, err := cli.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fwd := countersAfter.Sub(countersBefore)["fwd_ipv6"]
	t.Logf("fwd_ipv6 before %d, after %d: +%d packets during the stream (%d datagrams)",
		countersBefore["fwd_ipv6"].Packets, countersAfter["fwd_ipv6"].Packets, fwd.Packets, res.Received)
	if countersAfter["fwd_ipv6"].Packets < countersBefore["fwd_ipv6"].Packets {
		t.Errorf("counters went backwards: the maps were flushed")
	}
	// The stream crosses the router once per datagram, in XDP.
	if fwd.Packets < uint64(res.Received) {
		t.Errorf("fwd_ipv6 grew by %d, less than the %d datagrams: the stream left the fast path", fwd.Packets, res.Received)
	}
	if err := d2.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonStopLeavesForwarding: SIGTERM ends the daemon cleanly and the
// data plane keeps forwarding without it.
func TestDaemonStopLeavesForwarding(t *testing.T) {
	topo, cli, ctx := newLab(t)
	d := startDaemon(t, ctx, cli, writeConfig(t, topo, "config.yaml", labConfig))
	before := mustStatus(t, ctx, cli)
	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Log(), "links and maps stay pinned") {
		t.Errorf("no clean-stop message in the log")
	}
	if _, err := os.Stat(cli.Socket); err == nil {
		t.Errorf("socket %s left behind", cli.Socket)
	}
	counters, err := cli.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Runner.Ping(ctx, topo.HostA, labkit.HostB4.Addr(), 5); err != nil {
		t.Fatal(err)
	}
	// ICMP is never carried in XDP (the conntrack gate leaves it to the
	// kernel): an established UDP flow shows the fast path at work.
	burst := udpBurst(t, topo, labkit.HostB4.Addr(), 500*time.Millisecond)
	after := mustStatus(t, ctx, cli)
	if after.Daemon != nil {
		t.Errorf("status claims a daemon: %+v", after.Daemon)
	}
	for _, dev := range []string{labkit.RouterIfA, labkit.RouterIfB} {
		if mustIface(t, after, dev).LinkID != mustIface(t, before, dev).LinkID {
			t.Errorf("%s: link changed over the stop", dev)
		}
	}
	now, err := cli.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d4 := now.Sub(counters)
	t.Logf("counters without the daemon: %s", d4)
	if got := d4["pass_ct_proto"].Packets; got < 10 {
		t.Errorf("after the daemon stopped, the gate passed %d packets of 5 pings (10 packets) to the kernel", got)
	}
	if fwd := d4["fwd_ipv4"].Packets; fwd < uint64(burst.Received) {
		t.Errorf("after the daemon stopped, XDP forwarded %d IPv4 packets of %d datagrams of an established UDP flow", fwd, burst.Received)
	}
}

// udpBurst sends an established sequenced UDP stream (see
// labkit.StartStream) host-a -> dst for d and requires that it lost
// nothing: the traffic a test of the fast path counts in fwd_*.
func udpBurst(t *testing.T, topo *labkit.Topology, dst netip.Addr, d time.Duration) labkit.StreamResult {
	t.Helper()
	s, err := labkit.StartStream(topo.Lab, topo.HostA, topo.HostB, dst, streamPPS)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	res, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("UDP stream host-a -> host-b [%s]: %s", dst, res)
	if res.Lost != 0 || res.Sent == 0 {
		t.Errorf("stream lost %d of %d datagrams", res.Lost, res.Sent)
	}
	return res
}

// TestDaemonReload changes the configuration under a steady stream: an
// invalid file is rejected by field and changes nothing, a role change
// replaces the program on the same link, dropping an interface detaches it;
// the stream loses nothing throughout.
func TestDaemonReload(t *testing.T) {
	topo, cli, ctx := newLab(t)
	cfg := writeConfig(t, topo, "config.yaml", labConfig)

	// A bad file is refused at start, before anything is touched.
	bad := writeConfig(t, topo, "bad.yaml", "wan: {interface: to-a}\nlan:\n  - interface: to-b\n    sla-id: 70000\n")
	res, _ := cli.Run(ctx, "run", "--config", bad)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "lan[0].sla-id: 70000 is out of range") {
		t.Errorf("run with an invalid config: exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	if xdpProgOn(t, ctx, cli.Runner, topo.Router, labkit.RouterIfA) {
		t.Fatalf("run with an invalid config attached to %s", labkit.RouterIfA)
	}

	d := startDaemon(t, ctx, cli, cfg)
	first := mustStatus(t, ctx, cli)
	stream := startStream(t, ctx, topo, cli)

	t.Run("invalid reload is rejected", func(t *testing.T) {
		cli := cli.WithLog(t)
		writeConfig(t, topo, "config.yaml", "wan: {interface: to-a}\nlan:\n  - interface: to-b\n    sla_id: 1\n")
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		st := waitFor(t, ctx, cli, "the reload to be rejected", func(st labkit.Status) bool {
			return st.Daemon != nil && st.Daemon.LastReloadError != ""
		})
		if !strings.Contains(st.Daemon.LastReloadError, "lan[0].sla_id: unknown key") {
			t.Errorf("reload error %q does not name lan[0].sla_id", st.Daemon.LastReloadError)
		}
		if !strings.Contains(d.Log(), "reload rejected") || !strings.Contains(d.Log(), "lan[0].sla_id: unknown key") {
			t.Errorf("the daemon log does not say why the reload was rejected")
		}
		if st.Daemon.Generation != 1 {
			t.Errorf("generation %d after a rejected reload, want 1", st.Daemon.Generation)
		}
		for _, dev := range []string{labkit.RouterIfA, labkit.RouterIfB} {
			if a, b := mustIface(t, st, dev), mustIface(t, first, dev); a != b {
				t.Errorf("%s changed: %+v -> %+v", dev, b, a)
			}
		}
		mustCLI(t, ctx, cli, "status")
	})

	time.Sleep(500 * time.Millisecond)
	t.Run("role change replaces the program atomically", func(t *testing.T) {
		cli := cli.WithLog(t)
		writeConfig(t, topo, "config.yaml", "lan:\n  - {interface: to-a, sla-id: 1}\n  - {interface: to-b, sla-id: 2, ipv4: 198.51.100.1/24}\n")
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		st := waitFor(t, ctx, cli, "generation 2", func(st labkit.Status) bool {
			return st.Daemon != nil && st.Daemon.Generation == 2
		})
		if st.Daemon.LastReloadError != "" || st.Daemon.Errors != 0 {
			t.Errorf("daemon status %+v", st.Daemon)
		}
		a, was := mustIface(t, st, labkit.RouterIfA), mustIface(t, first, labkit.RouterIfA)
		if a.Role != "lan" {
			t.Errorf("%s role %q, want lan", labkit.RouterIfA, a.Role)
		}
		// The same link with another program: link.Update, no moment
		// without a program.
		if a.LinkID != was.LinkID || a.ProgramID == was.ProgramID {
			t.Errorf("%s link/program %d/%d -> %d/%d, want the same link with a new program",
				labkit.RouterIfA, was.LinkID, was.ProgramID, a.LinkID, a.ProgramID)
		}
		if b := mustIface(t, st, labkit.RouterIfB); b != mustIface(t, first, labkit.RouterIfB) {
			t.Errorf("%s changed though its config did not", labkit.RouterIfB)
		}
		mustCLI(t, ctx, cli, "status")
	})

	time.Sleep(500 * time.Millisecond)
	t.Run("dropping an interface detaches it", func(t *testing.T) {
		cli := cli.WithLog(t)
		writeConfig(t, topo, "config.yaml", "lan:\n  - {interface: to-a, sla-id: 1}\n")
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		st := waitFor(t, ctx, cli, "generation 3", func(st labkit.Status) bool {
			return st.Daemon != nil && st.Daemon.Generation == 3
		})
		if i, ok := st.Interface(labkit.RouterIfB); ok {
			t.Errorf("status still lists %s: %+v", labkit.RouterIfB, i)
		}
		if xdpProgOn(t, ctx, cli.Runner, topo.Router, labkit.RouterIfB) {
			t.Errorf("%s still has an XDP program", labkit.RouterIfB)
		}
		// The address was the lab's before the daemon came: a config
		// dropping it removes it, as the reference says; put it back for the
		// stream's return path.
		mustRun(t, ctx, cli.Runner, netlab.InNS(topo.Router, "ip", "addr", "replace", labkit.RouterB4.String(), "dev", labkit.RouterIfB)...)
	})

	time.Sleep(500 * time.Millisecond)
	stopStream(t, stream)
	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonDetachOnExit: with --detach-on-exit, stopping leaves nothing
// the daemon created: no pins, no bpffs mount, no XDP programs or links,
// no address from the config, no new netdevs, no socket.
func TestDaemonDetachOnExit(t *testing.T) {
	topo, cli, ctx := newLab(t)
	extra := "10.99.0.1/24" // an address only the config gives
	cfg := writeConfig(t, topo, "config.yaml", "wan: {interface: to-b}\nlan:\n  - {interface: to-a, sla-id: 2, ipv4: "+extra+"}\nfirewall: {mode: \"off\"}\n")
	links := func() string {
		return mustRun(t, ctx, cli.Runner, netlab.InNS(topo.Router, "ip", "-o", "link", "show")...).Stdout
	}
	netdevNames := func(out string) []string {
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) > 1 {
				names = append(names, strings.Split(strings.TrimSuffix(f[1], ":"), "@")[0])
			}
		}
		return names
	}
	devsBefore := netdevNames(links())

	d := startDaemon(t, ctx, cli, cfg, "--detach-on-exit")
	st := mustStatus(t, ctx, cli)
	linkIDs := map[uint32]string{}
	for _, i := range st.Interfaces {
		linkIDs[i.LinkID] = i.Name
	}
	if len(linkIDs) != 2 {
		t.Fatalf("want two links, status %+v", st.Interfaces)
	}
	if out := mustRun(t, ctx, cli.Runner, netlab.InNS(topo.Router, "ip", "addr", "show", "dev", labkit.RouterIfA)...).Stdout; !strings.Contains(out, extra) {
		t.Fatalf("the daemon did not add %s:\n%s", extra, out)
	}
	if _, err := cli.Runner.Ping(ctx, topo.HostA, labkit.HostB4.Addr(), 2); err != nil {
		t.Fatal(err)
	}

	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, topo.BPFFS); len(left) > 0 {
		t.Errorf("pins left behind: %v", left)
	}
	if isBPFFSMount(t, topo.BPFFS) {
		t.Errorf("%s is still a bpffs mount", topo.BPFFS)
	}
	for _, dev := range []string{labkit.RouterIfA, labkit.RouterIfB} {
		if xdpProgOn(t, ctx, cli.Runner, topo.Router, dev) {
			t.Errorf("%s still has an XDP program", dev)
		}
	}
	for _, l := range bpfLinks(t, ctx, cli.Runner) {
		if dev, ok := linkIDs[l.ID]; ok {
			t.Errorf("bpftool still lists link %d (was on %s)", l.ID, dev)
		}
	}
	if out := mustRun(t, ctx, cli.Runner, netlab.InNS(topo.Router, "ip", "addr", "show", "dev", labkit.RouterIfA)...).Stdout; strings.Contains(out, extra) {
		t.Errorf("%s still on %s:\n%s", extra, labkit.RouterIfA, out)
	}
	if after := netdevNames(links()); strings.Join(after, ",") != strings.Join(devsBefore, ",") {
		t.Errorf("netdevs before %v, after %v", devsBefore, after)
	}
	if _, err := os.Stat(cli.Socket); err == nil {
		t.Errorf("socket %s left behind", cli.Socket)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(cli.Socket), "*.applied.yaml")); len(left) > 0 {
		t.Errorf("record of the config left behind: %v", left)
	}
	res, _ := cli.Run(ctx, "status")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "nothing is attached") {
		t.Errorf("status after exit: %d %q", res.ExitCode, res.Stderr)
	}
}

// TestDaemonRestartWithNewConfig: a daemon killed with one config and
// started with another (an upgrade that changes the file) adopts what
// both share and removes what only the old one had.
func TestDaemonRestartWithNewConfig(t *testing.T) {
	topo, cli, ctx := newLab(t)
	cfg := writeConfig(t, topo, "config.yaml", labConfig)
	d := startDaemon(t, ctx, cli, cfg)
	before := mustStatus(t, ctx, cli)
	mustRun(t, ctx, cli.Runner, "kill", "-9", fmt.Sprint(d.PID()))
	d.Kill()

	writeConfig(t, topo, "config.yaml", "lan:\n  - {interface: to-a, sla-id: 1}\n  - {interface: to-b, sla-id: 2, ipv4: 198.51.100.1/24}\n")
	d2 := startDaemon(t, ctx, cli, cfg)
	st := mustStatus(t, ctx, cli)
	a, was := mustIface(t, st, labkit.RouterIfA), mustIface(t, before, labkit.RouterIfA)
	if a.Role != "lan" || a.LinkID != was.LinkID {
		t.Errorf("%s after the restart: %+v (before %+v), want role lan on the same link", labkit.RouterIfA, a, was)
	}
	if !strings.Contains(d2.Log(), "adopting the state a previous daemon left") {
		t.Errorf("the new daemon did not read the old one's record")
	}
	if err := d2.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	writeConfig(t, topo, "config.yaml", "lan:\n  - {interface: to-a, sla-id: 1}\n")
	d3 := startDaemon(t, ctx, cli, cfg)
	st = mustStatus(t, ctx, cli)
	if i, ok := st.Interface(labkit.RouterIfB); ok {
		t.Errorf("%s still attached after a restart with a config without it: %+v", labkit.RouterIfB, i)
	}
	if xdpProgOn(t, ctx, cli.Runner, topo.Router, labkit.RouterIfB) {
		t.Errorf("%s still has an XDP program", labkit.RouterIfB)
	}
	mustRun(t, ctx, cli.Runner, netlab.InNS(topo.Router, "ip", "addr", "replace", labkit.RouterB4.String(), "dev", labkit.RouterIfB)...)
	if _, err := cli.Runner.Ping(ctx, topo.HostA, labkit.HostB4.Addr(), 2); err != nil {
		t.Error(err)
	}
	if err := d3.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
