package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/test/labkit"
)

// TestJumboSiteToSite is seed 004 on a jumbo network (an AWS VPC's MTU
// is 9001): two xdprouter instances as ipip6 peers over a link of MTU
// 9000, every veth at MTU 9000, the tunnels at the largest MTU that fits
// (8960), IPv6 routed natively between the sites.
//
//	host-a 10.10.0.2 2001:db8:10::2 — ra (wan 2001:db8:a::1)
//	                                    ===ipip6, MTU 8960===
//	host-b 10.20.0.2 2001:db8:20::2 — rb (wan 2001:db8:a::2)
//
// Frames of 9000 octets reach the programs in several buffers (a veth
// gives XDP at most ~3.5 KiB in the first). The TCP transfers, content-
// verified, must take the XDP paths (tun_encap / tun_decap, fwd_ipv6) in
// jumbo segments. ICMP is the kernel's under the conntrack gate (apply
// turns it on): the 8900-octet pings, the routers' own and those without
// DF over the tunnel MTU (fragmented by the kernel) cross the ifb tunnel
// netdevs and the TC slow path at 9000 octets; a DF one over the tunnel
// MTU gets frag needed with MTU 8960.
//
// A kernel before 6.3 redirects no multi-buffer frame (loader's
// TestTransmitsMultiBuffer): there the jumbo segments go to the kernel
// (pass_mb_egress), through the ifb tunnel netdevs and the TC slow path
// for IPv4, and arrive all the same.
func TestJumboSiteToSite(t *testing.T) {
	needRoot(t)
	mbRedirect := loader.ProbeKernel().Has(loader.FeatureXDPFeatures)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
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
	links := [][4]string{{"host-a", "eth0", "ra", "lan0"}, {"ra", "wan0", "rb", "wan0"}, {"rb", "lan0", "host-b", "eth0"}}
	for _, v := range links {
		if err := lab.Veth(ns[v[0]], v[1], ns[v[2]], v[3]); err != nil {
			t.Fatal(err)
		}
		for _, end := range [][2]string{{v[0], v[1]}, {v[2], v[3]}} {
			if err := lab.MustExec(ns[end[0]], []string{"ip", "link", "set", end[1], "mtu", "9000"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	setup := map[string][][]string{
		"host-a": {{"ethtool", "-K", "eth0", "tx", "off"}, {"ip", "addr", "add", "10.10.0.2/24", "dev", "eth0"},
			{"ip", "route", "add", "default", "via", "10.10.0.1"},
			{"ip", "-6", "addr", "add", "2001:db8:10::2/64", "dev", "eth0", "nodad"},
			{"ip", "-6", "route", "add", "default", "via", "2001:db8:10::1"}},
		"host-b": {{"ethtool", "-K", "eth0", "tx", "off"}, {"ip", "addr", "add", "10.20.0.2/24", "dev", "eth0"},
			{"ip", "route", "add", "default", "via", "10.20.0.1"},
			{"ip", "-6", "addr", "add", "2001:db8:20::2/64", "dev", "eth0", "nodad"},
			{"ip", "-6", "route", "add", "default", "via", "2001:db8:20::1"}},
		// The routers' own TCP leaves by the TC slow path: complete
		// checksums there too.
		"ra": {{"ethtool", "-K", "wan0", "tx", "off"}, {"ip", "-6", "addr", "add", "2001:db8:a::1/64", "dev", "wan0", "nodad"},
			{"ip", "-6", "addr", "add", "2001:db8:10::1/64", "dev", "lan0", "nodad"},
			{"ip", "-6", "route", "add", "2001:db8:20::/64", "via", "2001:db8:a::2"}},
		"rb": {{"ethtool", "-K", "wan0", "tx", "off"}, {"ip", "-6", "addr", "add", "2001:db8:a::2/64", "dev", "wan0", "nodad"},
			{"ip", "-6", "addr", "add", "2001:db8:20::1/64", "dev", "lan0", "nodad"},
			{"ip", "-6", "route", "add", "2001:db8:10::/64", "via", "2001:db8:a::1"}},
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
  - {name: to-b, remote: "2001:db8:a::2", local: "2001:db8:a::1", routes: [10.20.0.0/16], mtu: 8960}
firewall: {mode: "off"}
`,
		"rb": `wan: {interface: wan0}
lan: [{interface: lan0, ipv4: 10.20.0.1/24}]
tunnels:
  - {name: to-a, remote: "2001:db8:a::1", local: "2001:db8:a::2", routes: [10.10.0.0/16], mtu: 8960}
firewall: {mode: "off"}
`,
	}
	cli := map[string]labkit.CLI{}
	for _, r := range []string{"ra", "rb"} {
		cli[r] = labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: ns[r], BPFFS: filepath.Join(lab.RunDir(), r)}
		path := filepath.Join(lab.RunDir(), r+".yaml")
		if err := os.WriteFile(path, []byte(configs[r]), 0o600); err != nil {
			t.Fatal(err)
		}
		// Before multi-buffer XDP: "create link: numerical result out
		// of range" here.
		out := mustCLI(t, ctx, cli[r], "apply", "--config", path)
		want := "MTU 9000: frames beyond one buffer are forwarded multi-buffer in XDP"
		if !mbRedirect {
			want = "MTU 9000: frames beyond one buffer routed out of it are left to the kernel"
		}
		if !strings.Contains(out.Stdout, want) {
			t.Errorf("apply on %s does not say %q:\n%s", r, want, out.Stdout)
		}
		if m := mustIface(t, mustStatus(t, ctx, cli[r]), "wan0").XDPMode; m != "native" {
			t.Errorf("%s wan0 in %s mode, want native", r, m)
		}
	}
	run := labkit.Runner{Log: t}
	hostA4, hostB4 := netip.MustParseAddr("10.10.0.2"), netip.MustParseAddr("10.20.0.2")
	hostB6 := netip.MustParseAddr("2001:db8:20::2")
	// Neighbours and the first packets are the kernel's: warm up.
	for _, p := range []struct {
		from string
		to   netip.Addr
	}{{"host-a", hostB4}, {"host-b", hostA4}, {"host-a", hostB6}} {
		if _, err := run.Ping(ctx, ns[p.from], p.to, 2); err != nil {
			t.Fatalf("%s to %s: %v", p.from, p.to, err)
		}
	}

	// kernelJumbo checks a transfer on a kernel that redirects no
	// multi-buffer frame: the jumbo segments left to the kernel on both
	// routers (pass_mb_egress, and for the tunnel TC's encapsulation and
	// decapsulation), the others in XDP; together the payload.
	kernelJumbo := func(name string, before map[string]labkit.Counters, from, to string) {
		t.Helper()
		for _, r := range []struct{ router, xdp, tc string }{{"ra", from, "tc_encap"}, {"rb", to, "tc_decap"}} {
			d := mustCounters(t, ctx, cli[r.router]).Sub(before[r.router])
			mb := d["pass_mb_egress"]
			if mb.Packets == 0 || mb.Bytes/mb.Packets <= oneBuffer || mb.Bytes+d[r.xdp].Bytes < bulkSize {
				t.Errorf("TCP %s: %s pass_mb_egress %d frames %d octets, %s %d octets: want the %d octets of payload in them, "+
					"the jumbo segments left to the kernel", name, r.router, mb.Packets, mb.Bytes, r.xdp, d[r.xdp].Bytes, int64(bulkSize))
			}
			// In octets: the kernel merges segments (GRO) before TC.
			if from == "tun_encap" && d[r.tc].Bytes < mb.Bytes*9/10 {
				t.Errorf("TCP %s: %s %s %d octets, want the %d of the jumbo segments through the TC slow path",
					name, r.router, r.tc, d[r.tc].Bytes, mb.Bytes)
			}
		}
	}
	snap := func() map[string]labkit.Counters {
		return map[string]labkit.Counters{"ra": mustCounters(t, ctx, cli["ra"]), "rb": mustCounters(t, ctx, cli["rb"])}
	}
	// want: router -> counter -> at least this many packets, each of at
	// least minBytes octets on average.
	expect := func(what string, before map[string]labkit.Counters, want map[string]map[string]uint64, minBytes uint64) {
		t.Helper()
		for r, cs := range want {
			d := mustCounters(t, ctx, cli[r]).Sub(before[r])
			t.Logf("%s, %s: %s", what, r, d)
			for c, n := range cs {
				if d[c].Packets < n || d[c].Bytes < n*minBytes {
					t.Errorf("%s: %s %s %d packets %d bytes, want >= %d packets of >= %d bytes", what, r, c,
						d[c].Packets, d[c].Bytes, n, minBytes)
				}
			}
		}
	}
	ping := func(from string, dst netip.Addr, size int, df bool) (labkit.Result, error) {
		pmtu := "dont"
		if df {
			pmtu = "do"
		}
		return run.InNS(ctx, ns[from], "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-M", pmtu,
			"-s", fmt.Sprint(size), dst.String())
	}
	received := func(res labkit.Result, err error, n int) error {
		if err != nil {
			return err
		}
		if !strings.Contains(res.Stdout, fmt.Sprintf("%d received", n)) {
			return fmt.Errorf("%s: want %d replies:\n%s", res.Cmdline, n, res.Stdout)
		}
		return nil
	}

	// 8900-octet IPv4 packets (8872 of ICMP payload) through the tunnel:
	// 9000 octets inside the WAN frames, encapsulated and decapsulated by
	// TC on both routers.
	before := snap()
	res, err := ping("host-a", hostB4, 8872, true)
	if err := received(res, err, 3); err != nil {
		t.Fatalf("8900-octet ping through the tunnel: %v", err)
	}
	expect("8900-octet IPv4 ping", before, map[string]map[string]uint64{
		"ra": {"tc_encap": 3, "tc_decap": 3}, "rb": {"tc_encap": 3, "tc_decap": 3}}, 8900)
	// 8900-octet IPv6 packets routed natively.
	before = snap()
	res, err = ping("host-a", hostB6, 8852, true)
	if err := received(res, err, 3); err != nil {
		t.Fatalf("8900-octet IPv6 ping: %v", err)
	}
	expect("8900-octet IPv6 ping", before, map[string]map[string]uint64{"ra": {"pass_ct_proto": 6}, "rb": {"pass_ct_proto": 6}}, 8900)

	for _, tc := range []struct {
		name     string
		dst      netip.Addr
		from, to string // counters of the data direction
	}{
		{"IPv4 through the tunnel", hostB4, "tun_encap", "tun_decap"},
		{"IPv6 routed", hostB6, "fwd_ipv6", "fwd_ipv6"},
	} {
		before = snap()
		res, err := labkit.Transfer(ctx, lab, ns["host-a"], ns["host-b"], tc.dst, bulkSize)
		if err != nil {
			t.Fatalf("TCP %s: %v", tc.name, err)
		}
		t.Logf("TCP %s: %d bytes in %v (%.0f Mbit/s), sha256 %s on both ends; %d segments sent, %d retransmitted",
			tc.name, res.Bytes, res.Elapsed.Round(time.Millisecond), res.Throughput(), res.RecvSHA,
			res.SenderTCP.SegsOut, res.SenderTCP.TotalRetrans)
		if !mbRedirect {
			kernelJumbo(tc.name, before, tc.from, tc.to)
			continue
		}
		segs := uint64(res.SenderTCP.SegsOut) * 9 / 10
		// Most of the payload in segments near the MTU: the bytes in XDP
		// are at least the payload, in at most twice the segments a
		// payload of 8900 per segment needs.
		expect("TCP "+tc.name, before, map[string]map[string]uint64{"ra": {tc.from: segs}, "rb": {tc.to: segs}}, 0)
		for _, r := range []struct{ router, counter string }{{"ra", tc.from}, {"rb", tc.to}} {
			d := mustCounters(t, ctx, cli[r.router]).Sub(before[r.router])[r.counter]
			if d.Bytes < bulkSize {
				t.Errorf("TCP %s: %s %s carried %d bytes, want >= %d", tc.name, r.router, r.counter, d.Bytes, int64(bulkSize))
			}
		}
		if res.SenderTCP.SegsOut > 2*bulkSize/8900+200 {
			t.Errorf("TCP %s: %d segments for %d bytes: not jumbo segments", tc.name, res.SenderTCP.SegsOut, int64(bulkSize))
		}
	}

	// Without DF, over the tunnel MTU: the kernel fragments into the
	// tunnel netdev (ifb, MTU 8960), whose TC program encapsulates each
	// fragment; on the way back the same on rb.
	before = snap()
	res, err = ping("host-a", hostB4, 8972, false)
	if err := received(res, err, 3); err != nil {
		t.Fatalf("9000-octet ping without DF: %v", err)
	}
	expect("9000-octet ping without DF", before, map[string]map[string]uint64{"ra": {"tc_encap": 6}, "rb": {"tc_encap": 6}}, 4500)
	// The router's own 8900-octet packets: the slow path both ways.
	res, err = run.InNS(ctx, ns["ra"], "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-M", "do", "-I", "10.10.0.1",
		"-s", "8872", hostB4.String())
	if err := received(res, err, 3); err != nil {
		t.Fatalf("ra's own 8900-octet ping through the tunnel: %v", err)
	}
	// DF over the tunnel MTU: frag needed with the tunnel's MTU (from the
	// kernel, the gate's for ICMP; XDP's own for TCP and UDP is in
	// loader's TestJumboDataplane).
	res, _ = ping("host-a", hostB4, 8933, true)
	if !strings.Contains(res.Stdout, "mtu = 8960") {
		t.Errorf("8961-octet DF ping: no frag needed with mtu 8960:\n%s", res.Stdout)
	}
	for _, r := range []string{"ra", "rb"} {
		c := mustCounters(t, ctx, cli[r])
		if mbRedirect && c["pass_mb_headers"].Packets+c["pass_mb_egress"].Packets != 0 {
			t.Errorf("%s left multi-buffer frames to the kernel: %s", r, c)
		}
		mustCLI(t, ctx, cli[r], "stats")
	}
}
