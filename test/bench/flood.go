package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xdprouter/xdprouter/loader/benchprog"
)

// The NS-flood benchmark: IPv6 forwarding through xdprouter (with the NDP
// proxy on r0) measured with and without a flood of Neighbor Solicitations
// at floodRate into the same port; and the NDP proxy's reply rate when two
// generators (one per CPU) offer solicitations at once, against the
// one-generator peak.
//
// How the harness stays out of the figures (see floodMethod for the report
// text): the flood comes from an AF_PACKET socket on the other CPU, paced in
// small sendmmsg batches, so no XDP dispatcher switch happens during the
// forwarding run (every live-frames test run does two, with RCU waits); and
// gen's port has two queues for this part, so the flood lands in r0's RX
// queue 0 on the flooder's CPU while the forwarding generator owns queue 1.
// With one queue a veth lets the sender decide where the receiver's NAPI
// runs: the flooder's CPU then takes over r0's one NAPI and the forwarding
// generator overruns the 256-frame ring it no longer drains itself.
const (
	floodRate  = 100_000 // NS per second
	floodBatch = 32      // most frames per sendmmsg (~25 every ~0.25 ms at that rate)
)

// replyRate is the NDP proxy's reply rate with one generator (the peak) and
// with two at once, with gen's port on Queues queues.
type replyRate struct {
	Queues       int       `json:"queues"`
	PeakNAps     []float64 `json:"peak_na_per_second"`    // one generator, at gen's sink
	OfferedNSps  []float64 `json:"offered_ns_per_second"` // two generators: frames sent / longest run
	DoubleNAps   []float64 `json:"double_na_per_second"`  // replies at gen's sink
	DoubleTXps   []float64 `json:"double_tx_ndp_na_per_second"`
	RingDrops    []uint64  `json:"double_ring_drops"` // NS r0's ring(s) had no room for
	OfferedRatio float64   `json:"offered_over_peak"`
	ReplyRatio   float64   `json:"replies_over_peak"`
	ReplyPaired  float64   `json:"replies_over_peak_paired"`
}

type floodResult struct {
	WithoutMpps  []float64 `json:"without_flood_mpps"`
	WithMpps     []float64 `json:"with_flood_mpps"`
	WithoutShare []float64 `json:"without_flood_cpu_share"`
	WithShare    []float64 `json:"with_flood_cpu_share"`
	FloodNSps    []float64 `json:"flood_ns_per_second"`     // accepted by the flooder's socket
	FloodXDPps   []float64 `json:"flood_xdp_ns_per_second"` // run through r0's XDP on the flood's queue
	FloodNAps    []float64 `json:"flood_na_per_second"`     // answers that reached gen's sink
	FloodTXps    []float64 `json:"flood_tx_per_second"`     // answers xdprouter sent (nasSent)
	FloodDrops   []uint64  `json:"flood_ring_drops"`        // NS r0's ring had no room for
	FwdDrops     []uint64  `json:"forward_ring_drops"`      // forwarded frames r0's ring had no room for, during the flood
	Ratio        float64   `json:"ratio_of_medians"`
	Paired       float64   `json:"paired"`
	// OneQueue is the reply rate on one queue, as every other scenario
	// runs; TwoQueues with the flood part's two.
	OneQueue      replyRate `json:"reply_rate_one_queue"`
	TwoQueues     replyRate `json:"reply_rate_two_queues"`
	Problems      []string  `json:"problems,omitempty"`
	FloodNSMedian float64   `json:"flood_ns_per_second_median"`
}

func runFlood(ctx context.Context, lb *liveBench) (*floodResult, error) {
	t, cfg := lb.t, lb.cfg
	if cfg.genCPU < 1 {
		return nil, errors.New("the flood needs a second CPU (-gen-cpu >= 1)")
	}
	var v6 family
	for _, f := range lb.fams {
		if f.name == "ipv6" {
			v6 = f
		}
	}
	nsFrame, err := t.nsFrame()
	if err != nil {
		return nil, err
	}
	gens := make([]*benchprog.Generator, 2)
	for i := range gens {
		if gens[i], err = benchprog.NewGenerator(nsFrame); err != nil {
			return nil, err
		}
		defer gens[i].Close()
	}
	var flooder *packetSender
	if err := t.lab.Do(t.genNS, func() error {
		flooder, err = newPacketSender(t.g0.index, nsFrame, floodBatch)
		return err
	}); err != nil {
		return nil, err
	}
	defer flooder.Close()
	cpus := []int{cfg.genCPU, cfg.genCPU - 1}
	res := &floodResult{OneQueue: replyRate{Queues: 1}, TwoQueues: replyRate{Queues: portQueues}}

	// One queue: the reply rate as the rest of the benchmark's topology
	// has it.
	err = lb.floodPhase(1, v6, nsFrame, func(replies *benchprog.Sink) error {
		for round := 0; round < cfg.runs; round++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := res.OneQueue.measure(lb, gens, flooder, cpus, lb.repeat[key(scXdprouter, v6.name)], replies, round); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("one queue: %w", err)
	}

	err = lb.floodPhase(portQueues, v6, nsFrame, func(replies *benchprog.Sink) error {
		n, err := lb.calibrate(scXdprouter, v6)
		if err != nil {
			return err
		}
		for round := 0; round < cfg.runs; round++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := res.floodRound(lb, v6, n, flooder, replies, round); err != nil {
				return err
			}
			if err := res.TwoQueues.measure(lb, gens, flooder, cpus, n, replies, round); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%d queues: %w", portQueues, err)
	}

	res.Ratio = div(median(res.WithMpps), median(res.WithoutMpps))
	var paired []float64
	for i := range res.WithMpps {
		paired = append(paired, div(res.WithMpps[i], res.WithoutMpps[i]))
	}
	res.Paired = median(paired)
	res.OneQueue.summarize()
	res.TwoQueues.summarize()
	res.FloodNSMedian = median(res.FloodNSps)
	if res.FloodNSMedian < 0.95*floodRate {
		res.Problems = append(res.Problems, fmt.Sprintf("the flooder reached only %.0f NS/s of %d", res.FloodNSMedian, floodRate))
	}
	if x := median(res.FloodXDPps); x < 0.95*floodRate {
		res.Problems = append(res.Problems, fmt.Sprintf("only %.0f NS/s reached r0's XDP program of %d offered", x, floodRate))
	}
	return res, nil
}

// floodPhase sets gen's port to queues queues, puts the reply sink on g0
// and xdprouter with the NDP proxy on the router, runs fn, and takes it all
// down again (back to one queue).
func (lb *liveBench) floodPhase(queues int, v6 family, nsFrame []byte, fn func(replies *benchprog.Sink) error) (err error) {
	t, cfg := lb.t, lb.cfg
	if queues != 1 {
		if err := t.setQueues(queues); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, t.setQueues(1)) }()
	}
	// The sink counts replies, and is also what makes the veth deliver
	// XDP_TX frames to gen at all (a veth kicks its peer only when the
	// peer runs XDP).
	replies, err := benchprog.NewSink(255, nsFrame)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, replies.Close()) }()
	if err := t.lab.Do(t.genNS, func() error { return replies.Attach(t.g0.index) }); err != nil {
		return fmt.Errorf("attach reply sink to g0: %w", err)
	}
	detach, err := t.applyConfig(cfg.xdprouter, lb.bpffs, "flood", ndpProxyConfig)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, detach()) }()
	// apply attaches gated: the forwarded flow must be established.
	if err := lb.prime(v6, v6.reply); err != nil {
		return err
	}
	return fn(replies)
}

// floodRound measures forwarding without the flood and then with it, the
// same way both times (lb.measure from the generator's CPU).
func (res *floodResult) floodRound(lb *liveBench, v6 family, n uint32, flooder *packetSender, replies *benchprog.Sink, round int) error {
	t, cfg := lb.t, lb.cfg
	run, problems, err := lb.measure(scXdprouter, v6, n)
	if err != nil {
		return err
	}
	res.WithoutMpps = append(res.WithoutMpps, run.Mpps)
	res.WithoutShare = append(res.WithoutShare, run.CPUShare)
	res.Problems = append(res.Problems, problems...)

	r0, err := replies.Counts()
	if err != nil {
		return err
	}
	c0, err := xdprouterCounters(lb.bpffs)
	if err != nil {
		return err
	}
	p0, err := t.portStats()
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent uint64
	var floodTime time.Duration
	var floodErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		floodErr = onCPU(cfg.genCPU-1, func() error {
			var err error
			sent, floodTime, err = flooder.pace(floodRate, stop)
			return err
		})
	}()
	time.Sleep(50 * time.Millisecond) // the flood is on before the run starts
	run, problems, err = lb.measure(scXdprouter, v6, n)
	close(stop)
	wg.Wait()
	if err = errors.Join(err, floodErr); err != nil {
		return err
	}
	time.Sleep(20 * time.Millisecond) // the last replies land
	r1, err := replies.Counts()
	if err != nil {
		return err
	}
	c1, err := xdprouterCounters(lb.bpffs)
	if err != nil {
		return err
	}
	p1, err := t.portStats()
	if err != nil {
		return err
	}
	d := p1.sub(p0)
	s := floodTime.Seconds()
	res.WithMpps = append(res.WithMpps, run.Mpps)
	res.WithShare = append(res.WithShare, run.CPUShare)
	res.Problems = append(res.Problems, problems...)
	res.FloodNSps = append(res.FloodNSps, float64(sent)/s)
	// The flooder's CPU is queue 0's (a frame sent from CPU c lands in
	// queue c mod 2), the forwarding generator's queue 1.
	res.FloodXDPps = append(res.FloodXDPps, float64(d.RxXDP[cfg.genCPU-1])/s)
	res.FloodNAps = append(res.FloodNAps, float64(r1.HopOK-r0.HopOK)/s)
	res.FloodTXps = append(res.FloodTXps, float64(nasSent(c1)-nasSent(c0))/s)
	res.FloodDrops = append(res.FloodDrops, d.TxDropped)
	res.FwdDrops = append(res.FwdDrops, d.XmitErrors)
	logf("  flood run %d: %.3f Mpps without, %.3f Mpps with %.0f NS/s (%.0f through r0's XDP, %d dropped at its ring; "+
		"xdprouter sent %.0f NA/s, %.0f NA/s reached gen; %d forwarded frames dropped at r0's ring)", round+1,
		res.WithoutMpps[round], run.Mpps, res.FloodNSps[round], res.FloodXDPps[round], d.TxDropped,
		res.FloodTXps[round], res.FloodNAps[round], d.XmitErrors)
	return nil
}

// measure runs one generator (the peak) and then two at once, n frames
// each, and records the reply rates.
func (r *replyRate) measure(lb *liveBench, gens []*benchprog.Generator, injector *packetSender, cpus []int, n uint32, replies *benchprog.Sink, round int) error {
	peak, err := sendNS(lb, gens[:1], injector, cpus[:1], n, replies)
	if err != nil {
		return err
	}
	double, err := sendNS(lb, gens, injector, cpus, n, replies)
	if err != nil {
		return err
	}
	r.PeakNAps = append(r.PeakNAps, peak.naps)
	r.OfferedNSps = append(r.OfferedNSps, double.offered)
	r.DoubleNAps = append(r.DoubleNAps, double.naps)
	r.DoubleTXps = append(r.DoubleTXps, double.txps)
	r.RingDrops = append(r.RingDrops, double.drops)
	logf("  ndp reply rate, %d queue(s), run %d: peak %.0f NA/s with one generator; %.0f NS/s offered by two -> "+
		"%.0f NA/s at gen (xdprouter sent %.0f NA/s; %d NS dropped at r0's ring)",
		r.Queues, round+1, peak.naps, double.offered, double.naps, double.txps, double.drops)
	return nil
}

func (r *replyRate) summarize() {
	var paired []float64
	for i := range r.DoubleNAps {
		paired = append(paired, div(r.DoubleNAps[i], r.PeakNAps[i]))
	}
	r.OfferedRatio = div(median(r.OfferedNSps), median(r.PeakNAps))
	r.ReplyRatio = div(median(r.DoubleNAps), median(r.PeakNAps))
	r.ReplyPaired = median(paired)
}

type nsRun struct {
	offered float64 // NS/s: all frames over the longest run
	naps    float64 // NA/s at gen's sink
	txps    float64 // NA/s xdprouter sent (nasSent)
	drops   uint64  // NS that found r0's ring full
}

// sendNS runs one generator per CPU at once, n frames each (with live
// frames), or one NS loop per CPU for cfg.seconds (circulating: replies
// relays every NA that reaches gen as a new NS, injected by injector).
func sendNS(lb *liveBench, gens []*benchprog.Generator, injector *packetSender, cpus []int, n uint32, replies *benchprog.Sink) (nsRun, error) {
	t, bpffs := lb.t, lb.bpffs
	var out nsRun
	if lb.circ != nil {
		if err := startLoop(t, replies, injector, cpus...); err != nil {
			return out, err
		}
	}
	r0, err := replies.Counts()
	if err != nil {
		return out, err
	}
	c0, err := xdprouterCounters(bpffs)
	if err != nil {
		return out, err
	}
	p0, err := t.portStats()
	if err != nil {
		return out, err
	}
	var longest time.Duration
	if lb.circ != nil {
		start := time.Now()
		time.Sleep(time.Duration(lb.cfg.seconds * float64(time.Second)))
		longest = time.Since(start)
	} else {
		var wg sync.WaitGroup
		walls := make([]time.Duration, len(gens))
		errs := make([]error, len(gens))
		for i := range gens {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs[i] = t.lab.Do(t.genNS, func() error {
					return onCPU(cpus[i], func() error {
						var err error
						walls[i], err = gens[i].Send(t.g0.index, n, lb.cfg.batch)
						return err
					})
				})
			}(i)
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return out, err
		}
		time.Sleep(20 * time.Millisecond)
		for _, w := range walls {
			longest = max(longest, w)
		}
	}
	r1, err := replies.Counts()
	if err != nil {
		return out, err
	}
	c1, err := xdprouterCounters(bpffs)
	if err != nil {
		return out, err
	}
	p1, err := t.portStats()
	if err != nil {
		return out, err
	}
	if lb.circ != nil {
		if err := stopLoop(replies); err != nil {
			return out, err
		}
	}
	s := longest.Seconds()
	out.offered = float64(n) * float64(len(gens)) / s
	if lb.circ != nil {
		out.offered = float64(r1.Relayed-r0.Relayed) / s
	}
	out.naps = float64(r1.HopOK-r0.HopOK) / s
	out.txps = float64(nasSent(c1)-nasSent(c0)) / s
	out.drops = p1.sub(p0).XmitErrors
	return out, nil
}

// nasSent is how many NAs xdprouter's proxy sent: with XDP_TX on a NIC, by
// a redirect to the port on a veth (r0), through TC on a veth whose peer
// has no NAPI.
func nasSent(c map[string]uint64) uint64 {
	return c["tx_ndp_na"] + c["tx_ndp_na_redirect"] + c["pass_ndp_na_tc"]
}
