// Package benchprog loads the benchmark's own XDP programs (generator, sink
// and circulator, XDP_PASS baseline, wire, bare forwarder) and runs BPF_PROG_TEST_RUN. Its API
// speaks ifindexes, frames and counts, so test/bench does not import
// cilium/ebpf (only loader/ does).
//
// Attaching and test runs resolve ifindexes in the calling thread's network
// namespace: call them from inside netlab.Lab.Do for the right namespace.
package benchprog

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// MaxFrame is the largest template the generator holds (GEN_MAX_FRAME).
const MaxFrame = 256

// XDP verdicts, as returned by test runs.
const (
	XDPAborted  = 0
	XDPDrop     = 1
	XDPPass     = 2
	XDPTx       = 3
	XDPRedirect = 4
)

// xdpMD is struct xdp_md as BPF_PROG_TEST_RUN takes it for context: data is
// the metadata length (0), data_end the frame length, and ingress_ifindex
// binds the run to a device, which fib lookups and XDP_TX need.
type xdpMD struct {
	Data           uint32
	DataEnd        uint32
	DataMeta       uint32
	IngressIfindex uint32
	RxQueueIndex   uint32
	EgressIfindex  uint32
}

// Link is an XDP program attached to an interface; Close detaches it.
type Link struct{ l link.Link }

// Close detaches the program.
func (l *Link) Close() error {
	if l == nil || l.l == nil {
		return nil
	}
	if err := l.l.Close(); err != nil {
		return fmt.Errorf("detach xdp link: %w", err)
	}
	return nil
}

// attach uses native (driver) mode: veth supports it, and generic mode would
// measure the skb path instead of XDP.
func attach(p *ebpf.Program, ifindex int) (*Link, error) {
	l, err := link.AttachXDP(link.XDPOptions{Program: p, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		return nil, fmt.Errorf("attach %s to ifindex %d: %w", p, ifindex, err)
	}
	return &Link{l: l}, nil
}

// setTemplate sets restore.h's template in spec before load.
func setTemplate(spec *ebpf.CollectionSpec, frame []byte) error {
	if len(frame) < 16 || len(frame) > MaxFrame {
		return fmt.Errorf("frame of %d bytes: want [16, %d]", len(frame), MaxFrame)
	}
	var words [MaxFrame / 8]uint64
	for i, c := range frame {
		words[i/8] |= uint64(c) << (8 * (i % 8)) // bpfel: little endian
	}
	if err := spec.Variables["frame"].Set(words); err != nil {
		return fmt.Errorf("set template: %w", err)
	}
	if err := spec.Variables["frame_len"].Set(uint32(len(frame))); err != nil {
		return fmt.Errorf("set template length: %w", err)
	}
	return nil
}

// Generator sends one frame template with live frames, and doubles as the
// harness for ns/packet measurements of other programs.
type Generator struct {
	objs  genObjects
	frame []byte
}

// NewGenerator loads the generator with frame as its template, of 16 to
// MaxFrame bytes.
func NewGenerator(frame []byte) (*Generator, error) {
	spec, err := loadGen()
	if err != nil {
		return nil, err
	}
	if err := setTemplate(spec, frame); err != nil {
		return nil, fmt.Errorf("generator: %w", err)
	}
	g := &Generator{frame: append([]byte(nil), frame...)}
	if err := spec.LoadAndAssign(&g.objs, nil); err != nil {
		return nil, fmt.Errorf("load generator: %w", err)
	}
	return g, nil
}

// Close unloads the generator.
func (g *Generator) Close() error { return g.objs.Close() }

// Send transmits packets copies of the template out of ifindex (which must be
// in the calling thread's namespace), batch frames per flush, and returns the
// wall time the kernel took. Frames the far side could not take are lost
// silently, so count what arrives rather than what was sent. The wall time
// includes the kernel's XDP dispatcher switch before and after the run (RCU
// waits, some 20 ms), during which no frame flows.
func (g *Generator) Send(ifindex int, packets, batch uint32) (time.Duration, error) {
	opts := &ebpf.RunOptions{
		Data:      g.frame,
		Context:   xdpMD{DataEnd: uint32(len(g.frame)), IngressIfindex: uint32(ifindex)},
		Repeat:    packets,
		Flags:     unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		BatchSize: batch,
	}
	start := time.Now()
	ret, err := g.objs.XdpGen.Run(opts)
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("live-frames run on ifindex %d: %w", ifindex, err)
	}
	if ret != 0 {
		// The live run reports 0; anything else means the kernel refused.
		return d, fmt.Errorf("live-frames run on ifindex %d returned %d", ifindex, ret)
	}
	return d, nil
}

// TestResult is one non-live BPF_PROG_TEST_RUN.
type TestResult struct {
	Verdict uint32
	// KernelPerRun is the kernel's own figure (integer nanoseconds, time
	// spent running divided by repeat; rescheduling excluded). The
	// syscall's wall time is no substitute: for repeat > 1 the kernel
	// switches the XDP dispatcher to the program and back, waiting for RCU
	// each time (some 20 ms here).
	KernelPerRun time.Duration
	Repeat       uint32
	Out          []byte // the frame after the last run
	// Interrupted counts runs a signal cut short and TestRun did again:
	// the program ran part of their repetitions too (its counters show
	// them), up to Repeat each.
	Interrupted int
}

// Measure runs the program whose file descriptor is targetFD repeat times on
// the template, restoring the template before each run (xdp_gen_call tail
// calls into it), bound to ingress ifindex. The result includes the cost of
// the restore and the tail call; measure with an XDP_PASS program as target to
// know it.
func (g *Generator) Measure(targetFD, ifindex int, repeat uint32) (TestResult, error) {
	if err := g.objs.GenTarget.Put(uint32(0), uint32(targetFD)); err != nil {
		return TestResult{}, fmt.Errorf("put program fd %d into gen_target: %w", targetFD, err)
	}
	return TestRun(g.objs.XdpGenCall.FD(), g.frame, ifindex, repeat)
}

// Sink counts and drops every frame arriving on the interfaces it is
// attached to; with a template and a relay port it is also the circulating
// generator (bpf/bench/xdp_sink.c).
type Sink struct {
	objs  sinkObjects
	links []*Link
}

// SinkCounts are a sink's counters summed over CPUs.
type SinkCounts struct {
	Packets uint64
	HopOK   uint64 // frames whose TTL / hop limit was the expected one
	Relayed uint64 // of those, sent on again as the template
}

// Sub is c - o, counter by counter.
func (c SinkCounts) Sub(o SinkCounts) SinkCounts {
	return SinkCounts{Packets: c.Packets - o.Packets, HopOK: c.HopOK - o.HopOK, Relayed: c.Relayed - o.Relayed}
}

// NewSink loads a sink that counts frames with TTL/hop limit expectHops as
// well-formed forwarded frames. With a template (nil: none) it relays each
// such frame as a fresh copy of the template once Relay names a port; the
// template is 16 to MaxFrame bytes.
func NewSink(expectHops uint8, template []byte) (*Sink, error) {
	spec, err := loadSink()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables["expect_hops"].Set(expectHops); err != nil {
		return nil, fmt.Errorf("set sink expect_hops: %w", err)
	}
	if template != nil {
		if err := setTemplate(spec, template); err != nil {
			return nil, fmt.Errorf("sink: %w", err)
		}
	}
	s := &Sink{}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		return nil, fmt.Errorf("load sink: %w", err)
	}
	return s, nil
}

// Attach attaches the sink to ifindex in the calling thread's namespace; it
// stays attached until Close.
func (s *Sink) Attach(ifindex int) error {
	l, err := attach(s.objs.XdpSink, ifindex)
	if err != nil {
		return err
	}
	s.links = append(s.links, l)
	return nil
}

// Relay makes the sink send the frames it counts as forwarded on as its
// template, out of ifindex, resolved in the calling thread's namespace (the
// devmap keeps the device, so the sink may run in another one).
func (s *Sink) Relay(ifindex int) error {
	if err := s.objs.SinkRelay.Put(uint32(0), uint32(ifindex)); err != nil {
		return fmt.Errorf("sink relay to ifindex %d: %w", ifindex, err)
	}
	return nil
}

// StopRelay makes the sink drop everything again; frames still circulating
// are dropped where they next arrive.
func (s *Sink) StopRelay() error {
	if err := s.objs.SinkRelay.Delete(uint32(0)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("stop sink relay: %w", err)
	}
	return nil
}

// Counts reads the counters.
func (s *Sink) Counts() (SinkCounts, error) {
	var perCPU []sinkSinkCount
	if err := s.objs.SinkCounts.Lookup(uint32(0), &perCPU); err != nil {
		return SinkCounts{}, fmt.Errorf("read sink counters: %w", err)
	}
	var c SinkCounts
	for _, v := range perCPU {
		c.Packets += v.Packets
		c.HopOK += v.HopOk
		c.Relayed += v.Relayed
	}
	return c, nil
}

// Close detaches and unloads the sink.
func (s *Sink) Close() error {
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	errs = append(errs, s.objs.Close())
	return errors.Join(errs...)
}

// Pass is the XDP_PASS-only program.
type Pass struct{ objs passObjects }

// NewPass loads it.
func NewPass() (*Pass, error) {
	p := &Pass{}
	if err := loadPassObjects(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("load xdp_pass: %w", err)
	}
	return p, nil
}

// Attach attaches it to ifindex in the calling thread's namespace.
func (p *Pass) Attach(ifindex int) (*Link, error) { return attach(p.objs.XdpPass, ifindex) }

// FD is the program's file descriptor, for Generator.Measure.
func (p *Pass) FD() int { return p.objs.XdpPass.FD() }

// Close unloads it (attached links keep it alive until they close).
func (p *Pass) Close() error { return p.objs.Close() }

// BareForwarder is the yardstick fib-lookup forwarder.
type BareForwarder struct{ objs bareFwdObjects }

// NewBareForwarder loads it with an empty egress port map.
func NewBareForwarder() (*BareForwarder, error) {
	b := &BareForwarder{}
	if err := loadBareFwdObjects(&b.objs, nil); err != nil {
		return nil, fmt.Errorf("load xdp_bare_fwd: %w", err)
	}
	return b, nil
}

// AddPort allows redirects to ifindex, resolved in the calling thread's
// namespace (as devmaps do).
func (b *BareForwarder) AddPort(ifindex int) error {
	if err := b.objs.BareTxPorts.Put(uint32(ifindex), uint32(ifindex)); err != nil {
		return fmt.Errorf("add ifindex %d to bare_tx_ports: %w", ifindex, err)
	}
	return nil
}

// Attach attaches it to ifindex in the calling thread's namespace.
func (b *BareForwarder) Attach(ifindex int) (*Link, error) {
	return attach(b.objs.XdpBareFwd, ifindex)
}

// FD is the program's file descriptor, for Generator.Measure.
func (b *BareForwarder) FD() int { return b.objs.XdpBareFwd.FD() }

// Close unloads it.
func (b *BareForwarder) Close() error { return b.objs.Close() }

// Wire is the harness's ceiling (bpf/bench/xdp_wire.c): it decrements the
// TTL and redirects every frame to one port.
type Wire struct{ objs wireObjects }

// NewWire loads it with no output port.
func NewWire() (*Wire, error) {
	w := &Wire{}
	if err := loadWireObjects(&w.objs, nil); err != nil {
		return nil, fmt.Errorf("load xdp_wire: %w", err)
	}
	return w, nil
}

// SetOut sends every frame to ifindex, resolved in the calling thread's
// namespace.
func (w *Wire) SetOut(ifindex int) error {
	if err := w.objs.WireOut.Put(uint32(0), uint32(ifindex)); err != nil {
		return fmt.Errorf("wire out to ifindex %d: %w", ifindex, err)
	}
	return nil
}

// Attach attaches it to ifindex in the calling thread's namespace.
func (w *Wire) Attach(ifindex int) (*Link, error) { return attach(w.objs.XdpWire, ifindex) }

// Close unloads it.
func (w *Wire) Close() error { return w.objs.Close() }

// Detach detaches the sink from every interface, keeping it loaded.
func (s *Sink) Detach() error {
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	s.links = nil
	return errors.Join(errs...)
}
