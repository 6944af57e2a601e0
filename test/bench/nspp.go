package main

import (
	"bytes"
	"context"
	"fmt"

	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/loader/benchprog"
)

// Programs measured with BPF_PROG_TEST_RUN (not live).
const (
	progPassDirect = "pass (direct)"
	progPass       = "pass"
	progBare       = "bare"
	progXdprouter  = "xdprouter"
)

var nsppProgs = []string{progPassDirect, progPass, progBare, progXdprouter}

// nsppResult is one program × family.
type nsppResult struct {
	Program string `json:"program"`
	Family  string `json:"family"`
	Verdict string `json:"verdict"`
	// KernelNs is the kernel's figure per run (integer ns), one per round.
	KernelNs       []float64 `json:"kernel_ns"`
	MedianKernelNs float64   `json:"median_kernel_ns"`
	// NetNs is MedianKernelNs without the harness (restore + tail call):
	// median(harness+prog) - median(harness+pass) + median(pass direct).
	NetNs float64 `json:"net_ns"`
	// NetNsRuns is the same per round, for paired ratios.
	NetNsRuns []float64 `json:"net_ns_runs"`
	// Interrupted counts test runs a signal cut short and were run again;
	// the repetitions they had done are in the program's counters too.
	Interrupted int      `json:"interrupted_runs,omitempty"`
	Problems    []string `json:"problems,omitempty"`
}

// runNsPerPacket measures xdpr_main, the bare forwarder and XDP_PASS on the
// benchmark frame in the router namespace (so fib lookups resolve as in the
// live runs). A repeated test run reuses one buffer, and a forwarder would
// see its own output (TTL falling to 1 after 63 runs); so each program runs
// behind the generator's harness, which restores the frame and tail-calls it.
func runNsPerPacket(ctx context.Context, t *topo, fams []family, cfg config, pass *benchprog.Pass,
	bare *benchprog.BareForwarder, gens map[string]*benchprog.Generator) ([]*nsppResult, error) {
	router, err := loader.NewBenchRouter()
	if err != nil {
		return nil, err
	}
	defer router.Close()
	// Devmap entries resolve the ifindex in the caller's namespace. No
	// role, as `xdprouter attach r0 r1` in the live runs: both figures are
	// of the same program.
	err = t.lab.Do(t.rtrNS, func() error {
		for _, ifc := range []iface{t.r0, t.r1} {
			if err := router.AddPort(ifc.index, ifc.name, ifc.mac, loader.RoleNone); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	tunRouter, err := newTunnelBenchRouter(t)
	if err != nil {
		return nil, err
	}
	defer tunRouter.Close()

	var results []*nsppResult
	byKey := map[string]*nsppResult{}
	for _, f := range fams {
		for _, p := range nsppProgs {
			if !nsppApplies(p, f) {
				continue
			}
			r := &nsppResult{Program: p, Family: f.name}
			results = append(results, r)
			byKey[key(p, f.name)] = r
		}
	}
	wantFrame := forwardedFrames(t, fams)
	err = t.lab.Do(t.rtrNS, func() error {
		for i := 0; i < cfg.nsppRuns; i++ {
			for _, f := range fams {
				g := gens[f.name]
				for _, p := range nsppProgs {
					if !nsppApplies(p, f) {
						continue
					}
					if err := ctx.Err(); err != nil {
						return err
					}
					var res benchprog.TestResult
					err := onCPU(cfg.genCPU, func() error {
						var err error
						switch p {
						case progPassDirect:
							res, err = benchprog.TestRun(pass.FD(), f.frame, t.r0.index, cfg.nsppRepeat)
						case progPass:
							res, err = g.Measure(pass.FD(), t.r0.index, cfg.nsppRepeat)
						case progBare:
							res, err = g.Measure(bare.FD(), t.r0.index, cfg.nsppRepeat)
						case progXdprouter:
							fd := router.FD(t.r0.index)
							if f.only != "" {
								fd = tunRouter.FD(t.r0.index)
							}
							res, err = g.Measure(fd, t.r0.index, cfg.nsppRepeat)
						}
						return err
					})
					if err != nil {
						return fmt.Errorf("%s %s: %w", p, f.name, err)
					}
					r := byKey[key(p, f.name)]
					r.KernelNs = append(r.KernelNs, float64(res.KernelPerRun.Nanoseconds()))
					r.Interrupted += res.Interrupted
					r.Verdict = verdictName(res.Verdict)
					check := checkOutput
					if f.only != "" {
						check = checkTunnelOutput
					}
					if pr := check(p, res, f, wantFrame[f.name]); pr != "" && len(r.Problems) == 0 {
						r.Problems = append(r.Problems, pr)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, f := range fams {
		direct := byKey[key(progPassDirect, f.name)]
		harness := byKey[key(progPass, f.name)]
		for _, p := range nsppProgs {
			if r := byKey[key(p, f.name)]; r != nil {
				r.MedianKernelNs = median(r.KernelNs)
			}
		}
		overhead := harness.MedianKernelNs - direct.MedianKernelNs
		for _, p := range nsppProgs {
			r := byKey[key(p, f.name)]
			if r == nil {
				continue
			}
			r.NetNs = r.MedianKernelNs
			if p != progPassDirect {
				r.NetNs -= overhead
			}
			for i, v := range r.KernelNs {
				if p != progPassDirect {
					v -= harness.KernelNs[i] - direct.KernelNs[i]
				}
				r.NetNsRuns = append(r.NetNsRuns, v)
			}
		}
	}
	// The benchmark measured forwarding only if xdpr_main forwarded every
	// run in XDP: its counters must hold exactly runs × repeat per family.
	cs, err := router.Counters()
	if err != nil {
		return nil, err
	}
	want := uint64(cfg.nsppRuns) * uint64(cfg.nsppRepeat)
	tcs, err := tunRouter.Counters()
	if err != nil {
		return nil, err
	}
	for _, c := range tcs {
		for _, f := range fams {
			if r := byKey[key(progXdprouter, f.name)]; f.only != "" && c.Name == f.fwdCounter && !countsRuns(c.Packets, want, r.Interrupted, cfg.nsppRepeat) {
				r.Problems = append(r.Problems, fmt.Sprintf("xdpr_main counted %d %s, want %d (+ up to %d interrupted runs)", c.Packets, c.Name, want, r.Interrupted))
			}
		}
	}
	for _, c := range cs {
		for _, f := range fams {
			if f.only != "" {
				continue
			}
			r := byKey[key(progXdprouter, f.name)]
			switch {
			case c.Name == f.fwdCounter && !countsRuns(c.Packets, want, r.Interrupted, cfg.nsppRepeat):
				r.Problems = append(r.Problems, fmt.Sprintf("xdpr_main counted %d forwards, want %d (+ up to %d interrupted runs)", c.Packets, want, r.Interrupted))
			case f.name == fams[0].name && c.Packets > 0 && !isFwdCounter(c.Name, fams):
				r.Problems = append(r.Problems, fmt.Sprintf("xdpr_main counted %d packets as %s", c.Packets, c.Name))
			}
		}
	}
	return results, nil
}

// forwardedFrames is what one forwarding hop r0 -> r1 makes of each family's
// frame: MACs r1 -> s0, TTL / hop limit one less, IPv4 checksum updated.
func forwardedFrames(t *topo, fams []family) map[string][]byte {
	out := map[string][]byte{}
	for _, f := range fams {
		if f.only != "" {
			continue
		}
		b := append([]byte(nil), f.frame...)
		copy(b[0:6], t.s0.mac)
		copy(b[6:12], t.r1.mac)
		switch f.name {
		case "ipv4":
			b[14+8]--
			b[14+10], b[14+11] = 0, 0
			sum := uint32(0)
			for i := 14; i < 34; i += 2 {
				sum += uint32(b[i])<<8 | uint32(b[i+1])
			}
			for sum > 0xffff {
				sum = sum&0xffff + sum>>16
			}
			c := ^uint16(sum)
			b[14+10], b[14+11] = byte(c>>8), byte(c)
		case "ipv6":
			b[14+7]--
		}
		out[f.name] = b
	}
	return out
}

// checkOutput verifies the verdict and, for forwarders, the frame they made,
// against a checksum computed here rather than by the code under test.
func checkOutput(p string, res benchprog.TestResult, f family, want []byte) string {
	switch p {
	case progPassDirect, progPass:
		if res.Verdict != benchprog.XDPPass {
			return fmt.Sprintf("verdict %s, want XDP_PASS", verdictName(res.Verdict))
		}
	default:
		if res.Verdict != benchprog.XDPRedirect {
			return fmt.Sprintf("verdict %s, want XDP_REDIRECT", verdictName(res.Verdict))
		}
		if !bytes.Equal(res.Out, want) {
			return fmt.Sprintf("forwarded frame differs from the expected one:\n got %x\nwant %x", res.Out, want)
		}
	}
	return ""
}

func verdictName(v uint32) string {
	switch v {
	case benchprog.XDPAborted:
		return "XDP_ABORTED"
	case benchprog.XDPDrop:
		return "XDP_DROP"
	case benchprog.XDPPass:
		return "XDP_PASS"
	case benchprog.XDPTx:
		return "XDP_TX"
	case benchprog.XDPRedirect:
		return "XDP_REDIRECT"
	}
	return fmt.Sprintf("verdict(%d)", v)
}

func isFwdCounter(name string, fams []family) bool {
	for _, f := range fams {
		if f.fwdCounter == name {
			return true
		}
	}
	return false
}

// countsRuns says whether a forward counter holds every repetition of the
// completed runs, plus at most the repetitions of runs a signal
// interrupted (done again in full).
func countsRuns(got, want uint64, interrupted int, repeat uint32) bool {
	return got >= want && got <= want+uint64(interrupted)*uint64(repeat)
}
