// Command bench measures xdprouter's forwarding against kernel forwarding and
// against a bare XDP fib-lookup forwarder, on a gen — router — sink line of
// network namespaces joined by veths (`make bench`).
//
// 64-byte UDP frames go from gen through the router to sink, where an XDP
// sink counts those that arrive forwarded. They come from BPF_PROG_TEST_RUN
// in live-frames mode where the kernel permits it, and otherwise circulate:
// the sink sends each forwarded frame back to gen's port as a fresh copy of
// the template (circulate.go).
// Every scenario runs in the same process on the same topology, interleaved,
// and the result is the ratios: absolute rates on small shared VMs are noise.
// A second part times the XDP programs alone with (non-live) test runs.
//
// It measures and reports; it does not judge speed. It exits non-zero only
// when it could not measure, or when what it measured was not forwarding
// (nothing arrived, frames arrived unmodified, xdprouter passed frames to the
// kernel).
//
//	go run ./test/bench -out bench/results [-runs 5] [-seconds 2] [-generator auto|live|circulating]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/xdprouter/xdprouter/test/netlab"
)

type config struct {
	out        string
	runs       int
	seconds    float64
	batch      uint32
	genCPU     int
	nsppRepeat uint32
	xdprouter  string
	nsppRuns   int
	parts      map[string]bool
	maxSteal   float64
	retries    int
	generator  string
}

// benchParts are the parts -parts can choose; the live forwarding part always
// runs, the others each add a few minutes.
var benchParts = []string{"swap", "nspp", "ndp", "flood"}

// chooseScenarios keeps the named scenarios, in their usual order.
func chooseScenarios(list string) ([]string, error) {
	want := map[string]bool{}
	for _, sc := range strings.Split(list, ",") {
		sc = strings.TrimSpace(sc)
		if !slices.Contains(scenarios, sc) {
			return nil, fmt.Errorf("-scenarios: unknown scenario %q (known: %s)", sc, strings.Join(scenarios, ", "))
		}
		want[sc] = true
	}
	var out []string
	for _, sc := range scenarios {
		if want[sc] {
			out = append(out, sc)
		}
	}
	return out, nil
}

func parseParts(s string) (map[string]bool, error) {
	parts := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(benchParts, p) {
			return nil, fmt.Errorf("-parts: unknown part %q (known: %s)", p, strings.Join(benchParts, ", "))
		}
		parts[p] = true
	}
	return parts, nil
}

func main() {
	var cfg config
	var batch, nsppRepeat uint
	flag.StringVar(&cfg.out, "out", "bench/results", "directory for <timestamp>.json/.md and latest.json/.md")
	flag.IntVar(&cfg.runs, "runs", 11, "rounds: timed runs per scenario and family (the median is reported)")
	flag.Float64Var(&cfg.seconds, "seconds", 1, "approximate length of one timed run")
	flag.UintVar(&batch, "batch", 64, "live-frames batch size (frames per flush)")
	flag.IntVar(&cfg.genCPU, "gen-cpu", runtime.NumCPU()-1, "CPU the generator thread is pinned to (-1: not pinned)")
	flag.UintVar(&nsppRepeat, "nspp-repeat", 1_000_000, "repetitions per ns/packet test run")
	flag.StringVar(&cfg.xdprouter, "xdprouter", "bin/xdprouter", "the xdprouter binary to attach with (`make build`)")
	flag.IntVar(&cfg.nsppRuns, "nspp-runs", 11, "test runs per program and family for ns/packet (the median is reported)")
	flag.Float64Var(&cfg.maxSteal, "max-steal", 0.02, "measure a live run again when the hypervisor stole more than this share of the generator CPU's time during it (/proc/stat steal)")
	flag.IntVar(&cfg.retries, "retries", 3, "how many times a live run is measured again for steal; the last attempt counts")
	flag.StringVar(&cfg.generator, "generator", "auto", "auto (XDP live frames where the kernel permits them, circulating frames otherwise), live or circulating")
	only := flag.String("scenarios", "", "live scenarios to run, from "+strings.Join(scenarios, ", ")+" (default all; ratios need both of their scenarios)")
	parts := flag.String("parts", strings.Join(benchParts, ","), "parts to run besides live forwarding, from "+strings.Join(benchParts, ", ")+
		" (xdprouter and the bare forwarder swapped on one attach, ns/packet test runs, NDP proxy vs ndppd, NS flood); fewer parts for a quicker comparison of forwarding alone")
	flag.Parse()
	var err error
	if cfg.parts, err = parseParts(*parts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if *only != "" {
		if scenarios, err = chooseScenarios(*only); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
	}
	cfg.batch, cfg.nsppRepeat = uint32(batch), uint32(nsppRepeat)

	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(cfg config) (err error) {
	if cfg.runs < 1 || cfg.seconds <= 0 || cfg.batch < 1 || cfg.batch > 256 || cfg.nsppRepeat < 1 || cfg.nsppRuns < 1 {
		return errors.New("-runs and -seconds must be positive, -batch in [1, 256], -nspp-repeat and -nspp-runs positive")
	}
	if cfg.generator != "auto" && cfg.generator != "live" && cfg.generator != "circulating" {
		return fmt.Errorf("-generator: %q is not auto, live or circulating", cfg.generator)
	}
	if cfg.maxSteal < 0 || cfg.maxSteal > 1 || cfg.retries < 0 {
		return errors.New("-max-steal must be in [0, 1] and -retries not negative")
	}
	if cfg.xdprouter, err = filepath.Abs(cfg.xdprouter); err != nil {
		return err
	}
	if _, err := os.Stat(cfg.xdprouter); err != nil {
		return fmt.Errorf("xdprouter binary (build it with `make build`): %w", err)
	}
	// Ctrl-C, SIGTERM, SIGHUP or a closed output pipe (SIGPIPE would kill
	// the process outright) stop the benchmark between runs; the deferred
	// cleanup below then removes the namespaces and mounts.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer stop()

	started := time.Now().UTC()
	lab, err := netlab.New()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := lab.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	t, err := buildTopo(lab)
	if err != nil {
		return fmt.Errorf("build topology: %w", err)
	}
	fams, err := t.families()
	if err != nil {
		return err
	}

	lb, err := newLiveBench(t, fams, cfg, logf)
	if err != nil {
		return err
	}
	defer lb.Close()
	logf("live forwarding: %d runs × ~%.1f s per scenario and family", cfg.runs, cfg.seconds)
	if err := lb.run(ctx); err != nil {
		return fmt.Errorf("live forwarding: %w", err)
	}
	var swap []*swapResult
	if cfg.parts["swap"] {
		logf("swap: xdprouter and the bare forwarder swapped every %v on one attach, %d runs of %d s per family", swapSlice, cfg.runs, swapSeconds)
		if swap, err = runSwap(ctx, lb); err != nil {
			return fmt.Errorf("swap: %w", err)
		}
	}
	var nspp []*nsppResult
	if cfg.parts["nspp"] {
		logf("ns/packet: %d test runs × %d repetitions per program and family", cfg.nsppRuns, cfg.nsppRepeat)
		if nspp, err = runNsPerPacket(ctx, t, nsppFamilies(fams), cfg, lb.pass, lb.bare, lb.gens); err != nil {
			return fmt.Errorf("ns/packet: %w", err)
		}
	}
	var ndp []*ndpResult
	var ndpRatios []ratio
	if cfg.parts["ndp"] {
		logf("NDP proxy: %d runs × ~%.1f s of Neighbor Solicitations, xdprouter and ndppd", cfg.runs, cfg.seconds)
		if ndp, ndpRatios, err = runNDP(ctx, t, cfg, lb.pass, lb.bpffs, lb.circ != nil); err != nil {
			return fmt.Errorf("ndp proxy: %w", err)
		}
	}
	var flood *floodResult
	if cfg.parts["flood"] {
		logf("NS flood: forwarding with and without %d NS/s; NDP reply rate with one and two generators", floodRate)
		if flood, err = runFlood(ctx, lb); err != nil {
			return fmt.Errorf("ns flood: %w", err)
		}
	}

	rep := newReport(cfg, started, time.Since(started), lb, nspp)
	rep.NDP, rep.NDPRatios, rep.Flood = ndp, ndpRatios, flood
	rep.Swap = swap
	text := rep.text()
	fmt.Print(text)
	files, err := rep.write(cfg.out)
	if err != nil {
		return err
	}
	logf("wrote %v", files)
	if n := rep.problemCount(); n > 0 {
		return fmt.Errorf("%d check(s) failed: the figures above may not measure forwarding", n)
	}
	return nil
}
