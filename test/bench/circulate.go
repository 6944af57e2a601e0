package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/xdprouter/xdprouter/loader/benchprog"
	"golang.org/x/sys/unix"
)

// Circulating frames: the generator for kernels that refuse XDP live frames
// (BPF_F_TEST_XDP_LIVE_FRAMES is EPERM on 6.18 here, for any program).
//
// A sink that counts a frame as forwarded rewrites it into a fresh copy of
// the family's template and redirects it, through a devmap entry that holds
// gen's port g0, back out of g0 towards the router (bpf/bench/xdp_sink.c). A
// few hundred frames injected once through an AF_PACKET socket on g0 then go
// round gen -> router -> sink -> gen at the speed of the slowest stage, which
// is the router. The whole loop runs in softirq on the CPU the frames were
// injected from: a veth schedules its peer's NAPI on the sending CPU, and a
// devmap redirect flushes on the CPU that redirected. So the figures are
// single-core forwarding rates, as the live frames' were. The router sees
// exactly what it saw from live frames: the template, arriving on r0 through
// g0's ndo_xdp_xmit.
//
// Only forwarded frames with the expected TTL are relayed, so the loop
// cannot circulate anything else; a frame lost anywhere leaves the loop for
// good, which is why the injection is repeated for every run and the
// harness checks that the rate held up to the end of the window.

// circFrames is how many frames circulate: enough that no stage waits for
// work (a veth NAPI polls up to 64 frames at a time, a devmap flushes 16),
// few enough that one veth's 256-frame ring cannot overflow even if all of
// them sit in it.
const circFrames = 192

// circulator injects a family's frames and stops them.
type circulator struct {
	t      *topo
	cpu    int // the CPU the loop runs on (the generator's)
	sink   *sinkPort
	sender map[string]*packetSender
	on     *benchprog.Sink // relaying now, nil when stopped
}

func newCirculator(t *topo, sink *sinkPort, fams []family, cpu int) (*circulator, error) {
	c := &circulator{t: t, cpu: cpu, sink: sink, sender: map[string]*packetSender{}}
	for _, f := range fams {
		var s *packetSender
		err := t.lab.Do(t.genNS, func() error {
			var err error
			s, err = newPacketSender(t.g0.index, f.frame, 32)
			return err
		})
		if err != nil {
			c.close()
			return nil, fmt.Errorf("%s injector: %w", f.name, err)
		}
		c.sender[f.name] = s
	}
	return c, nil
}

func (c *circulator) close() {
	for _, s := range c.sender {
		s.Close()
	}
}

// start puts f's sink on s0, makes it relay to g0 and injects circFrames
// frames from the loop's CPU; it returns once they circulate.
func (c *circulator) start(f family) error {
	if c.on != nil {
		return errors.New("circulation already running")
	}
	s, err := c.sink.use(f)
	if err != nil {
		return err
	}
	if err := startLoop(c.t, s, c.sender[f.name], c.cpu); err != nil {
		return err
	}
	c.on = s
	return nil
}

// stop ends the running circulation.
func (c *circulator) stop() error {
	if c.on == nil {
		return nil
	}
	err := stopLoop(c.on)
	c.on = nil
	return err
}

// startLoop makes sink relay what it counts out of g0 (the devmap entry
// resolves g0 in gen's namespace, wherever the sink runs) and injects
// circFrames frames through sender from each of cpus, so that one loop runs
// on each; it returns once they circulate. On error nothing circulates.
func startLoop(t *topo, sink *benchprog.Sink, sender *packetSender, cpus ...int) error {
	if err := t.lab.Do(t.genNS, func() error { return sink.Relay(t.g0.index) }); err != nil {
		return err
	}
	for _, cpu := range cpus {
		err := t.lab.Do(t.genNS, func() error {
			return onCPU(cpu, func() error { return inject(sender, circFrames) })
		})
		if err != nil {
			return errors.Join(fmt.Errorf("inject on CPU %d: %w", cpu, err), stopLoop(sink))
		}
	}
	// Settle: the injection ran in the loop's CPU's softirq, slice by
	// slice; the loop is at full rate once every frame is in it.
	time.Sleep(circSettle)
	return nil
}

// inject sends n frames, retrying while the device pushes back.
func inject(sender *packetSender, n int) error {
	deadline := time.Now().Add(2 * time.Second)
	for left := n; left > 0; {
		k, err := sender.send(min(left, 32))
		if err != nil {
			return err
		}
		left -= k
		if k == 0 && time.Now().After(deadline) {
			return fmt.Errorf("g0 took %d of %d frames", n-left, n)
		}
	}
	return nil
}

// circSettle is the pause between injection and the timed window.
const circSettle = 20 * time.Millisecond

// stopLoop deletes the relay entry; every frame is dropped where it next
// arrives at the sink, within microseconds.
func stopLoop(sink *benchprog.Sink) error {
	err := sink.StopRelay()
	time.Sleep(5 * time.Millisecond)
	return err
}

// sinkPort keeps one family's sink at a time attached to s0: each family
// has its own (its template is read-only data of the program).
type sinkPort struct {
	t     *topo
	sinks map[string]*benchprog.Sink
	cur   string
}

func newSinkPort(t *topo, fams []family) (*sinkPort, error) {
	p := &sinkPort{t: t, sinks: map[string]*benchprog.Sink{}}
	for _, f := range fams {
		s, err := benchprog.NewSink(startTTL-1, f.frame)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("%s sink: %w", f.name, err)
		}
		p.sinks[f.name] = s
	}
	return p, nil
}

// use attaches f's sink to s0 (detaching the one before) and returns it.
func (p *sinkPort) use(f family) (*benchprog.Sink, error) {
	s := p.sinks[f.name]
	if p.cur == f.name {
		return s, nil
	}
	if p.cur != "" {
		if err := p.sinks[p.cur].Detach(); err != nil {
			return nil, err
		}
		p.cur = ""
	}
	if err := p.t.lab.Do(p.t.sinkNS, func() error { return s.Attach(p.t.s0.index) }); err != nil {
		return nil, fmt.Errorf("attach %s sink to s0: %w", f.name, err)
	}
	p.cur = f.name
	return s, nil
}

// counts reads the counters of f's sink.
func (p *sinkPort) counts(f family) (benchprog.SinkCounts, error) { return p.sinks[f.name].Counts() }

func (p *sinkPort) close() {
	for _, s := range p.sinks {
		s.Close()
	}
}

// circFullRun is what a full run's frame count reads as in circulation,
// where runs are timed: measure(sc, f, n) circulates for n/circFullRun of
// cfg.seconds (the warm-ups ask for a tenth or a twentieth of a run).
const circFullRun = 1_000_000

// circulate runs f's frames for secs and returns the window's wall time and
// the sink's counters and the loop CPU's ticks at both ends of it. The
// window starts after the injection has settled and ends before the relay
// stops, so it holds only full-rate circulation.
func (b *liveBench) circulate(f family, secs float64) (wall time.Duration, s0, s1 benchprog.SinkCounts, t0, t1 cpuTicks, err error) {
	if err = b.circ.start(f); err != nil {
		return
	}
	defer func() { err = errors.Join(err, b.circ.stop()) }()
	if s0, err = b.sinks.counts(f); err != nil {
		return
	}
	if t0, err = readCPUTicks(b.cfg.genCPU); err != nil {
		return
	}
	start := time.Now()
	time.Sleep(time.Duration(secs * float64(time.Second)))
	if s1, err = b.sinks.counts(f); err != nil {
		return
	}
	wall = time.Since(start)
	t1, err = readCPUTicks(b.cfg.genCPU)
	return
}

// chooseGenerator probes whether the kernel runs XDP live frames; it
// returns nil if so (the live-frames generator is used), otherwise the
// circulator. EPERM is what 6.18 answers here; any other failure of the
// probe is an error, not a reason to switch.
func chooseGenerator(t *topo, sinks *sinkPort, fams []family, cfg config, g *benchprog.Generator) (*circulator, error) {
	if cfg.generator == "circulating" {
		return newCirculator(t, sinks, fams, cfg.genCPU)
	}
	err := t.lab.Do(t.genNS, func() error {
		_, err := g.Send(t.g0.index, 1, 1)
		return err
	})
	switch {
	case err == nil:
		return nil, nil
	case errors.Is(err, unix.EPERM) && cfg.generator == "auto":
		logf("generator: XDP live frames refused (%v); frames circulate instead", err)
		return newCirculator(t, sinks, fams, cfg.genCPU)
	}
	return nil, fmt.Errorf("probe XDP live frames: %w", err)
}

// inSituSeconds is the length of the separate window in which run-time
// statistics are on: they cost some 30 ns per program run here, so the
// throughput window runs without them.
const inSituSeconds = 0.25

// inSitu measures the ns per run of the XDP program on r0 (where every
// benchmark frame enters the router) under the scenario's own traffic, from
// the kernel's BPF run-time statistics, in a window of its own.
func (b *liveBench) inSitu(sc string, f family) (benchprog.RunStats, error) {
	var st benchprog.RunStats
	stats, err := benchprog.EnableRunStats()
	if err != nil {
		return st, err
	}
	defer stats.Close()
	read := func() (s benchprog.RunStats, err error) {
		err = b.t.lab.Do(b.t.rtrNS, func() error {
			s, err = benchprog.XDPRunStats(b.t.r0.index)
			return err
		})
		return s, err
	}
	s0, err := read()
	if err != nil {
		return st, err
	}
	if _, _, err := b.measure(sc, f, uint32(inSituSeconds/b.cfg.seconds*float64(b.repeat[key(sc, f.name)]))); err != nil {
		return st, err
	}
	s1, err := read()
	if err != nil {
		return st, err
	}
	return s1.Sub(s0), nil
}
