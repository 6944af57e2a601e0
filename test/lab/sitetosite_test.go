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

// TestTunnelSiteToSite: two xdprouter instances as ipip6 peers over an
// IPv6-only link (seed 004), each routing the other site's IPv4 prefix into
// its tunnel. Site A also has a default route into a second tunnel: the
// longer prefix must win.
//
//	host-a 10.10.0.2 — ra (lan 10.10.0.1, wan 2001:db8:a::1)
//	                     ===ipip6===
//	host-b 10.20.0.2 — rb (lan 10.20.0.1, wan 2001:db8:a::2)
func TestTunnelSiteToSite(t *testing.T) { forEachTCMode(t, testTunnelSiteToSite) }

func testTunnelSiteToSite(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	lab := labkit.NewLab(t)
	var err error
	ns := map[string]string{}
	for _, n := range []struct {
		name string
		fwd  bool
	}{{"host-a", false}, {"ra", true}, {"rb", true}, {"host-b", false}} {
		if ns[n.name], err = lab.AddNS(n.name, n.fwd); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range [][4]string{{"host-a", "eth0", "ra", "lan0"}, {"ra", "wan0", "rb", "wan0"}, {"rb", "lan0", "host-b", "eth0"}} {
		if err := lab.Veth(ns[v[0]], v[1], ns[v[2]], v[3]); err != nil {
			t.Fatal(err)
		}
	}
	setup := map[string][][]string{
		"host-a": {{"ethtool", "-K", "eth0", "tx", "off"}, {"ip", "addr", "add", "10.10.0.2/24", "dev", "eth0"}, {"ip", "route", "add", "default", "via", "10.10.0.1"}},
		"host-b": {{"ethtool", "-K", "eth0", "tx", "off"}, {"ip", "addr", "add", "10.20.0.2/24", "dev", "eth0"}, {"ip", "route", "add", "default", "via", "10.20.0.1"}},
		"ra":     {{"ip", "-6", "addr", "add", "2001:db8:a::1/64", "dev", "wan0", "nodad"}},
		"rb":     {{"ip", "-6", "addr", "add", "2001:db8:a::2/64", "dev", "wan0", "nodad"}},
	}
	for name, cmds := range setup {
		if err := lab.MustExec(ns[name], cmds...); err != nil {
			t.Fatal(err)
		}
	}
	configs := map[string]string{
		"ra": `wan: {interface: wan0}
lan: [{interface: lan0, ipv4: 10.10.0.1/24}]
tunnels:
  - {name: to-b, remote: "2001:db8:a::2", local: "2001:db8:a::1", routes: [10.20.0.0/16], mtu: 1452}
  - {name: aftr, remote: "2001:db8:ff::1", local: "2001:db8:a::1", routes: [0.0.0.0/0]}
firewall: {mode: "off"}  # this lab sends unsolicited inbound traffic on purpose
`,
		"rb": `wan: {interface: wan0}
lan: [{interface: lan0, ipv4: 10.20.0.1/24}]
tunnels:
  - {name: to-a, remote: "2001:db8:a::1", local: "2001:db8:a::2", routes: [10.10.0.0/16], mtu: 1452}
firewall: {mode: "off"}  # this lab sends unsolicited inbound traffic on purpose
`,
	}
	cli := map[string]labkit.CLI{}
	for _, r := range []string{"ra", "rb"} {
		cli[r] = labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: ns[r], BPFFS: filepath.Join(lab.RunDir(), r)}
		path := filepath.Join(lab.RunDir(), r+".yaml")
		if err := os.WriteFile(path, []byte(configs[r]), 0o600); err != nil {
			t.Fatal(err)
		}
		mustCLI(t, ctx, cli[r], "apply", "--config", path)
	}
	run := labkit.Runner{Log: t}
	hostA, hostB := netip.MustParseAddr("10.10.0.2"), netip.MustParseAddr("10.20.0.2")
	if _, err := run.Ping(ctx, ns["host-a"], hostB, 3); err != nil {
		t.Fatalf("site A to site B: %v", err)
	}
	if _, err := run.Ping(ctx, ns["host-b"], hostA, 3); err != nil {
		t.Fatalf("site B to site A: %v", err)
	}

	before := map[string]labkit.Counters{"ra": mustCounters(t, ctx, cli["ra"]), "rb": mustCounters(t, ctx, cli["rb"])}
	res, err := labkit.Transfer(ctx, lab, ns["host-a"], ns["host-b"], hostB, bulkSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TCP site A -> site B: %d bytes in %v (%.0f Mbit/s), sha256 %s on both ends; %d segments sent",
		res.Bytes, res.Elapsed.Round(time.Millisecond), res.Throughput(), res.RecvSHA, res.SenderTCP.SegsOut)
	for _, c := range []struct{ router, counter string }{
		{"ra", "tun_encap"}, {"rb", "tun_decap"},
	} {
		d := mustCounters(t, ctx, cli[c.router]).Sub(before[c.router])
		t.Logf("%s during the transfer: %s", c.router, d)
		if want := uint64(res.SenderTCP.SegsOut) * 9 / 10; d[c.counter].Packets < want {
			t.Errorf("%s %s: %d, want >= 90%% of the %d data segments", c.router, c.counter, d[c.counter].Packets, res.SenderTCP.SegsOut)
		}
	}
	// Longest prefix: nothing for 10.20.0.0/16 went into ra's default
	// tunnel, whose remote is unreachable anyway.
	st := mustStatus(t, ctx, cli["ra"])
	if len(st.Tunnels) != 2 {
		t.Errorf("ra status lists %d tunnels, want 2: %+v", len(st.Tunnels), st.Tunnels)
	}
	out := mustRun(t, ctx, run, netlab.InNS(ns["ra"], "ip", "route", "get", "10.20.0.2")...)
	if want := "dev to-b"; !strings.Contains(out.Stdout, want) {
		t.Errorf("ip route get 10.20.0.2 on ra: %q, want %q", out.Stdout, want)
	}
	mustCLI(t, ctx, cli["ra"], "status")
}
