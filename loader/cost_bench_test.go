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
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdprouter/xdprouter/loader/benchprog"
)

type costPath struct {
	name    string
	ingress string
	// prog is the program variant it runs through: "" the ingress's own
	// (lan0 a LAN port, wan0 the WAN, both ungated), or, on lan0, one of
	// the live benchmark's: "none" (`xdprouter attach`: no role, ungated,
	// its plain xdprouter scenario) or "gate" (`xdprouter apply`: a LAN
	// port with the conntrack gate, its NPT and encap scenarios).
	prog    string
	frame   []byte
	verdict uint32
	gen     *benchprog.Generator
	// ct is the conntrack flow a gated path needs: proto, src, dst.
	ct []string
}

// costRatios are the figures reported: a path against its plain reference.
var costRatios = [][2]string{
	{"snpt64", "ipv6"},
	{"dnpt64", "ipv6-wan"},
	{"snpt48", "ipv6"},
	{"dnpt48", "ipv6-wan"},
	{"encap", "ipv4"},
	{"encap-neigh", "encap"},
	// As the live benchmark pairs them (test/bench): the gated LAN
	// port's paths against the unroled, ungated port's plain ones, and
	// the parts of the difference.
	{"snpt64-gate", "ipv6-none"},
	{"encap-gate", "ipv4-none"},
	{"ipv6-gate", "ipv6"},
	{"ipv4-gate", "ipv4"},
	{"ipv6", "ipv6-none"},
	{"ipv4", "ipv4-none"},
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
		{name: "ipv6-none", ingress: "lan0", prog: "none", frame: udp6(b, "2001:db8:1::2", remote, payload(2))},
		{name: "ipv4-none", ingress: "lan0", prog: "none", frame: udp4(b, "10.0.1.2", "198.51.100.7", payload(22))},
		{name: "ipv6-gate", ingress: "lan0", prog: "gate", frame: udp6(b, "2001:db8:1::2", remote, payload(2)),
			ct: []string{"udp", "2001:db8:1::2", remote}},
		{name: "ipv4-gate", ingress: "lan0", prog: "gate", frame: udp4(b, "10.0.1.2", "198.51.100.7", payload(22)),
			ct: []string{"udp", "10.0.1.2", "198.51.100.7"}},
		{name: "snpt64-gate", ingress: "lan0", prog: "gate", frame: udp6(b, r64.host(false, "::1234"), remote, payload(2)),
			ct: []string{"udp", r64.host(false, "::1234"), remote}},
		{name: "encap-gate", ingress: "lan0", prog: "gate", frame: udp4(b, "10.0.1.2", "100.100.1.7", payload(22)),
			ct: []string{"udp", "10.0.1.2", "100.100.1.7"}},
	}
	// The gate's cached verdicts outlive every round: the live benchmark
	// asks conntrack once per 10 ms, once in tens of thousands of frames.
	old := ctCacheLife
	ctCacheLife = time.Minute
	defer func() { ctCacheLife = old }()
	variants := map[string]*ebpf.Program{}
	err := rl.lab.Do(rl.ns, func() error {
		ifc, err := net.InterfaceByName("lan0")
		if err != nil {
			return err
		}
		variants["none"] = loadTestProgramGate(b, ifc, RoleNone, CTGateOff, rl.maps)
		variants["gate"] = loadTestProgramGate(b, ifc, RoleLAN, CTGateOn, rl.maps)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	prog := func(p *costPath) *ebpf.Program {
		if p.prog != "" {
			return variants[p.prog]
		}
		return rl.progs[p.ingress]
	}
	rounds, repeat := envInt(b, "COST_ROUNDS", 15), envInt(b, "COST_REPEAT", 200000)
	// COST_PATHS=a,b measures only those paths (for a profiler's run).
	only := func(name string) bool {
		sel := os.Getenv("COST_PATHS")
		return sel == "" || slices.Contains(strings.Split(sel, ","), name)
	}
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
			if p.ct == nil {
				continue
			}
			args := ctEntry(p.ct[0], p.ct[1], p.ct[2], udpSport, udpDport, "-u", "SEEN_REPLY,ASSURED")
			if out, err := exec.Command("conntrack", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("conntrack %v: %w: %s", args, err, out)
			}
		}
		for _, p := range paths {
			// Each path must forward, or it measures something else.
			v, _, err := runXDP(prog(p), p.frame, rl.ifindex[p.ingress])
			if err != nil {
				return err
			}
			if v != xdpRedirect {
				return fmt.Errorf("%s: verdict %s", p.name, verdictName(v))
			}
		}
		for range rounds {
			for _, p := range paths {
				if !only(p.name) {
					continue
				}
				h, err := p.gen.Measure(pass.FD(), rl.ifindex[p.ingress], uint32(repeat))
				if err != nil {
					return err
				}
				r, err := p.gen.Measure(prog(p).FD(), rl.ifindex[p.ingress], uint32(repeat))
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
		if only(p.name) {
			b.ReportMetric(medianOf(net[p.name]), p.name+"-ns")
		}
	}
	for _, r := range costRatios {
		if !only(r[0]) || !only(r[1]) {
			continue
		}
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
