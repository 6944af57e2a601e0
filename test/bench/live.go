package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/loader/benchprog"
	"golang.org/x/sys/unix"
)

// Scenario names, in the order they run within a round.
const (
	scKernel    = "kernel"
	scBare      = "bare"
	scXdprouter = "xdprouter"
	// xdprouter with an ipip6 tunnel (tunnel.go): IPv4 from gen
	// encapsulated to sink, ipip6 from gen decapsulated to sink.
	scEncap = "encap"
	scDecap = "decap"
	// NPTv6 (IPv6 only, npt.go): the kernel with ip6tables SNPT, and
	// xdprouter with an npt rule, on the same frames.
	scKernelNPT = "kernel-npt"
	scNPT       = "xdprouter-npt"
)

var scenarios = []string{scCeiling, scKernel, scKernelCT, scBare, scXdprouter, scXdprouterCT, scEncap, scKernelNAT44, scNAT44, scDecap, scKernelNPT, scNPT,
	scKernelVXLANEncap, scVXLANEncap, scKernelVXLANEncapNPT, scIP6tVXLANEncapNPT, scVXLANEncapNPT, scKernelVXLANDecap, scVXLANDecap,
	scTC6in4Encap, sc6in4Encap, scTC6in4Decap, sc6in4Decap}

// xdprouterCounter is the counter that must count every frame forwarded in
// an xdprouter scenario ("" for the others).
func xdprouterCounter(sc string, f family) string {
	switch sc {
	case scXdprouter, scXdprouterCT, scEncap, scDecap, scVXLANEncap, scVXLANDecap, sc6in4Encap, sc6in4Decap:
		return f.fwdCounter
	case scNAT44:
		return "fwd_nat44_snat"
	case scNPT:
		return "fwd_npt_snpt"
	}
	if c := vxlanNPTCounter(sc); c != "" {
		return c
	}
	return sixin4Counter(sc)
}

// liveRun is one timed live-frames run.
type liveRun struct {
	Sent      uint64  `json:"sent"`
	Forwarded uint64  `json:"forwarded"` // frames at the sink with TTL/hop limit decremented once
	Other     uint64  `json:"other"`     // anything else the sink saw
	Seconds   float64 `json:"seconds"`
	Mpps      float64 `json:"mpps"`
	// Generator is "circulating" for circulating frames (Sent is then what
	// the sink relayed in the window); empty for live frames.
	Generator string `json:"generator,omitempty"`
	// InSituNs is the XDP program on r0's mean run time under this
	// scenario's traffic, from BPF run-time statistics taken in a window
	// of its own right after the timed one.
	InSituNs float64 `json:"in_situ_ns"`
	// XDPForwarded and KernelPassed are xdprouter's own counters (fwd_* of
	// the family, and every pass_* counter) for the xdprouter scenario.
	XDPForwarded uint64            `json:"xdp_forwarded,omitempty"`
	KernelPassed uint64            `json:"kernel_passed,omitempty"`
	PassReasons  map[string]uint64 `json:"pass_reasons,omitempty"`
	// CPUShare is the generator thread's CPU time over the wall time. The
	// whole chain (generator, both veth hops, router, sink) runs in that
	// thread's softirqs, so well below 1 means something else had the CPU
	// and the run is slower than the path.
	CPUShare float64 `json:"cpu_share"`
	// Steal is the share of the generator CPU's time the hypervisor gave
	// to other guests during the run (/proc/stat); Retries how many
	// earlier attempts at this run were discarded for too much of it.
	Steal   float64 `json:"steal"`
	Retries int     `json:"retries,omitempty"`
}

// liveResult is one scenario × family.
type liveResult struct {
	Scenario   string    `json:"scenario"`
	Family     string    `json:"family"`
	Runs       []liveRun `json:"runs"`
	MedianMpps float64   `json:"median_mpps"`
	// MedianInSituNs is the median of the runs' InSituNs.
	MedianInSituNs float64  `json:"median_in_situ_ns"`
	Problems       []string `json:"problems,omitempty"`
}

type liveBench struct {
	t       *topo
	fams    []family
	cfg     config
	sinks   *sinkPort
	circ    *circulator // nil when live frames generate
	pass    *benchprog.Pass
	bare    *benchprog.BareForwarder
	wire    *benchprog.Wire
	gens    map[string]*benchprog.Generator
	bpffs   string // xdprouter's --bpffs for the xdprouter scenario
	repeat  map[string]uint32
	results map[string]*liveResult
	logf    func(string, ...any)
}

func newLiveBench(t *topo, fams []family, cfg config, logf func(string, ...any)) (*liveBench, error) {
	b := &liveBench{t: t, fams: fams, cfg: cfg, logf: logf,
		gens: map[string]*benchprog.Generator{}, repeat: map[string]uint32{}, results: map[string]*liveResult{}}
	var err error
	if b.sinks, err = newSinkPort(t, fams); err != nil {
		return nil, err
	}
	if b.pass, err = benchprog.NewPass(); err != nil {
		b.Close()
		return nil, err
	}
	if b.bare, err = benchprog.NewBareForwarder(); err != nil {
		b.Close()
		return nil, err
	}
	if b.wire, err = benchprog.NewWire(); err != nil {
		b.Close()
		return nil, err
	}
	// Devmap entries resolve the ifindex in the caller's namespace.
	err = t.lab.Do(t.rtrNS, func() error {
		for _, idx := range []int{t.r0.index, t.r1.index} {
			if err := b.bare.AddPort(idx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, err
	}
	for _, f := range fams {
		g, err := benchprog.NewGenerator(f.frame)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("%s generator: %w", f.name, err)
		}
		b.gens[f.name] = g
	}
	if b.circ, err = chooseGenerator(t, b.sinks, fams, cfg, b.gens[fams[0].name]); err != nil {
		b.Close()
		return nil, err
	}
	mnt, err := t.lab.BPFFS("xdprouter")
	if err != nil {
		b.Close()
		return nil, err
	}
	// A directory below the mount: detaching the last interface removes the
	// directory, and would unmount it if it were the mount point itself.
	b.bpffs = filepath.Join(mnt, "r")
	for _, sc := range scenarios {
		for _, f := range fams {
			if applies(sc, f) {
				b.results[key(sc, f.name)] = &liveResult{Scenario: sc, Family: f.name}
			}
		}
	}
	return b, nil
}

func key(sc, fam string) string { return sc + "/" + fam }

// Close unloads the programs; the lab's Close removes the namespaces.
func (b *liveBench) Close() {
	for _, g := range b.gens {
		g.Close()
	}
	if b.bare != nil {
		b.bare.Close()
	}
	if b.wire != nil {
		b.wire.Close()
	}
	if b.pass != nil {
		b.pass.Close()
	}
	if b.circ != nil {
		b.circ.close()
	}
	if b.sinks != nil {
		b.sinks.close()
	}
}

// run measures every scenario and family cfg.runs times, in rounds.
//
// The host's speed changes within seconds (another guest on the sibling
// hyperthread, say: the same run measures 2.9 or 4.5 Mpps), so a ratio is
// only as good as the pairing of its two runs. A round therefore runs the
// scenarios grouped by the family they are compared in (schedule), so that
// the two runs of a ratio are a program swap apart rather than half a round,
// and odd rounds run the schedule backwards, so that neither side of a
// ratio always goes first.
func (b *liveBench) run(ctx context.Context) error {
	steps := b.schedule()
	for round := 0; round < b.cfg.runs; round++ {
		for i := range steps {
			st := steps[i]
			if round%2 == 1 {
				st = steps[len(steps)-1-i]
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := b.runOne(st.sc, st.f, round); err != nil {
				return fmt.Errorf("scenario %s %s, round %d: %w", st.sc, st.f.name, round+1, err)
			}
		}
	}
	for _, r := range b.results {
		var mpps, ns []float64
		for _, run := range r.Runs {
			mpps = append(mpps, run.Mpps)
			ns = append(ns, run.InSituNs)
		}
		r.MedianMpps = median(mpps)
		r.MedianInSituNs = median(ns)
	}
	return nil
}

type step struct {
	sc string
	f  family
}

// schedule is one round's order: for IPv4 and then IPv6, every scenario
// that runs the family or the tunnel family compared with it (encap with
// IPv4 forwarding, decap with IPv6), in the order of scenarios.
func (b *liveBench) schedule() []step {
	var steps []step
	for _, base := range []string{"ipv4", "ipv6"} {
		for _, sc := range scenarios {
			for _, f := range b.fams {
				if applies(sc, f) && comparedAs(f) == base {
					steps = append(steps, step{sc, f})
				}
			}
		}
	}
	return steps
}

// comparedAs is the plain family a family's ratios compare it with.
func comparedAs(f family) string {
	switch f.only {
	case scEncap:
		return "ipv4"
	case scDecap, scVXLANEncap, scVXLANDecap, sc6in4Encap, sc6in4Decap:
		return "ipv6"
	}
	return f.name
}

// runOne puts sc's programs on the router, measures f once and takes them
// off again.
func (b *liveBench) runOne(sc string, f family, round int) (err error) {
	undo, err := b.setup(sc, f)
	if err != nil {
		return err
	}
	defer func() {
		if uerr := undo(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	k := key(sc, f.name)
	if round == 0 {
		// Warm-up, and the rate that sizes the timed runs.
		n, err := b.calibrate(sc, f)
		if err != nil {
			return err
		}
		b.repeat[k] = n
	} else if _, _, err := b.measure(sc, f, b.repeat[k]/10); err != nil {
		// An untimed tenth of a run first, as the calibration is in
		// round 1: right after the scenario's programs are swapped in,
		// caches are cold and the swap's deferred work (RCU frees of
		// the old programs) is still running on the CPUs.
		return fmt.Errorf("warm-up: %w", err)
	}
	run, problems, err := b.measureSettled(sc, f, b.repeat[k])
	if err != nil {
		return err
	}
	if st, err := b.inSitu(sc, f); err != nil {
		return fmt.Errorf("in-situ ns/packet: %w", err)
	} else {
		run.InSituNs = math.Round(st.NsPerRun()*10) / 10
	}
	r := b.results[k]
	r.Runs = append(r.Runs, run)
	for _, p := range problems {
		r.Problems = append(r.Problems, fmt.Sprintf("run %d: %s", round+1, p))
	}
	b.logf("  %-9s %s run %d: %7.3f Mpps (%d of %d frames in %.2f s, cpu share %.2f, steal %.3f, retries %d)%s",
		sc, f.name, round+1, run.Mpps, run.Forwarded, run.Sent, run.Seconds, run.CPUShare, run.Steal, run.Retries,
		problemSuffix(problems))
	return nil
}

func problemSuffix(p []string) string {
	if len(p) == 0 {
		return ""
	}
	return fmt.Sprintf("  PROBLEM: %v", p)
}

// setup puts the scenario's programs on the router's interfaces and returns
// what takes them off again.
func (b *liveBench) setup(sc string, f family) (func() error, error) {
	t := b.t
	// Every scenario starts from an empty conntrack table, as after a
	// boot: an entry an earlier scenario left for the same tuple (the
	// encap scenario's flow is kernel-nat44's, without NAT) would decide
	// this one's NAT and gate verdicts.
	if _, err := t.lab.Exec(t.rtrNS, "conntrack", "-F"); err != nil {
		return nil, fmt.Errorf("conntrack -F (Debian package conntrack): %w", err)
	}
	switch sc {
	case scCeiling:
		return b.setupCeiling()
	case scKernelCT:
		return b.setupKernelCT(f)
	case scKernelNAT44, scNAT44:
		return b.setupTunnel(sc, f)
	case scKernel:
		return t.attachRouterPorts(b.pass.Attach)
	case scBare:
		return t.attachRouterPorts(b.bare.Attach)
	case scXdprouter:
		// The real CLI, as a user would run it on the router; ungated by
		// name: the yardstick of the forward path itself (no ruleset in
		// the namespace, so nothing is bypassed).
		return b.attachCLI("off")
	case scXdprouterCT:
		return b.setupXdprouterCT(f)
	case scEncap, scDecap:
		return b.setupTunnel(sc, f)
	case scKernelNPT, scNPT:
		return b.setupNPT(sc, f)
	case scKernelVXLANEncap, scVXLANEncap, scKernelVXLANDecap, scVXLANDecap:
		return b.setupVXLAN(sc)
	case scVXLANEncapNPT, scKernelVXLANEncapNPT, scIP6tVXLANEncapNPT:
		return b.setupVXLANNPT(sc)
	case sc6in4Encap, scTC6in4Encap, sc6in4Decap, scTC6in4Decap:
		return b.setupSixIn4(sc, f)
	}
	return nil, fmt.Errorf("unknown scenario %q", sc)
}

// calibrate sends a short burst and returns how many frames make a run of
// cfg.seconds at the rate seen.
func (b *liveBench) calibrate(sc string, f family) (uint32, error) {
	const probe = 500_000
	if b.circ != nil {
		return circFullRun, nil // circulation is timed, not counted
	}
	run, _, err := b.measure(sc, f, probe)
	if err != nil {
		return 0, fmt.Errorf("calibrate: %w", err)
	}
	rate := float64(run.Sent) / run.Seconds
	n := rate * b.cfg.seconds
	return uint32(math.Max(probe, math.Min(n, math.MaxUint32/2))), nil
}

// measureSettled measures a run again, up to cfg.retries times, while the
// hypervisor stole more than cfg.maxSteal of the generator CPU's time: such a
// run measures the neighbours' load, not the path, and one of them in a
// round skews that round's ratios by as much as the differences measured.
// The last attempt counts whatever its steal, and says so.
func (b *liveBench) measureSettled(sc string, f family, n uint32) (liveRun, []string, error) {
	for attempt := 0; ; attempt++ {
		run, problems, err := b.measure(sc, f, n)
		if err != nil || run.Steal <= b.cfg.maxSteal || attempt >= b.cfg.retries {
			run.Retries = attempt
			return run, problems, err
		}
		b.logf("  %-9s %s: steal %.3f above %.3f, measuring again", sc, f.name, run.Steal, b.cfg.maxSteal)
	}
}

// measure sends n frames and counts what reaches the sink, forwarded.
func (b *liveBench) measure(sc string, f family, n uint32) (liveRun, []string, error) {
	t := b.t
	run := liveRun{Sent: uint64(n)}
	var before, after map[string]uint64
	var err error
	counter := xdprouterCounter(sc, f)
	if counter != "" {
		if before, err = xdprouterCounters(b.bpffs); err != nil {
			return run, nil, err
		}
	}
	var snpt0 uint64
	if usesIP6tSNPT(sc) {
		if snpt0, err = b.snptRulePackets(); err != nil {
			return run, nil, err
		}
	}
	var wall, cpu time.Duration
	var ticks0, ticks1 cpuTicks
	var s0, s1 benchprog.SinkCounts
	if b.circ != nil {
		// n in circFullRun parts of a run of cfg.seconds.
		secs := b.cfg.seconds * float64(n) / circFullRun
		wall, s0, s1, ticks0, ticks1, err = b.circulate(f, secs)
		if err != nil {
			return run, nil, err
		}
		run.Sent = s1.Relayed - s0.Relayed
		cpu = time.Duration(float64(wall) * busyShare(ticks0, ticks1))
	} else {
		if _, err = b.sinks.use(f); err != nil {
			return run, nil, err
		}
		if s0, err = b.sinks.counts(f); err != nil {
			return run, nil, err
		}
		err = t.lab.Do(t.genNS, func() error {
			return onCPU(b.cfg.genCPU, func() error {
				c0, err := threadCPUTime()
				if err != nil {
					return err
				}
				if ticks0, err = readCPUTicks(b.cfg.genCPU); err != nil {
					return err
				}
				if wall, err = b.gens[f.name].Send(t.g0.index, n, b.cfg.batch); err != nil {
					return err
				}
				if ticks1, err = readCPUTicks(b.cfg.genCPU); err != nil {
					return err
				}
				c1, err := threadCPUTime()
				cpu = c1 - c0
				return err
			})
		})
		if err != nil {
			return run, nil, err
		}
		// Frames still in a veth ring when the run returns land within
		// microseconds; they were sent within the timed run.
		time.Sleep(20 * time.Millisecond)
		if s1, err = b.sinks.counts(f); err != nil {
			return run, nil, err
		}
	}
	run.Seconds = wall.Seconds()
	run.Forwarded = s1.HopOK - s0.HopOK
	run.Other = (s1.Packets - s0.Packets) - run.Forwarded
	run.Mpps = float64(run.Forwarded) / run.Seconds / 1e6
	if b.circ != nil {
		run.Generator = "circulating"
	}
	run.CPUShare = math.Round(1000*cpu.Seconds()/run.Seconds) / 1000
	run.Steal = math.Round(1000*stealShare(ticks0, ticks1)) / 1000

	var problems []string
	if b.circ != nil && run.Forwarded > 0 && s1.Relayed-s0.Relayed < run.Forwarded*99/100 {
		problems = append(problems, fmt.Sprintf("the sink relayed only %d of %d forwarded frames", s1.Relayed-s0.Relayed, run.Forwarded))
	}
	if run.Forwarded == 0 {
		problems = append(problems, "nothing forwarded reached the sink")
	}
	if run.Other > run.Forwarded/100 {
		problems = append(problems, fmt.Sprintf("%d frames at the sink without the expected TTL/hop limit %d", run.Other, startTTL-1))
	}
	if sc == scKernelNAT44 || sc == scNAT44 {
		if p := b.checkMasqueraded(); p != "" {
			problems = append(problems, p)
		}
	}
	if usesIP6tSNPT(sc) {
		snpt1, err := b.snptRulePackets()
		if err != nil {
			return run, nil, err
		}
		if snpt1-snpt0 < run.Forwarded {
			problems = append(problems, fmt.Sprintf("the SNPT rule translated %d packets, fewer than the %d forwarded", snpt1-snpt0, run.Forwarded))
		}
	}
	if counter != "" {
		if after, err = xdprouterCounters(b.bpffs); err != nil {
			return run, nil, err
		}
		for name, v := range after {
			d := v - before[name]
			switch {
			case name == counter:
				run.XDPForwarded = d
			case strings.HasPrefix(name, "pass_") && d > 0:
				run.KernelPassed += d
				if run.PassReasons == nil {
					run.PassReasons = map[string]uint64{}
				}
				run.PassReasons[name] = d
			}
		}
		if run.XDPForwarded < run.Forwarded {
			problems = append(problems, fmt.Sprintf("xdprouter %s rose by %d, fewer than the %d frames forwarded: the kernel forwarded some",
				counter, run.XDPForwarded, run.Forwarded))
		}
		// A few stray frames (an IPv6 router solicitation from gen, say) are
		// passed rightly; the benchmark frames must not be.
		if run.KernelPassed > run.Forwarded/1000 {
			problems = append(problems, fmt.Sprintf("xdprouter passed %d frames to the kernel: %v", run.KernelPassed, run.PassReasons))
		}
	}
	return run, problems, nil
}

// xdprouterCounters reads the pinned counters of the xdprouter instance.
func xdprouterCounters(dir string) (map[string]uint64, error) {
	d, err := loader.OpenPinned(dir)
	if err != nil {
		return nil, fmt.Errorf("open xdprouter maps in %s: %w", dir, err)
	}
	defer d.Close()
	cs, err := d.Counters()
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(cs))
	for _, c := range cs {
		out[c.Name] = c.Packets
	}
	return out, nil
}

// onCPU runs fn with the calling thread pinned to cpu (negative: unpinned).
// In live-frames mode the generator's thread also runs the veth NAPI softirqs
// of the whole chain, so pinning keeps a run from migrating halfway.
func onCPU(cpu int, fn func() error) error {
	if cpu < 0 {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("get CPU affinity: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin generator to CPU %d: %w", cpu, err)
	}
	defer unix.SchedSetaffinity(0, &old)
	return fn()
}

// threadCPUTime is the calling thread's CPU time (tick-sampled here, which is
// fine over a run of a second or more).
func threadCPUTime() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("thread CPU time: %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

// stderr logging, so stdout carries only the result table.
func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// attachRouterPorts attaches a plain XDP program to both router ports and
// returns what detaches it; on error nothing stays attached.
func (t *topo) attachRouterPorts(attach func(ifindex int) (*benchprog.Link, error)) (func() error, error) {
	var links []*benchprog.Link
	detach := func() error {
		var errs []error
		for _, l := range links {
			errs = append(errs, l.Close())
		}
		return errors.Join(errs...)
	}
	err := t.lab.Do(t.rtrNS, func() error {
		for _, idx := range []int{t.r0.index, t.r1.index} {
			l, err := attach(idx)
			if err != nil {
				return err
			}
			links = append(links, l)
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(err, detach())
	}
	return detach, nil
}
