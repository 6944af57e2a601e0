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

	"github.com/xdprouter/xdprouter/test/labkit"
)

// ipoeLab is the IPoE topology with the daemon running on the router.
type ipoeLab struct {
	topo *labkit.IPoETopology
	cli  labkit.CLI
	d    *labkit.Daemon
	args []string // the daemon's command line after `run`
}

func newIPoELab(t *testing.T, ctx context.Context) *ipoeLab {
	t.Helper()
	topo, err := labkit.NewIPoETopology()
	if err != nil {
		t.Fatal(err)
	}
	labkit.CloseAtEnd(t, topo)
	root, err := labkit.FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.StartAFTR(ctx, root); err != nil {
		t.Fatal(err)
	}
	if err := topo.QuietISPGRO(ctx, xdprouterBin); err != nil {
		t.Fatal(err)
	}
	cli := labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: topo.Router, BPFFS: topo.BPFFS,
		Socket: filepath.Join(topo.Lab.RunDir(), "xdprouter.sock")}
	cfg := filepath.Join(topo.Lab.RunDir(), "ipoe.yaml")
	if err := os.WriteFile(cfg, []byte(topo.Config()), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &ipoeLab{topo: topo, cli: cli, args: []string{"--state-dir", filepath.Join(topo.Lab.RunDir(), "state"), "--detach-on-exit"}}
	l.d = startDaemon(t, ctx, cli, cfg, l.args...)
	l.args = append([]string{cfg}, l.args...)
	return l
}

// waitStatus polls the daemon's status until ok accepts it.
func (l *ipoeLab) waitStatus(t *testing.T, ctx context.Context, what string, timeout time.Duration, ok func(labkit.DaemonStatus) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last labkit.Status
	for time.Since(start) < timeout {
		st, err := l.cli.Status(ctx)
		if err == nil && st.Daemon != nil && ok(*st.Daemon) {
			return time.Since(start)
		}
		last = st
		time.Sleep(50 * time.Millisecond)
	}
	js, _ := json.MarshalIndent(last.Daemon, "", "  ")
	t.Fatalf("%s: not within %s; last status:\n%s\ndaemon log:\n%s", what, timeout, js, l.d.Log())
	return 0
}

func lanPrefix(d labkit.DaemonStatus) string {
	if d.IPv6 == nil || len(d.IPv6.LANs) == 0 {
		return ""
	}
	return d.IPv6.LANs[0].Prefix.Prefix
}

func wanAddress(d labkit.DaemonStatus) string {
	if d.IPv6 == nil {
		return ""
	}
	return d.IPv6.WANAddress.Address
}

// pdStats is the part of the DHCPv6-PD client's counters the test reads.
type pdStats struct {
	State    string            `json:"state"`
	Renewed  int               `json:"renewed"`
	Rebound  int               `json:"rebound"`
	Sent     map[string]uint64 `json:"sent"`
	Received map[string]uint64 `json:"received"`
}

func (l *ipoeLab) pd(t *testing.T, ctx context.Context) pdStats {
	t.Helper()
	st, err := l.cli.Status(ctx)
	if err != nil || st.Daemon == nil {
		t.Fatalf("status: %v", err)
	}
	var s pdStats
	if err := json.Unmarshal(st.Daemon.Tasks["dhcpv6-pd"], &s); err != nil {
		t.Fatalf("dhcpv6-pd task stats %s: %v", st.Daemon.Tasks["dhcpv6-pd"], err)
	}
	return s
}

// hostAddrs are the LAN host's global IPv6 addresses with their flags.
func (l *ipoeLab) hostAddrs(t *testing.T) string {
	t.Helper()
	out, err := l.topo.Lab.Exec(l.topo.Host, "ip", "-6", "addr", "show", "dev", labkit.TunHostIf, "scope", "global")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitHost waits until the host's addresses match re.
func (l *ipoeLab) waitHost(t *testing.T, what string, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := l.hostAddrs(t)
		if m := re.FindStringSubmatch(out); m != nil {
			return m[len(m)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("LAN host: %s not within %s:\n%s", what, timeout, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The whole IPoE story against a real radvd and kea-dhcp6-server: the
// router learns its WAN address, default route and a delegated prefix,
// configures the LAN host, reaches the IPv6 internet and the IPv4 one
// through a fixed-IPv4 tunnel whose AFTR and update server are DNS names;
// renews, survives a kea restart, follows a renumbering, and drops the
// default route when the ISP's router lifetime goes to 0.
func TestIPoE(t *testing.T) {
	needRoot(t)
	needISP(t, "radvd", "kea-dhcp6")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := newIPoELab(t, ctx)
	topo, lab := l.topo, l.topo.Lab
	wan1 := netip.PrefixFrom(labkit.IPoEWAN1.Addr(), 64).Addr().String()
	wan1 = strings.TrimSuffix(wan1, "::") + "::feed/64"

	// 1. RA and PD learned: WAN address prefix::feed, a delegated /56,
	// the LAN /64 = the /56 + sla-id 1.
	took := l.waitStatus(t, ctx, "WAN address and delegated prefix", 30*time.Second, func(d labkit.DaemonStatus) bool {
		return wanAddress(d) == wan1 && d.IPv6.Gateway != "" && len(d.IPv6.Delegated) == 1 && lanPrefix(d) != ""
	})
	st, _ := l.cli.Status(ctx)
	d := *st.Daemon
	del := netip.MustParsePrefix(d.IPv6.Delegated[0].Prefix)
	lan := netip.MustParsePrefix(lanPrefix(d))
	t.Logf("learned in %s: WAN %s via %s, delegated %s, LAN %s", took, wanAddress(d), d.IPv6.Gateway, del, lan)
	if del.Bits() != 56 || !labkit.IPoEPool1.Contains(del.Addr()) || lan.Bits() != 64 || !del.Contains(lan.Addr()) {
		t.Fatalf("delegated %s / LAN %s: want a /56 from %s and its sla-id 1 /64", del, lan, labkit.IPoEPool1)
	}
	if b := lan.Addr().As16(); b[7] != 1 {
		t.Errorf("LAN prefix %s is not sla-id 1 of %s", lan, del)
	}
	if len(d.IPv6.DNS) == 0 || d.IPv6.DNS[0].Addr != labkit.IPoEDNS.String() {
		t.Errorf("DNS servers %+v: want %s from the RA and DHCPv6", d.IPv6.DNS, labkit.IPoEDNS)
	}
	route, _ := lab.Exec(topo.Router, "ip", "-6", "route", "show", "default")
	if !strings.Contains(route, "proto 200") {
		t.Errorf("router's default route %q: want xdprouter's (proto 200), forwarding=1 makes the kernel ignore RAs", route)
	}
	if err := topo.RouteDelegated(); err != nil {
		t.Fatal(err)
	}

	// 2. The LAN host configures itself from xdprouter's RA and reaches
	// the IPv6 internet through the router.
	hostRE := regexp.MustCompile(`inet6 (` + regexp.QuoteMeta(strings.TrimSuffix(lan.Addr().String(), "::")) + `:[0-9a-f:]+)/64 scope global (?:dynamic|mngtmpaddr)`)
	hostAddr := l.waitHost(t, "a SLAAC address in "+lan.String(), hostRE, 20*time.Second)
	t.Logf("LAN host address %s", hostAddr)
	if _, err := l.cli.Runner.Ping(ctx, topo.Host, labkit.Internet6.Addr(), 3); err != nil {
		t.Fatalf("LAN host -> IPv6 internet: %v", err)
	}

	// 3. The tunnel: local = WAN address, remote = the AFTR's name as
	// resolved through the learned DNS server; provisioning requested from
	// the local address with the credentials; IPv4 flows.
	l.waitStatus(t, ctx, "tunnel programmed", 20*time.Second, func(labkit.DaemonStatus) bool {
		st, err := l.cli.Status(ctx)
		return err == nil && len(st.Tunnels) == 1 && st.Tunnels[0].Local+"/64" == wan1 && st.Tunnels[0].Remote == labkit.AFTR6.String()
	})
	waitProvisioned(t, topo, strings.TrimSuffix(wan1, "/64"))
	if _, err := l.cli.Runner.Ping(ctx, topo.Host, labkit.Internet4.Addr(), 3); err != nil {
		t.Fatalf("LAN host -> IPv4 internet through the tunnel: %v", err)
	}

	// 4. Renew observed, then kea killed and restarted while a stream
	// runs from the LAN to the IPv6 internet: nothing lost, binding kept.
	deadline := time.Now().Add(15 * time.Second)
	for l.pd(t, ctx).Renewed == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no Renew within 15 s (T1 is 4 s): %+v", l.pd(t, ctx))
		}
		time.Sleep(200 * time.Millisecond)
	}
	stream, err := labkit.StartStream(lab, topo.Host, topo.Internet, labkit.Internet6.Addr(), 500)
	if err != nil {
		t.Fatal(err)
	}
	topo.Kea.Kill()
	time.Sleep(3 * time.Second)
	if err := topo.Kea.Restart(); err != nil {
		t.Fatal(err)
	}
	before := l.pd(t, ctx)
	deadline = time.Now().Add(20 * time.Second)
	for p := l.pd(t, ctx); p.Renewed+p.Rebound <= before.Renewed+before.Rebound; p = l.pd(t, ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("no Renew/Rebind after kea's restart: %+v", p)
		}
		time.Sleep(200 * time.Millisecond)
	}
	res, err := stream.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stream across kea's restart: %s", res)
	if res.Lost != 0 || res.Received == 0 {
		t.Errorf("while kea restarted: %s", res)
	}
	st, _ = l.cli.Status(ctx)
	if got := st.Daemon.IPv6.Delegated; len(got) != 1 || got[0].Prefix != del.String() {
		t.Errorf("after kea's restart the delegated prefix is %+v, want %s kept", got, del)
	}

	// kill -9 and a restart of the daemon under the stream: the new one
	// starts from what the old one learned, so nothing that depends on it
	// (default route, tunnel, LAN prefix and RAs) goes away meanwhile.
	stream, err = labkit.StartStream(lab, topo.Host, topo.Internet, labkit.Internet6.Addr(), 500)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	l.d.Kill()
	l.d = startDaemon(t, ctx, l.cli, l.args[0], l.args[1:]...)
	st, _ = l.cli.Status(ctx)
	if d := st.Daemon; wanAddress(*d) != wan1 || lanPrefix(*d) != lan.String() || d.IPv6.Gateway == "" || len(st.Tunnels) != 1 {
		t.Errorf("right after the restart: WAN %q LAN %q gateway %q tunnels %+v", wanAddress(*d), lanPrefix(*d), d.IPv6.Gateway, st.Tunnels)
	}
	if route, _ := lab.Exec(topo.Router, "ip", "-6", "route", "show", "default", "proto", "200"); strings.TrimSpace(route) == "" {
		t.Error("no default route right after the restart")
	}
	time.Sleep(time.Second)
	res, err = stream.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stream across kill -9 and restart of the daemon: %s", res)
	if res.Lost != 0 || res.Received == 0 {
		t.Errorf("across the daemon's restart: %s", res)
	}
	if _, err := l.cli.Runner.Ping(ctx, topo.Host, labkit.Internet4.Addr(), 2); err != nil {
		t.Errorf("IPv4 through the tunnel after the daemon's restart: %v", err)
	}

	// 5. Renumbering: radvd advertises the new /64 (old one lifetime 0),
	// kea delegates from a new pool. The WAN side (address, tunnel local,
	// provisioning) follows the RA; the LAN follows the Renew's reply; the
	// old LAN prefix stays, deprecated.
	wan2 := strings.TrimSuffix(labkit.IPoEWAN2.Addr().String(), "::") + "::feed/64"
	renumbered := time.Now()
	if err := topo.Renumber(labkit.IPoEWAN2, labkit.IPoEWAN1, labkit.IPoEPool2); err != nil {
		t.Fatal(err)
	}
	took = l.waitStatus(t, ctx, "WAN renumbered", 5*time.Second, func(d labkit.DaemonStatus) bool { return wanAddress(d) == wan2 })
	t.Logf("new WAN address %s in force %s after radvd's reload", wan2, took)
	if took > 2*time.Second {
		t.Errorf("WAN renumbering took %s, want <= 2 s", took)
	}
	st, _ = l.cli.Status(ctx)
	if len(st.Tunnels) != 1 || st.Tunnels[0].Local+"/64" != wan2 {
		t.Errorf("tunnel after renumbering: %+v, want local %s", st.Tunnels, wan2)
	}
	l.waitStatus(t, ctx, "LAN prefix from the new pool", 20*time.Second, func(d labkit.DaemonStatus) bool {
		p, err := netip.ParsePrefix(lanPrefix(d))
		return err == nil && labkit.IPoEPool2.Contains(p.Addr())
	})
	t.Logf("LAN renumbered %s after the ISP's change (T1 is 4 s)", time.Since(renumbered).Round(time.Millisecond))
	st, _ = l.cli.Status(ctx)
	d = *st.Daemon
	lan2 := netip.MustParsePrefix(lanPrefix(d))
	if len(d.IPv6.LANs[0].Retired) != 1 || d.IPv6.LANs[0].Retired[0].Prefix != lan.String() {
		t.Errorf("retired LAN prefixes %+v, want %s", d.IPv6.LANs[0].Retired, lan)
	}
	if err := topo.RouteDelegated(); err != nil {
		t.Fatal(err)
	}
	newRE := regexp.MustCompile(`inet6 (` + regexp.QuoteMeta(strings.TrimSuffix(lan2.Addr().String(), "::")) + `:[0-9a-f:]+)/64 scope global (?:dynamic|mngtmpaddr)`)
	l.waitHost(t, "a SLAAC address in the new "+lan2.String(), newRE, 10*time.Second)
	oldRE := regexp.MustCompile(regexp.QuoteMeta(hostAddr) + `/64 scope global deprecated`)
	l.waitHost(t, "the old address deprecated", oldRE, 10*time.Second)
	if _, err := l.cli.Runner.Ping(ctx, topo.Host, labkit.Internet6.Addr(), 3); err != nil {
		t.Fatalf("LAN host -> IPv6 internet after renumbering: %v", err)
	}
	waitProvisioned(t, topo, strings.TrimSuffix(wan2, "/64"))
	if _, err := l.cli.Runner.Ping(ctx, topo.Host, labkit.Internet4.Addr(), 3); err != nil {
		t.Fatalf("LAN host -> IPv4 internet after renumbering: %v", err)
	}

	// 6. A short router lifetime (8 s, RAs every 3-4 s): every RA refreshes
	// the default route, which is never missing, whatever the kernel's
	// sysctls (forwarding=1 here: the kernel ignores RAs).
	if err := topo.Radvd.Reload(topo.RadvdConfig(labkit.IPoEWAN2, netip.Prefix{}, 8*time.Second)); err != nil {
		t.Fatal(err)
	}
	missing, checks := 0, 0
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		route, _ := lab.Exec(topo.Router, "ip", "-6", "route", "show", "default", "proto", "200")
		checks++
		if strings.TrimSpace(route) == "" {
			missing++
		}
	}
	t.Logf("router lifetime 8 s: default route present in %d of %d checks over 20 s", checks-missing, checks)
	if missing > 0 {
		t.Errorf("the default route was missing in %d of %d checks while RAs kept coming", missing, checks)
	}

	// 7. Router lifetime 0: the default route goes, on the router and (LAN
	// RAs say router lifetime 0 too) on the host.
	if err := topo.Radvd.Reload(topo.RadvdConfig(labkit.IPoEWAN2, netip.Prefix{}, 0)); err != nil {
		t.Fatal(err)
	}
	l.waitStatus(t, ctx, "default router withdrawn", 10*time.Second, func(d labkit.DaemonStatus) bool { return d.IPv6.Gateway == "" })
	if route, _ := lab.Exec(topo.Router, "ip", "-6", "route", "show", "default"); strings.TrimSpace(route) != "" {
		t.Errorf("router still has a default route: %q", route)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		route, _ := lab.Exec(topo.Host, "ip", "-6", "route", "show", "default")
		if strings.TrimSpace(route) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("LAN host keeps its default route %q after the WAN lost its router", route)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The update server saw the credentials; the daemon's log never did.
	if log := l.d.Log(); strings.Contains(log, labkit.IPoEPassword) {
		t.Errorf("the provisioning password appears in the daemon's log")
	}
}

// waitProvisioned waits until the update server got a request from local
// with the configured credentials.
func waitProvisioned(t *testing.T, topo *labkit.IPoETopology, local string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, r := range topo.Update.Requests() {
			if r.Source.String() == local && r.Username == labkit.IPoEUsername && r.Password == labkit.IPoEPassword {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no provisioning request from %s: %+v", local, topo.Update.Requests())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
