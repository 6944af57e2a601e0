package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// Issue 13 item 10: the NDP proxy in prefix mode answers for the whole
// outside prefix, but another node on the WAN link may hold addresses in
// it: the ISP's router its subnet-router anycast address, and any global
// address it configures there. Here the ISP is plain Linux, its kernel the
// other node: it solicits the subnet-router anycast address (the proxy
// must stay silent: it is the link's routers' address), then configures an
// address in the prefix with Duplicate Address Detection on (the proxy
// must not answer the probe, or the kernel gives the address up as a
// duplicate). Meanwhile the LAN host's outside address is answered as
// before.
func TestNDPProxyLeavesWANNodesAlone(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	topo := newNPTLab(t)
	ispTakesXDPFrames(t, topo)
	cli := topo.CLI(xdprouterBin, t)
	r := cli.Runner
	cfg := filepath.Join(t.TempDir(), "xdprouter.yaml")
	if err := os.WriteFile(cfg, []byte(topo.Config("preserve-host")), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, ctx, cli, "apply", "--config", cfg)
	isp := func(argv ...string) string {
		t.Helper()
		return mustRun(t, ctx, r, netlab.InNS(topo.ISP, argv...)...).Stdout
	}

	// The LAN host (2001:db8:bbbb::123 inside) is reachable outside.
	host := netip.MustParseAddr("2001:db8:aaaa::123")
	if _, err := r.Ping(ctx, topo.ISP, host, 1); err != nil {
		t.Fatalf("the LAN host's outside address: %v", err)
	}

	// 1. The subnet-router anycast address: the ISP's kernel solicits it
	// (on-link route, no such address of its own yet); nobody behind the
	// CPE is it, and the proxy must not say otherwise.
	anycast := labkit.NPTOutside.Addr()
	c0 := mustCounters(t, ctx, cli)
	if _, err := r.Ping(ctx, topo.ISP, anycast, 1); err == nil {
		t.Errorf("ping %s was answered", anycast)
	}
	d := mustCounters(t, ctx, cli).Sub(c0)
	t.Logf("soliciting %s: %s", anycast, d)
	if d["pass_ndp_anycast"].Packets == 0 || d.NAsSent() != 0 {
		t.Errorf("soliciting %s: pass_ndp_anycast %d, tx_ndp_na %d: want the solicitations passed, none answered",
			anycast, d["pass_ndp_anycast"].Packets, d.NAsSent())
	}
	if n := isp("ip", "-6", "neigh", "show", anycast.String(), "dev", labkit.ISPIf); strings.Contains(n, "lladdr") {
		t.Errorf("the ISP resolved %s: %s", anycast, n)
	}

	// 2. The ISP's router takes an address in the prefix, with DAD: the
	// kernel's probe (source ::) must go unanswered.
	const ispGlobal = "2001:db8:aaaa::2"
	isp("sysctl", "-qw", "net.ipv6.conf."+labkit.ISPIf+".accept_dad=1", "net.ipv6.conf."+labkit.ISPIf+".dad_transmits=2")
	c1 := mustCounters(t, ctx, cli)
	isp("ip", "-6", "addr", "add", ispGlobal+"/64", "dev", labkit.ISPIf, "noprefixroute")
	state := ""
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(100 * time.Millisecond) {
		out := isp("ip", "-6", "addr", "show", "dev", labkit.ISPIf, "to", ispGlobal+"/128")
		switch {
		case strings.Contains(out, "dadfailed"):
			state = "dadfailed"
		case strings.Contains(out, "tentative"):
			state = "tentative"
			continue
		case strings.Contains(out, ispGlobal):
			state = "valid"
		default:
			state = "gone: " + out
		}
		break
	}
	d = mustCounters(t, ctx, cli).Sub(c1)
	t.Logf("the ISP's DAD for %s: %s; %s", ispGlobal, state, d)
	if state != "valid" {
		t.Errorf("the ISP's address %s after DAD: %s, want it valid (the proxy answered its probe: %d NAs)", ispGlobal, state, d.NAsSent())
	}
	if d["pass_ndp_dad_unowned"].Packets == 0 || d.NAsSent() != 0 {
		t.Errorf("DAD probes passed %d (pass_ndp_dad_unowned), answered %d: want passed, none answered",
			d["pass_ndp_dad_unowned"].Packets, d.NAsSent())
	}

	// The LAN host is still answered for, to a first solicitation too.
	isp("ip", "-6", "neigh", "flush", "dev", labkit.ISPIf)
	if _, err := r.Ping(ctx, topo.ISP, host, 1); err != nil {
		t.Errorf("the LAN host's outside address afterwards: %v", err)
	}
}

// Issue 13 item 10: a static NPT outside prefix that holds the router's
// own WAN address (here the WAN has 2001:db8:aaaa::feed/64, an address a
// router on such a line has, and the LAN host also holds the inside twin,
// 2001:db8:bbbb::feed). `apply` excludes the router's address from
// translation: the ISP's pings to it are the router's to answer, and the
// LAN host sees none of them; a LAN host's outside address still
// translates. With a second router address in the prefix the config is
// refused, naming the field.
func TestStaticNPTRouterReachable(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	topo := newNPTLab(t)
	ispTakesXDPFrames(t, topo)
	cli := topo.CLI(xdprouterBin, t)
	r := cli.Runner
	const (
		routerWAN  = "2001:db8:aaaa::feed"
		insideTwin = "2001:db8:bbbb::feed"
	)
	if err := topo.Lab.MustExec(topo.CPE, []string{"ip", "-6", "addr", "add", routerWAN + "/64", "dev", labkit.CPEWANIf, "nodad"}); err != nil {
		t.Fatal(err)
	}
	if err := topo.Lab.MustExec(topo.Host, []string{"ip", "-6", "addr", "add", insideTwin + "/64", "dev", labkit.HostIf, "nodad"}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "xdprouter.yaml")
	if err := os.WriteFile(cfg, []byte(topo.Config("preserve-host")), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, ctx, cli, "check", "--config", cfg)
	mustCLI(t, ctx, cli, "apply", "--config", cfg)
	res, err := cli.Run(ctx, "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		NPT []struct{ Outside, Exclude string } `json:"npt"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatalf("status --json: %v", err)
	}
	if len(st.NPT) != 1 || st.NPT[0].Exclude != routerWAN {
		t.Errorf("npt in status: %+v, want %s excluded", st.NPT, routerWAN)
	}

	echos := func(ns string) int {
		t.Helper()
		out := mustRun(t, ctx, r, netlab.InNS(ns, "cat", "/proc/net/snmp6")...).Stdout
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "Icmp6InEchos" {
				n, err := strconv.Atoi(f[1])
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatalf("no Icmp6InEchos in %s's /proc/net/snmp6", ns)
		return 0
	}
	h0, c0 := echos(topo.Host), echos(topo.CPE)
	counters0 := mustCounters(t, ctx, cli)
	if _, err := r.Ping(ctx, topo.ISP, netip.MustParseAddr(routerWAN), 3); err != nil {
		t.Fatalf("ping the router's WAN address: %v", err)
	}
	h1, c1 := echos(topo.Host), echos(topo.CPE)
	t.Logf("3 pings to %s: the router got %d echo requests, the LAN host %d; %s", routerWAN, c1-c0, h1-h0,
		mustCounters(t, ctx, cli).Sub(counters0))
	if h1 != h0 || c1-c0 < 3 {
		t.Errorf("pings to the router's WAN address %s: the router got %d echo requests, the LAN host %d: want all the router's",
			routerWAN, c1-c0, h1-h0)
	}
	// Translation goes on for the LAN host's outside address.
	if _, err := r.Ping(ctx, topo.ISP, netip.MustParseAddr("2001:db8:aaaa::123"), 1); err != nil {
		t.Errorf("the LAN host's outside address: %v", err)
	}

	// A second router address in the outside prefix: only one can be
	// kept from translation, so apply refuses, naming the field.
	if err := topo.Lab.MustExec(topo.CPE, []string{"ip", "-6", "addr", "add", "2001:db8:aaaa::1/64", "dev", labkit.CPEWANIf, "nodad"}); err != nil {
		t.Fatal(err)
	}
	res, err = cli.Run(ctx, "apply", "--config", cfg)
	want := fmt.Sprintf("npt[0].outside: %s holds 2 of the router's own addresses on %s", labkit.NPTOutside, labkit.CPEWANIf)
	if err == nil || !strings.Contains(res.Stderr, want) {
		t.Errorf("apply with two router addresses in the outside prefix: err %v, stderr %q, want %q", err, res.Stderr, want)
	}
}

// wanNode is a scripted ISP router and another host on the WAN link, in
// scapy: the router's RA names its global address with the R flag (RFC
// 6275 7.2), and the host solicits addresses in the prefix.
const wanNode = `
import socket, sys
from scapy.all import Ether, IPv6, ICMPv6ND_RA, ICMPv6ND_NS, ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr, sendp

iface, what = sys.argv[1], sys.argv[2]
if what == "ra":
    sendp(Ether(dst="33:33:00:00:00:01") / IPv6(src="fe80::1", dst="ff02::1", hlim=255) /
          ICMPv6ND_RA(routerlifetime=1800) /
          ICMPv6NDOptPrefixInfo(prefix="2001:db8:aaaa::1", prefixlen=64, L=1, A=1, R=1,
                                validlifetime=86400, preferredlifetime=14400),
          iface=iface, verbose=False)
elif what == "ns":
    tgt = sys.argv[3]
    b = socket.inet_pton(socket.AF_INET6, tgt)
    mac = "02:00:00:00:99:99"
    sendp(Ether(src=mac, dst="33:33:ff:%02x:%02x:%02x" % (b[13], b[14], b[15])) /
          IPv6(src="fe80::99", dst="ff02::1:ff%02x:%02x%02x" % (b[13], b[14], b[15]), hlim=255) /
          ICMPv6ND_NS(tgt=tgt) / ICMPv6NDOptSrcLLAddr(lladdr=mac),
          iface=iface, verbose=False)
`

// Issue 13 item 10 against the daemon: the ISP router's RA names its global
// address 2001:db8:aaaa::1 in the WAN prefix with the R flag; the daemon
// proxies that prefix (NPT outside: auto) and leaves the router's address
// to it: another host's solicitation for it goes unanswered, one for a LAN
// host's outside address is answered.
func TestNDPProxyWANRouterAddress(t *testing.T) {
	needRoot(t)
	labkit.NeedScapy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	topo := newNPTLab(t)
	ispTakesXDPFrames(t, topo)
	lab := topo.Lab
	script := filepath.Join(lab.RunDir(), "wan_node.py")
	if err := os.WriteFile(script, []byte(wanNode), 0o600); err != nil {
		t.Fatal(err)
	}
	send := func(args ...string) {
		t.Helper()
		if out, err := lab.Exec(topo.ISP, append([]string{labkit.Python, script, labkit.ISPIf}, args...)...); err != nil {
			t.Fatalf("scapy %v: %v\n%s", args, err, out)
		}
	}
	if err := lab.MustExec(topo.CPE, []string{"ip", "-6", "route", "del", "default"}); err != nil {
		t.Fatal(err)
	}
	cli := topo.CLI(xdprouterBin, t)
	cfg := filepath.Join(lab.RunDir(), "cpe.yaml")
	config := fmt.Sprintf(`wan: {interface: %s, token: "::feed"}
lan: [{interface: %s}]
npt: [{interface: %s, inside: %s, outside: auto, mode: preserve-host}]
ndp-proxy: [{interface: %s, prefixes: [auto]}]
firewall: {mode: "off"}
`, labkit.CPEWANIf, labkit.CPELANIf, labkit.CPEWANIf, labkit.NPTInside, labkit.CPEWANIf)
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &ipoeLab{cli: cli, d: startDaemon(t, ctx, cli, cfg, "--detach-on-exit")}
	send("ra")
	l.waitStatus(t, ctx, "the WAN address from the ISP's RA", 20*time.Second, func(d labkit.DaemonStatus) bool {
		return wanAddress(d) == "2001:db8:aaaa::feed/64"
	})
	type proxyEntry struct {
		Prefix  string   `json:"prefix"`
		Foreign []string `json:"foreign"`
	}
	var proxy []proxyEntry
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		res, err := cli.Run(ctx, "status", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			NDPProxy []proxyEntry `json:"ndp_proxy"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
			t.Fatalf("status --json: %v", err)
		}
		proxy = st.NDPProxy
		if len(proxy) == 1 && slices.Equal(proxy[0].Foreign, []string{"2001:db8:aaaa::1"}) {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Errorf("ndp_proxy in status: %+v, want 2001:db8:aaaa::/64 with the router's 2001:db8:aaaa::1 foreign", proxy)
			break
		}
	}

	c0 := mustCounters(t, ctx, cli)
	send("ns", "2001:db8:aaaa::1")
	c1 := mustCounters(t, ctx, cli)
	send("ns", "2001:db8:aaaa::123")
	c2 := mustCounters(t, ctx, cli)
	d1, d2 := c1.Sub(c0), c2.Sub(c1)
	t.Logf("NS for the router's address: %s; for a LAN host's: %s", d1, d2)
	if d1["pass_ndp_foreign"].Packets != 1 || d1.NAsSent() != 0 {
		t.Errorf("NS for the ISP router's 2001:db8:aaaa::1: %s, want it passed as pass_ndp_foreign, unanswered", d1)
	}
	if d2.NAsSent() != 1 {
		t.Errorf("NS for the LAN host's 2001:db8:aaaa::123: %s, want it answered", d2)
	}
}
