package loader

// Paired cost measurements of the forward paths with BPF_PROG_TEST_RUN, for
// comparing a translated or tunnelled packet with a plain one on a shared
// machine: every round measures every path once, back to back, and the
// ratios are taken within a round, so a slow phase of the host hits both
// sides of a ratio. Run with
//
//	go test -run '^$' -bench ForwardCost -benchtime 1x ./loader/
//
// (root). Each path runs behind the benchmark generator's harness, which
// restores the frame before every repetition and tail-calls xdpr_main; the
// harness's own cost (measured with XDP_PASS behind it) is subtracted.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"testing"

	"github.com/xdprouter/xdprouter/loader/benchprog"
)

type costPath struct {
	name    string
	ingress string
	frame   []byte
	verdict uint32
	gen     *benchprog.Generator
}

// costRatios are the figures reported: a path against its plain reference.
var costRatios = [][2]string{
	{"snpt64", "ipv6"},
	{"dnpt64", "ipv6-wan"},
	{"snpt48", "ipv6"},
	{"dnpt48", "ipv6-wan"},
	{"encap", "ipv4"},
	{"encap-neigh", "encap"},
}

func BenchmarkForwardCost(b *testing.B) {
	rl, _ := newTunnelRouterLab(b)
	rl.setNPT(b, []nptTestRule{nptTestRules[0], nptTestRules[2]})
	r64, r48 := nptTestRules[2], nptTestRules[0]
	const remote = "2001:db8:100::1"
	// 64-byte frames, as the live benchmark sends (and the generator needs
	// a multiple of 8).
	paths := []*costPath{
		{name: "ipv6", ingress: "lan0", frame: udp6(b, "2001:db8:1::2", remote, payload(2))},
		{name: "ipv6-wan", ingress: "wan0", frame: udp6(b, remote, "2001:db8:1::2", payload(2), onWAN())},
		{name: "snpt64", ingress: "lan0", frame: udp6(b, r64.host(false, "::1234"), remote, payload(2))},
		{name: "dnpt64", ingress: "wan0", frame: udp6(b, remote, r64.host(true, "::1234"), payload(2), onWAN())},
		{name: "snpt48", ingress: "lan0", frame: udp6(b, r48.host(false, "::1234"), remote, payload(2))},
		{name: "dnpt48", ingress: "wan0", frame: udp6(b, remote, r48.host(true, "::1234"), payload(2), onWAN())},
		{name: "ipv4", ingress: "lan0", frame: udp4(b, "10.0.1.2", "198.51.100.7", payload(22))},
		{name: "encap", ingress: "lan0", frame: udp4(b, "10.0.1.2", "100.100.1.7", payload(22))},
		// Into the same tunnel, to a destination the kernel holds a
		// neighbour entry for on the tunnel netdev (an ifb has no ARP:
		// the kernel makes one the first time it sends into the tunnel
		// itself). The lookup then succeeds and the redirect misses
		// xdpr_tx_ports on its way to tunnel_encap, which must not pay
		// the two lookups naming a pass (redirect_port_try): with them,
		// encap-neigh/encap was 1.2-1.3.
		{name: "encap-neigh", ingress: "lan0", frame: udp4(b, "10.0.1.2", "100.100.1.8", payload(22))},
	}
	rounds, repeat := envInt(b, "COST_ROUNDS", 15), envInt(b, "COST_REPEAT", 200000)
	pass, err := benchprog.NewPass()
	if err != nil {
		b.Fatal(err)
	}
	defer pass.Close()
	for _, p := range paths {
		if len(p.frame) != 64 {
			b.Fatalf("%s: frame of %d bytes", p.name, len(p.frame))
		}
		if p.gen, err = benchprog.NewGenerator(p.frame); err != nil {
			b.Fatal(err)
		}
		defer p.gen.Close()
	}
	net := map[string][]float64{}
	err = rl.lab.Do(rl.ns, func() error {
		if out, err := exec.Command("ip", "neigh", "replace", "100.100.1.8", "dev", "t0",
			"lladdr", "02:00:00:00:00:99", "nud", "permanent").CombinedOutput(); err != nil {
			return fmt.Errorf("ip neigh: %w: %s", err, out)
		}
		for _, p := range paths {
			// Each path must forward, or it measures something else.
			v, _, _, err := rl.runOnce(p.frame, p.ingress)
			if err != nil {
				return err
			}
			if v != xdpRedirect {
				return fmt.Errorf("%s: verdict %s", p.name, verdictName(v))
			}
		}
		for range rounds {
			for _, p := range paths {
				h, err := p.gen.Measure(pass.FD(), rl.ifindex[p.ingress], uint32(repeat))
				if err != nil {
					return err
				}
				r, err := p.gen.Measure(rl.progs[p.ingress].FD(), rl.ifindex[p.ingress], uint32(repeat))
				if err != nil {
					return err
				}
				if r.Verdict != xdpRedirect || bytes.Equal(r.Out, p.frame) {
					return fmt.Errorf("%s: verdict %s after %d runs", p.name, verdictName(r.Verdict), repeat)
				}
				net[p.name] = append(net[p.name], float64(r.KernelPerRun-h.KernelPerRun))
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range paths {
		b.ReportMetric(medianOf(net[p.name]), p.name+"-ns")
	}
	for _, r := range costRatios {
		var paired []float64
		for i := range net[r[0]] {
			paired = append(paired, net[r[0]][i]/net[r[1]][i])
		}
		b.ReportMetric(medianOf(paired), r[0]+"/"+r[1])
	}
}

func envInt(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
