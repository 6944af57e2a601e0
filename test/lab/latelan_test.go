package lab

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// lateLAN is the LAN interface the config names before it exists.
const lateLAN = "lan9"

// Issue 13 item 7: the daemon starts with a LAN interface that does not
// exist yet (a late USB NIC, a VLAN made later), says it waits for it,
// does everything else (WAN address, delegated prefix, the other LAN, the
// tunnel) and follows a WAN renumbering meanwhile; the interface appears
// and is attached, addressed and advertised to within moments (the
// daemon's netlink watcher), without a signal. Before, `run` exited at
// start ("lan[1]: ... no such device").
func TestIPoELateLANInterface(t *testing.T) {
	needRoot(t)
	needISP(t, "radvd", "kea-dhcp6")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
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
	cli := labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: topo.Router, BPFFS: topo.BPFFS,
		Socket: filepath.Join(topo.Lab.RunDir(), "xdprouter.sock")}
	cfg := topo.Config()
	cfg = strings.Replace(cfg, "tunnels:\n", "  - interface: "+lateLAN+"\n    sla-id: 2\n    ipv4: 192.168.9.1/24\ntunnels:\n", 1)
	path := filepath.Join(topo.Lab.RunDir(), "late.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &ipoeLab{topo: topo, cli: cli}
	l.d = startDaemon(t, ctx, cli, path, "--state-dir", filepath.Join(topo.Lab.RunDir(), "state"), "--detach-on-exit")

	// The daemon's own view, with what the lab's Status type leaves out.
	type waiting struct {
		Daemon struct {
			Waiting           []string `json:"waiting"`
			WaitingInterfaces []string `json:"waiting_interfaces"`
			Tasks             map[string]json.RawMessage
		} `json:"daemon"`
	}
	raw := func() waiting {
		t.Helper()
		res, err := cli.WithLog(nil).Run(ctx, "status", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var w waiting
		if err := json.Unmarshal([]byte(res.Stdout), &w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	feed := func(p netip.Prefix) string { return strings.TrimSuffix(p.Addr().String(), "::") + "::feed" }
	l.waitStatus(t, ctx, "WAN, delegated prefix, lan0 and the tunnel with "+lateLAN+" missing", 30*time.Second, func(d labkit.DaemonStatus) bool {
		st, err := cli.Status(ctx)
		return wanAddress(d) == feed(labkit.IPoEWAN1)+"/64" && len(d.IPv6.Delegated) == 1 && lanPrefix(d) != "" &&
			err == nil && len(st.Tunnels) == 1 && st.Tunnels[0].Local == feed(labkit.IPoEWAN1)
	})
	w := raw()
	if !slices.Equal(w.Daemon.WaitingInterfaces, []string{lateLAN}) ||
		!slices.ContainsFunc(w.Daemon.Waiting, func(s string) bool { return strings.Contains(s, "waiting for interface "+lateLAN) }) {
		t.Errorf("status waiting %q (interfaces %v), want %s named", w.Daemon.Waiting, w.Daemon.WaitingInterfaces, lateLAN)
	}
	res, err := cli.WithLog(nil).Run(ctx, "status")
	if err != nil || !strings.Contains(res.Stdout, "waiting: lan[1]: waiting for interface "+lateLAN) {
		t.Errorf("status text does not say it waits for %s (%v):\n%s", lateLAN, err, res.Stdout)
	}

	// The WAN renumbers meanwhile: followed.
	if err := topo.Renumber(labkit.IPoEWAN2, labkit.IPoEWAN1, labkit.IPoEPool2); err != nil {
		t.Fatal(err)
	}
	l.waitStatus(t, ctx, "the WAN renumbering applied with "+lateLAN+" missing", 15*time.Second, func(d labkit.DaemonStatus) bool {
		return wanAddress(d) == feed(labkit.IPoEWAN2)+"/64"
	})

	// The interface appears.
	if _, err := topo.Lab.Exec(topo.Router, "ip", "link", "add", lateLAN, "type", "veth", "peer", "name", lateLAN+"p"); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{lateLAN, lateLAN + "p"} {
		if _, err := topo.Lab.Exec(topo.Router, "ip", "link", "set", dev, "up"); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	took := l.waitStatus(t, ctx, lateLAN+" attached and addressed", 10*time.Second, func(d labkit.DaemonStatus) bool {
		st, err := cli.Status(ctx)
		if err != nil || !slices.ContainsFunc(st.Interfaces, func(i labkit.InterfaceStatus) bool { return i.Name == lateLAN && i.Present }) {
			return false
		}
		for _, lan := range d.IPv6.LANs {
			if lan.Interface == lateLAN && lan.Address.Address != "" {
				out, _ := topo.Lab.Exec(topo.Router, "ip", "-6", "addr", "show", "dev", lateLAN)
				return strings.Contains(out, lan.Address.Address)
			}
		}
		return false
	})
	t.Logf("%s attached %s after it appeared", lateLAN, took)
	if took > 5*time.Second {
		t.Errorf("%s attached %s after it appeared (the watcher should ask at once)", lateLAN, time.Since(start))
	}
	out, _ := topo.Lab.Exec(topo.Router, "ip", "-4", "addr", "show", "dev", lateLAN)
	if !strings.Contains(out, "192.168.9.1/24") {
		t.Errorf("%s IPv4 addresses:\n%s", lateLAN, out)
	}
	if w := raw(); len(w.Daemon.WaitingInterfaces) != 0 {
		t.Errorf("still waiting for %v", w.Daemon.WaitingInterfaces)
	}
	if st, _ := cli.Status(ctx); st.Daemon == nil || st.Daemon.Errors != 0 {
		t.Errorf("reconcile errors: %+v", st.Daemon)
	}
}
