package main

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/loader/benchprog"
	"github.com/xdprouter/xdprouter/test/labkit"
)

// newTestBench builds the benchmark's topology with the circulating
// generator, whatever the kernel permits.
func newTestBench(t *testing.T) *liveBench {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and loads XDP programs")
	}
	lab := labkit.NewLab(t)
	topo, err := buildTopo(lab)
	if err != nil {
		t.Fatal(err)
	}
	fams, err := topo.families()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{runs: 1, seconds: 0.3, batch: 64, genCPU: runtime.NumCPU() - 1, generator: "circulating"}
	b, err := newLiveBench(topo, fams, cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if b.circ == nil {
		t.Fatal("-generator circulating did not choose the circulator")
	}
	return b
}

// TestCirculationDeliversThroughTrivialRouter: frames injected once go round
// through a router that does nothing but forward (xdp_wire), every frame the
// router's program ran on reaches the sink and is counted there once, the
// window's figures are consistent, and stopping really stops the loop. A
// harness that printed zeros, counted twice or kept frames going after a
// run would fail here instead of in a benchmark report.
func TestCirculationDeliversThroughTrivialRouter(t *testing.T) {
	b := newTestBench(t)
	stats, err := benchprog.EnableRunStats()
	if err != nil {
		t.Fatal(err)
	}
	defer stats.Close()
	for _, f := range b.plainFamilies() {
		t.Run(f.name, func(t *testing.T) {
			undo, err := b.setup(scCeiling, f)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := undo(); err != nil {
					t.Error(err)
				}
			}()
			r0 := func() benchprog.RunStats {
				var s benchprog.RunStats
				if err := b.t.lab.Do(b.t.rtrNS, func() error {
					var err error
					s, err = benchprog.XDPRunStats(b.t.r0.index)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return s
			}
			sink := func() benchprog.SinkCounts {
				c, err := b.sinks.counts(f)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			if _, err := b.sinks.use(f); err != nil {
				t.Fatal(err)
			}
			p0, c0 := r0(), sink()
			run, problems, err := b.measure(scCeiling, f, circFullRun)
			if err != nil {
				t.Fatal(err)
			}
			p1, c1 := r0(), sink()
			if len(problems) > 0 {
				t.Errorf("problems: %v", problems)
			}
			// Even a slow host forwards far more than this in 0.3 s.
			if run.Forwarded < 50_000 || run.Mpps <= 0 {
				t.Errorf("forwarded %d frames (%.3f Mpps) in %.2f s: the loop did not run", run.Forwarded, run.Mpps, run.Seconds)
			}
			// The router's own stack may send a stray frame to the
			// sink (MLD, ND); the benchmark's frames all carry the TTL.
			if run.Other > 5 {
				t.Errorf("%d frames at the sink without the forwarded TTL", run.Other)
			}
			// In the window, every counted frame was relayed once more.
			if run.Sent < run.Forwarded*99/100 || run.Sent > run.Forwarded+circFrames {
				t.Errorf("relayed %d in the window, forwarded %d", run.Sent, run.Forwarded)
			}
			// Over the whole run (injection, window, stop), what the
			// router's program ran on is what arrived at the sink: no
			// frame lost or counted twice on the way (but for a stray
			// frame of gen's own stack, which r0 also runs on).
			ran, got := p1.Sub(p0).Count, c1.Sub(c0).HopOK
			if ran < got || ran > got+5 {
				t.Errorf("r0's program ran %d times, the sink counted %d forwarded frames", ran, got)
			}
			if got < run.Forwarded {
				t.Errorf("the sink counted %d frames in all, fewer than the %d of the window", got, run.Forwarded)
			}
			// Stopped means stopped.
			time.Sleep(50 * time.Millisecond)
			if c2 := sink(); c2.HopOK != c1.HopOK || c2.Relayed != c1.Relayed {
				t.Errorf("frames still arrive after the run: %+v then %+v", c1, c2)
			}
		})
	}
}

// TestCirculationThroughKernelForwarding: the loop also runs when the router
// is the kernel (XDP_PASS on its ports, skb forwarding), where a generator
// relying on XDP_TX toward a peer without XDP would measure nothing.
func TestCirculationThroughKernelForwarding(t *testing.T) {
	b := newTestBench(t)
	for _, f := range b.plainFamilies() {
		undo, err := b.setup(scKernel, f)
		if err != nil {
			t.Fatal(err)
		}
		run, problems, err := b.measure(scKernel, f, circFullRun)
		if uerr := undo(); uerr != nil {
			t.Error(uerr)
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(problems) > 0 || run.Forwarded < 10_000 {
			t.Errorf("%s: forwarded %d frames in %.2f s, problems %v", f.name, run.Forwarded, run.Seconds, problems)
		}
	}
}
