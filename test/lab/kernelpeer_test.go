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

// kernelPeerSize is the TCP payload per direction: enough segments for the
// 90% bound to mean something, small enough for a guest under emulation.
const kernelPeerSize = 4 << 20

// TestTunnelKernelPeer checks xdprouter's ipip6 against Linux's own
// (ip6_tunnel), not against a peer of the project's making: seed 004's
// site-to-site tunnel with the far end built by `ip -6 tunnel add … mode
// ipip6`, as its author built it. Both of the kernel's encodings are
// exchanged: its default, which puts a destination options header with the
// tunnel encapsulation limit (RFC 2473) before the inner packet, and
// `encaplimit none`, which does not. Each way, LAN-to-LAN TCP content is
// verified end to end and xdprouter's counters show XDP encapsulated and
// decapsulated the data (the fast path); the router's own IPv4 goes
// through its tunnel netdev (the TC slow path) to the peer and back.
//
//	host-a 10.10.0.2 — ra (xdprouter; lan 10.10.0.1, wan 2001:db8:a::1)
//	                     ===ipip6===
//	host-b 10.20.0.2 — peer (ip6tnl to-a; lan 10.20.0.1, wan 2001:db8:a::2)
//
// The kernel here may have no ip6_tunnel (the project's test machines do
// not); the test then skips, saying so, and runs in the kernel matrix
// (make test-kernels), whose Debian kernels have it.
func TestTunnelKernelPeer(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lab := labkit.NewLab(t)
	ns := map[string]string{}
	for _, n := range []struct {
		name string
		fwd  bool
	}{{"host-a", false}, {"ra", true}, {"peer", true}, {"host-b", false}} {
		var err error
		if ns[n.name], err = lab.AddNS(n.name, n.fwd); err != nil {
			t.Fatal(err)
		}
	}
	// The kernel's tunnel first: without ip6_tunnel nothing else is worth
	// building.
	run := labkit.Runner{Log: t}
	res, err := run.Run(ctx, nil, netlab.InNS(ns["peer"], "ip", "-6", "tunnel", "add", "to-a", "mode", "ipip6",
		"local", "2001:db8:a::2", "remote", "2001:db8:a::1")...)
	if err != nil {
		if strings.Contains(res.Stderr, "No such device") {
			t.Skipf("this kernel has no ip6_tunnel (ipip6 tunnel devices): %s; the kernel matrix (make test-kernels) runs this test on Debian's kernels", strings.TrimSpace(res.Stderr))
		}
		t.Fatal(err)
	}
	for _, v := range [][4]string{{"host-a", "eth0", "ra", "lan0"}, {"ra", "wan0", "peer", "wan0"}, {"peer", "lan0", "host-b", "eth0"}} {
		if err := lab.Veth(ns[v[0]], v[1], ns[v[2]], v[3]); err != nil {
			t.Fatal(err)
		}
	}
	setup := map[string][][]string{
		"host-a": {{"ethtool", "-K", "eth0", "tx", "off"}, {"ip", "addr", "add", "10.10.0.2/24", "dev", "eth0"}, {"ip", "route", "add", "default", "via", "10.10.0.1"}},
		"host-b": {{"ethtool", "-K", "eth0", "tx", "off"}, {"ip", "addr", "add", "10.20.0.2/24", "dev", "eth0"}, {"ip", "route", "add", "default", "via", "10.20.0.1"}},
		"ra":     {{"ip", "-6", "addr", "add", "2001:db8:a::1/64", "dev", "wan0", "nodad"}},
		"peer": {
			// The far side of XDP's redirect is a veth: it needs its
			// offloads off to hand the kernel complete checksums.
			{"ethtool", "-K", "wan0", "tx", "off"},
			{"ip", "-6", "addr", "add", "2001:db8:a::2/64", "dev", "wan0", "nodad"},
			{"ip", "addr", "add", "10.20.0.1/24", "dev", "lan0"},
			{"ip", "link", "set", "to-a", "mtu", "1452", "up"},
			{"ip", "route", "add", "10.10.0.0/16", "dev", "to-a"},
		},
	}
	for _, name := range []string{"host-a", "host-b", "ra", "peer"} {
		if err := lab.MustExec(ns[name], setup[name]...); err != nil {
			t.Fatal(err)
		}
	}
	cli := labkit.CLI{Runner: run, Bin: xdprouterBin, NS: ns["ra"], BPFFS: filepath.Join(lab.RunDir(), "ra")}
	cfg := filepath.Join(lab.RunDir(), "ra.yaml")
	if err := os.WriteFile(cfg, []byte(`wan: {interface: wan0}
lan: [{interface: lan0, ipv4: 10.10.0.1/24}]
tunnels:
  - {name: to-b, remote: "2001:db8:a::2", local: "2001:db8:a::1", routes: [10.20.0.0/16], mtu: 1452}
firewall: {mode: "off"}  # host-b opens connections to host-a too
`), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, ctx, cli, "apply", "--config", cfg)

	hostA, hostB := netip.MustParseAddr("10.10.0.2"), netip.MustParseAddr("10.20.0.2")
	for _, enc := range []struct {
		name   string
		change []string // to the peer's tunnel before the subtest
	}{
		{"default encaplimit", nil},
		{"encaplimit none", []string{"ip", "-6", "tunnel", "change", "to-a", "mode", "ipip6", "local", "2001:db8:a::2", "remote", "2001:db8:a::1", "encaplimit", "none"}},
	} {
		t.Run(enc.name, func(t *testing.T) {
			cli := cli.WithLog(t)
			run := cli.Runner
			if enc.change != nil {
				mustRun(t, ctx, run, netlab.InNS(ns["peer"], enc.change...)...)
			}
			mustRun(t, ctx, run, netlab.InNS(ns["peer"], "ip", "-6", "-d", "tunnel", "show", "to-a")...)
			for _, p := range []struct {
				from string
				to   netip.Addr
			}{{"host-a", hostB}, {"host-b", hostA}} {
				if _, err := run.Ping(ctx, ns[p.from], p.to, 3); err != nil {
					t.Fatalf("%s to %s through the tunnel: %v", p.from, p.to, err)
				}
			}
			for _, d := range []struct {
				from, to, counter string
				dst               netip.Addr
			}{
				{"host-a", "host-b", "tun_encap", hostB},
				{"host-b", "host-a", "tun_decap", hostA},
			} {
				before := mustCounters(t, ctx, cli)
				res, err := labkit.Transfer(ctx, lab, ns[d.from], ns[d.to], d.dst, kernelPeerSize)
				if err != nil {
					t.Fatalf("TCP %s -> %s: %v", d.from, d.to, err)
				}
				delta := mustCounters(t, ctx, cli).Sub(before)
				t.Logf("TCP %s -> %s: %d bytes in %v, sha256 %s on both ends; %d segments sent (%d retransmitted); ra: %s",
					d.from, d.to, res.Bytes, res.Elapsed.Round(time.Millisecond), res.RecvSHA,
					res.SenderTCP.SegsOut, res.SenderTCP.TotalRetrans, delta)
				if res.Bytes != kernelPeerSize || res.SentSHA != res.RecvSHA {
					t.Fatalf("content: sent %d bytes %s, received %d bytes %s", int64(kernelPeerSize), res.SentSHA, res.Bytes, res.RecvSHA)
				}
				if want := uint64(res.SenderTCP.SegsOut) * 9 / 10; delta[d.counter].Packets < want {
					t.Errorf("%s -> %s: %s %d, want >= 90%% of the %d segments sent: XDP did not carry the data", d.from, d.to, d.counter, delta[d.counter].Packets, res.SenderTCP.SegsOut)
				}
			}
			// The router's own IPv4 into the tunnel: routed to xdprouter's
			// tunnel netdev, encapsulated by its TC program.
			before := mustCounters(t, ctx, cli)
			mustRun(t, ctx, run, netlab.InNS(ns["ra"], "ping", "-c", "3", "-i", "0.2", "-W", "5", "-I", "10.10.0.1", hostB.String())...)
			delta := mustCounters(t, ctx, cli).Sub(before)
			if delta["tc_encap"].Packets < 3 {
				t.Errorf("router's own ping: tc_encap %d, want >= 3 (the echo requests through the slow path); counters: %s", delta["tc_encap"].Packets, delta)
			}
		})
	}
}
