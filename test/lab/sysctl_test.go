package lab

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// TestDaemonSysctls (issue 13 item 11): a router whose kernel does not
// forward (ip_forward=0, all.forwarding=0) and whose ports take RAs. The
// daemon turns forwarding on before it says ready, so traffic between the
// hosts is forwarded (pings: ICMP is the kernel's to forward, not XDP's),
// its LAN port stops taking RAs and its WAN port leaves RAs to the
// daemon; --detach-on-exit puts every value back as it was. Before, the
// daemon said ready and nothing was forwarded (pass_fwd_disabled).
func TestDaemonSysctls(t *testing.T) {
	topo, cli, ctx := newLab(t)
	sysctl := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(mustRun(t, ctx, cli.Runner, netlab.InNS(topo.Router, append([]string{"sysctl", "-n"}, args...)...)...).Stdout)
	}
	set := func(kv string) {
		t.Helper()
		mustRun(t, ctx, cli.Runner, netlab.InNS(topo.Router, "sysctl", "-qw", kv)...)
	}
	// The WAN is to-a, the LAN to-b (labConfig).
	names := []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding",
		"net.ipv6.conf." + labkit.RouterIfA + ".accept_ra", "net.ipv6.conf." + labkit.RouterIfB + ".accept_ra",
		"net.ipv6.conf." + labkit.RouterIfB + ".forwarding"}
	set("net.ipv4.ip_forward=0")
	set("net.ipv6.conf.all.forwarding=0")
	set("net.ipv6.conf." + labkit.RouterIfA + ".accept_ra=2")
	set("net.ipv6.conf." + labkit.RouterIfB + ".accept_ra=1")
	before := map[string]string{}
	for _, n := range names {
		before[n] = sysctl(n)
	}
	t.Logf("before: %v", before)

	cfg := writeConfig(t, topo, "config.yaml", labConfig)
	d := startDaemon(t, ctx, cli, cfg, "--detach-on-exit")
	want := map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1",
		"net.ipv6.conf." + labkit.RouterIfA + ".accept_ra": "0", "net.ipv6.conf." + labkit.RouterIfB + ".accept_ra": "0",
		"net.ipv6.conf." + labkit.RouterIfB + ".forwarding": "1"}
	for n, w := range want {
		if got := sysctl(n); got != w {
			t.Errorf("while running: %s = %s, want %s", n, got, w)
		}
	}
	if _, err := cli.Runner.Ping(ctx, topo.HostA, labkit.HostB6.Addr(), 2); err != nil {
		t.Errorf("IPv6 host-a -> host-b not forwarded: %v", err)
	}
	if _, err := cli.Runner.Ping(ctx, topo.HostA, labkit.HostB4.Addr(), 2); err != nil {
		t.Errorf("IPv4 host-a -> host-b not forwarded: %v", err)
	}
	if !strings.Contains(d.Log(), "sysctl set") || !strings.Contains(d.Log(), "net.ipv6.conf.all.forwarding") {
		t.Errorf("the daemon's log does not say what it set")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(cli.Socket), "*.sysctl.json")); len(left) != 1 {
		t.Errorf("record of the sysctls changed: %v, want one file", left)
	}

	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if got := sysctl(n); got != before[n] {
			t.Errorf("after --detach-on-exit: %s = %s, want %s as before", n, got, before[n])
		}
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(cli.Socket), "*.sysctl.json")); len(left) > 0 {
		t.Errorf("record of the sysctls left behind: %v", left)
	}
}
