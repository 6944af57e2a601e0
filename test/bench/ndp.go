package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/xdprouter/xdprouter/loader/benchprog"
)

// The NDP proxy benchmark: the generator floods r0 with Neighbor
// Solicitations for addresses in a proxied prefix; a second sink on gen's
// own port counts the Neighbor Advertisements that come back (hop limit
// 255). xdprouter answers in XDP; ndppd (Debian package, static rule) is the
// reference, the kernel in front of it in the same topology.
const (
	scNDPXdprouter = "xdprouter"
	scNDPndppd     = "ndppd"
	ndpPrefix      = "fd00:b9::/64"
	ndpGrace       = 100 * time.Millisecond // late replies (ndppd's backlog) still count
)

// ndpProxyConfig is the NDP part's and the flood part's router: r0 a LAN
// whose proxied prefix is ndpPrefix.
var ndpProxyConfig = fmt.Sprintf("wan: {interface: r1}\nlan: [{interface: r0}]\nndp-proxy: [{interface: r0, prefixes: [%q]}]\n", ndpPrefix)

type ndpRun struct {
	Sent    uint64  `json:"sent"`
	Replies uint64  `json:"replies"`
	Seconds float64 `json:"seconds"` // wall time of the run plus the grace period
	NAps    float64 `json:"na_per_second"`
}

type ndpResult struct {
	Scenario    string   `json:"scenario"`
	Runs        []ndpRun `json:"runs"`
	MedianNAps  float64  `json:"median_na_per_second"`
	Problems    []string `json:"problems,omitempty"`
	repeat      uint32
	probeNeeded bool
}

// nsFrame is a solicitation from gen for fd00:b9::5 to its solicited-node
// group: 86 bytes, as long as the advertisement that answers it, so an NS
// loop restores every frame to its own length.
func (t *topo) nsFrame() ([]byte, error) {
	target := net.ParseIP("fd00:b9::5")
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: genV6.AsSlice(), DstIP: net.ParseIP("ff02::1:ff00:5")}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	if err := ic.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: target,
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: t.g0.mac}}}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: t.g0.mac, DstMAC: net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 5}, EthernetType: layers.EthernetTypeIPv6},
		ip, ic, ns)
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type ndpBench struct {
	t     *topo
	cfg   config
	pass  *benchprog.Pass
	bpffs string
	gen   *benchprog.Generator
	sink  *benchprog.Sink
	// injector starts the NS loop when frames circulate (nil: live frames).
	injector *packetSender
}

func runNDP(ctx context.Context, t *topo, cfg config, pass *benchprog.Pass, bpffs string, circulate bool) (res []*ndpResult, ratios []ratio, err error) {
	frame, err := t.nsFrame()
	if err != nil {
		return nil, nil, fmt.Errorf("build NS: %w", err)
	}
	b := &ndpBench{t: t, cfg: cfg, pass: pass, bpffs: bpffs}
	if circulate {
		// Every NA that reaches gen goes out again as a new NS.
		if err := t.lab.Do(t.genNS, func() error {
			b.injector, err = newPacketSender(t.g0.index, frame, 32)
			return err
		}); err != nil {
			return nil, nil, err
		}
		defer b.injector.Close()
	}
	if b.gen, err = benchprog.NewGenerator(frame); err != nil {
		return nil, nil, err
	}
	defer b.gen.Close()
	// The sink on gen's port counts replies, and is also what makes the
	// veth deliver XDP_TX frames to gen at all (a veth kicks its peer
	// only when the peer runs XDP).
	if b.sink, err = benchprog.NewSink(255, frame); err != nil {
		return nil, nil, err
	}
	defer b.sink.Close()
	if err := t.lab.Do(t.genNS, func() error { return b.sink.Attach(t.g0.index) }); err != nil {
		return nil, nil, fmt.Errorf("attach reply sink to g0: %w", err)
	}
	results := map[string]*ndpResult{}
	for _, sc := range []string{scNDPXdprouter, scNDPndppd} {
		results[sc] = &ndpResult{Scenario: sc}
	}
	for round := 0; round < cfg.runs; round++ {
		for _, sc := range []string{scNDPXdprouter, scNDPndppd} {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			r := results[sc]
			run, err := b.scenario(sc, r, round)
			if err != nil {
				return nil, nil, fmt.Errorf("ndp %s round %d: %w", sc, round+1, err)
			}
			r.Runs = append(r.Runs, run)
			logf("  ndp %-9s run %d: %10.0f NA/s (%d replies to %d NS in %.2f s)", sc, round+1, run.NAps, run.Replies, run.Sent, run.Seconds)
		}
	}
	var paired []float64
	for i := range results[scNDPXdprouter].Runs {
		paired = append(paired, div(results[scNDPXdprouter].Runs[i].NAps, results[scNDPndppd].Runs[i].NAps))
	}
	for _, sc := range []string{scNDPXdprouter, scNDPndppd} {
		r := results[sc]
		var v []float64
		for _, run := range r.Runs {
			v = append(v, run.NAps)
			if run.Replies == 0 {
				r.Problems = append(r.Problems, "no Neighbor Advertisement came back")
			}
		}
		r.MedianNAps = median(v)
		res = append(res, r)
	}
	ratios = append(ratios, ratio{Name: "xdprouter/ndppd NA per second", Family: "ipv6",
		Value: div(results[scNDPXdprouter].MedianNAps, results[scNDPndppd].MedianNAps), Paired: median(paired), Target: 20})
	return res, ratios, nil
}

// scenario sets up sc, measures one run (calibrating in round 0) and
// tears down.
func (b *ndpBench) scenario(sc string, r *ndpResult, round int) (run ndpRun, err error) {
	undo, err := b.setup(sc)
	if err != nil {
		return run, err
	}
	defer func() { err = errors.Join(err, undo()) }()
	if b.injector != nil {
		return b.circulate()
	}
	if round == 0 {
		probe, err := b.measure(200_000)
		if err != nil {
			return run, err
		}
		n := float64(probe.Sent) / (probe.Seconds - ndpGrace.Seconds()) * b.cfg.seconds
		r.repeat = uint32(math.Max(200_000, math.Min(n, math.MaxUint32/2)))
	}
	return b.measure(r.repeat)
}

func (b *ndpBench) setup(sc string) (func() error, error) {
	t := b.t
	switch sc {
	case scNDPXdprouter:
		return t.applyConfig(b.cfg.xdprouter, b.bpffs, "ndp", ndpProxyConfig)
	case scNDPndppd:
		closeLinks, err := t.attachRouterPorts(b.pass.Attach)
		if err != nil {
			return nil, err
		}
		conf := filepath.Join(t.lab.RunDir(), "ndppd.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf("proxy r0 {\n  rule %s {\n    static\n  }\n}\n", ndpPrefix)), 0o600); err != nil {
			return nil, errors.Join(err, closeLinks())
		}
		cmd := t.lab.Command(t.rtrNS, "ndppd", "-c", conf)
		if err := cmd.Start(); err != nil {
			return nil, errors.Join(fmt.Errorf("start ndppd (Debian package ndppd): %w", err), closeLinks())
		}
		time.Sleep(500 * time.Millisecond) // let it open its sockets
		return func() error {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			return closeLinks()
		}, nil
	}
	return nil, fmt.Errorf("unknown ndp scenario %q", sc)
}

func (b *ndpBench) measure(n uint32) (ndpRun, error) {
	t := b.t
	run := ndpRun{Sent: uint64(n)}
	s0, err := b.sink.Counts()
	if err != nil {
		return run, err
	}
	var wall time.Duration
	err = t.lab.Do(t.genNS, func() error {
		return onCPU(b.cfg.genCPU, func() error {
			var err error
			wall, err = b.gen.Send(t.g0.index, n, b.cfg.batch)
			return err
		})
	})
	if err != nil {
		return run, err
	}
	time.Sleep(ndpGrace)
	s1, err := b.sink.Counts()
	if err != nil {
		return run, err
	}
	run.Replies = s1.HopOK - s0.HopOK
	run.Seconds = (wall + ndpGrace).Seconds()
	run.NAps = float64(run.Replies) / run.Seconds
	return run, nil
}

// circulate measures one run with NS circulating: replies counted at gen for
// cfg.seconds, plus the grace period for replies still on their way (ndppd
// answers from user space, seconds later under load).
func (b *ndpBench) circulate() (ndpRun, error) {
	var run ndpRun
	if err := startLoop(b.t, b.sink, b.injector, b.cfg.genCPU); err != nil {
		return run, err
	}
	s0, err := b.sink.Counts()
	if err != nil {
		return run, errors.Join(err, stopLoop(b.sink))
	}
	start := time.Now()
	time.Sleep(time.Duration(b.cfg.seconds * float64(time.Second)))
	s1, err := b.sink.Counts()
	wall := time.Since(start)
	if err = errors.Join(err, stopLoop(b.sink)); err != nil {
		return run, err
	}
	run.Sent = s1.Relayed - s0.Relayed
	run.Replies = s1.HopOK - s0.HopOK
	run.Seconds = wall.Seconds()
	run.NAps = float64(run.Replies) / run.Seconds
	return run, nil
}
