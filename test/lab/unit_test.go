package lab

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// unitCapabilities reads CapabilityBoundingSet= from the shipped unit.
func unitCapabilities(t *testing.T) []string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root, err := labkit.FindModuleRoot(filepath.Dir(file))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "contrib/systemd/xdprouter.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapabilityBoundingSet="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatal("the unit has no CapabilityBoundingSet=")
	return nil
}

// TestDaemonUnitCapabilities runs the daemon with exactly the unit's
// capability bounding set (as systemd would) through start, an address
// change, kill -9 and a restart that must adopt the pinned state: the set
// the unit documents is enough, and the test fails when the unit drops one
// that is needed.
func TestDaemonUnitCapabilities(t *testing.T) {
	topo, cli, ctx := newLab(t)
	caps := unitCapabilities(t)
	set := "-all"
	for _, c := range caps {
		set += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	wrapper := filepath.Join(topo.Lab.RunDir(), "xdprouter-capped")
	script := fmt.Sprintf("#!/bin/sh\nexec setpriv --inh-caps=-all --bounding-set %s %s \"$@\"\n", set, xdprouterBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Logf("unit capabilities %v: running %s", caps, wrapper)
	capped := cli
	capped.Bin = wrapper

	// With fewer capabilities than its parent the daemon cannot tell
	// whether it runs in a throwaway mount namespace (reading the
	// parent's needs ptrace access), so it must refuse to mount a bpffs
	// rather than risk one that dies with it...
	bad := writeConfig(t, topo, "nobpffs.yaml", "lan: [{interface: to-a}]\n")
	res, _ := capped.Run(ctx, "run", "--config", bad)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "unsafe to mount") {
		t.Errorf("capped run without a bpffs: exit %d, stderr %q; want a refusal", res.ExitCode, res.Stderr)
	}
	// ...and under systemd /sys/fs/bpf is mounted already; so it is here.
	if _, err := topo.Lab.BPFFS(filepath.Base(topo.BPFFS)); err != nil {
		t.Fatal(err)
	}

	// The WAN RA tracker and the LAN RA sender open ICMPv6 sockets
	// (CAP_NET_RAW), the DHCPv6-PD client binds port 546
	// (CAP_NET_BIND_SERVICE): with the unit's set none may be refused.
	cfg := writeConfig(t, topo, "config.yaml", "wan: {interface: to-a, dhcpv6-pd: {}}\nlan:\n  - {interface: to-b, sla-id: 1, ipv4: 10.99.0.1/24}\nfirewall: {mode: \"off\"}\n")
	state := filepath.Join(topo.Lab.RunDir(), "state")
	d := startDaemon(t, ctx, capped, cfg, "--state-dir", state)
	time.Sleep(1500 * time.Millisecond)
	for _, refused := range []string{"operation not permitted", "permission denied"} {
		if strings.Contains(d.Log(), refused) {
			t.Errorf("with the unit's capabilities a task was refused (%s):\n%s", refused, d.Log())
		}
	}
	eff := mustRun(t, ctx, cli.Runner, "grep", "CapEff", fmt.Sprintf("/proc/%d/status", d.PID())).Stdout
	t.Logf("daemon %s", strings.TrimSpace(eff))
	before := mustStatus(t, ctx, cli)
	mustRun(t, ctx, cli.Runner, "kill", "-9", fmt.Sprint(d.PID()))
	d.Kill()
	d2 := startDaemon(t, ctx, capped, cfg, "--state-dir", state)
	after := mustStatus(t, ctx, cli)
	for _, dev := range []string{labkit.RouterIfA, labkit.RouterIfB} {
		b, a := mustIface(t, before, dev), mustIface(t, after, dev)
		if a.LinkID != b.LinkID || a.ProgramName != "xdpr_main" {
			t.Errorf("%s after a capped restart: %+v (before %+v)", dev, a, b)
		}
	}
	if !strings.Contains(d2.Log(), "changed=0") {
		t.Errorf("the capped restart did not adopt the state")
	}
	if _, err := cli.Runner.Ping(ctx, topo.HostA, labkit.HostB4.Addr(), 2); err != nil {
		t.Error(err)
	}
	if err := d2.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
