package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/xdprouter/xdprouter/loader/benchprog"
)

// The NS-flood benchmark: IPv6 forwarding through xdprouter (with the NDP
// proxy on r0) measured with and without a flood of Neighbor
// Solicitations at floodRate from a second generator thread on the other
// CPU; and the NDP proxy's reply rate when two generators (one per CPU)
// offer solicitations at once, against the one-generator peak.
const floodRate = 100_000 // NS per second

type floodResult struct {
	WithoutMpps   []float64 `json:"without_flood_mpps"`
	WithMpps      []float64 `json:"with_flood_mpps"`
	FloodNSps     []float64 `json:"flood_ns_per_second"` // what the flooder achieved
	FloodNAps     []float64 `json:"flood_na_per_second"` // answers that reached gen's sink
	FloodTXps     []float64 `json:"flood_tx_per_second"` // answers xdprouter sent (tx_ndp_na)
	Ratio         float64   `json:"ratio_of_medians"`
	Paired        float64   `json:"paired"`
	PeakNAps      []float64 `json:"peak_na_per_second"`    // one generator
	OfferedNSps   []float64 `json:"offered_ns_per_second"` // two generators
	DoubleNAps    []float64 `json:"double_na_per_second"`  // replies under the double offer
	OfferedRatio  float64   `json:"offered_over_peak"`
	ReplyRatio    float64   `json:"replies_over_peak"`
	ReplyPaired   float64   `json:"replies_over_peak_paired"`
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
	flooder, err := benchprog.NewGenerator(nsFrame)
	if err != nil {
		return nil, err
	}
	defer flooder.Close()
	second, err := benchprog.NewGenerator(nsFrame)
	if err != nil {
		return nil, err
	}
	defer second.Close()
	replies, err := benchprog.NewSink(255)
	if err != nil {
		return nil, err
	}
	defer replies.Close()
	if err := t.lab.Do(t.genNS, func() error { return replies.Attach(t.g0.index) }); err != nil {
		return nil, fmt.Errorf("attach reply sink to g0: %w", err)
	}
	conf := filepath.Join(t.lab.RunDir(), "flood.yaml")
	text := fmt.Sprintf("wan: {interface: r1}\nlan: [{interface: r0}]\nndp-proxy: [{interface: r0, prefixes: [%q]}]\n", ndpPrefix)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	if _, err := t.lab.Exec(t.rtrNS, cfg.xdprouter, "--bpffs", lb.bpffs, "apply", "--config", conf); err != nil {
		return nil, fmt.Errorf("xdprouter apply: %w", err)
	}
	defer t.lab.Exec(t.rtrNS, cfg.xdprouter, "--bpffs", lb.bpffs, "detach", "--all")

	res := &floodResult{}
	n, err := lb.calibrate(scXdprouter, v6)
	if err != nil {
		return nil, err
	}
	for round := 0; round < cfg.runs; round++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		run, problems, err := lb.measure(scXdprouter, v6, n)
		if err != nil {
			return nil, err
		}
		res.WithoutMpps = append(res.WithoutMpps, run.Mpps)
		res.Problems = append(res.Problems, problems...)

		r0, err := replies.Counts()
		if err != nil {
			return nil, err
		}
		c0, err := xdprouterCounters(lb.bpffs)
		if err != nil {
			return nil, err
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var sent uint64
		var floodTime time.Duration
		var floodErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent, floodTime, floodErr = paced(t, flooder, cfg.genCPU-1, cfg.batch, stop)
		}()
		time.Sleep(50 * time.Millisecond) // the flood is on before the run starts
		run, problems, err = lb.measure(scXdprouter, v6, n)
		close(stop)
		wg.Wait()
		if err != nil {
			return nil, err
		}
		if floodErr != nil {
			return nil, floodErr
		}
		r1, err := replies.Counts()
		if err != nil {
			return nil, err
		}
		c1, err := xdprouterCounters(lb.bpffs)
		if err != nil {
			return nil, err
		}
		res.FloodTXps = append(res.FloodTXps, float64(c1["tx_ndp_na"]-c0["tx_ndp_na"])/floodTime.Seconds())
		res.WithMpps = append(res.WithMpps, run.Mpps)
		res.Problems = append(res.Problems, problems...)
		res.FloodNSps = append(res.FloodNSps, float64(sent)/floodTime.Seconds())
		res.FloodNAps = append(res.FloodNAps, float64(r1.HopOK-r0.HopOK)/floodTime.Seconds())
		logf("  flood run %d: %.3f Mpps without, %.3f Mpps with %.0f NS/s (xdprouter sent %.0f NA/s, %.0f NA/s reached gen)", round+1,
			res.WithoutMpps[round], run.Mpps, res.FloodNSps[round], res.FloodTXps[round], res.FloodNAps[round])

		// Reply rate: one generator (the peak), then two at once.
		peak, _, err := sendNS(t, []*benchprog.Generator{flooder}, []int{cfg.genCPU}, n, cfg.batch, replies)
		if err != nil {
			return nil, err
		}
		offered, got, err := sendNS(t, []*benchprog.Generator{flooder, second}, []int{cfg.genCPU, cfg.genCPU - 1}, n, cfg.batch, replies)
		if err != nil {
			return nil, err
		}
		res.PeakNAps = append(res.PeakNAps, peak)
		res.OfferedNSps = append(res.OfferedNSps, offered)
		res.DoubleNAps = append(res.DoubleNAps, got)
		logf("  ndp reply rate run %d: peak %.0f NA/s with one generator; %.0f NS/s offered by two -> %.0f NA/s", round+1, peak, offered, got)
	}
	res.Ratio = div(median(res.WithMpps), median(res.WithoutMpps))
	var paired, rpaired []float64
	for i := range res.WithMpps {
		paired = append(paired, div(res.WithMpps[i], res.WithoutMpps[i]))
		rpaired = append(rpaired, div(res.DoubleNAps[i], res.PeakNAps[i]))
	}
	res.Paired = median(paired)
	res.OfferedRatio = div(median(res.OfferedNSps), median(res.PeakNAps))
	res.ReplyRatio = div(median(res.DoubleNAps), median(res.PeakNAps))
	res.ReplyPaired = median(rpaired)
	res.FloodNSMedian = median(res.FloodNSps)
	if res.FloodNSMedian < 0.9*floodRate {
		res.Problems = append(res.Problems, fmt.Sprintf("the flooder reached only %.0f NS/s of %d", res.FloodNSMedian, floodRate))
	}
	return res, nil
}

// paced sends NS frames from CPU cpu at floodRate on average until stop
// closes. A live-frames run costs some 20 ms of setup, so it sends in
// chunks sized to catch up with the schedule.
func paced(t *topo, g *benchprog.Generator, cpu int, batch uint32, stop chan struct{}) (uint64, time.Duration, error) {
	var sent uint64
	start := time.Now()
	err := t.lab.Do(t.genNS, func() error {
		return onCPU(cpu, func() error {
			for {
				select {
				case <-stop:
					return nil
				default:
				}
				due := uint64(time.Since(start).Seconds()*floodRate) + 1000
				if due > sent {
					chunk := min(due-sent, 20_000)
					if _, err := g.Send(t.g0.index, uint32(chunk), batch); err != nil {
						return err
					}
					sent += chunk
				} else {
					time.Sleep(time.Millisecond)
				}
			}
		})
	})
	return sent, time.Since(start), err
}

// sendNS runs one generator per CPU at once, n frames each, and returns the
// offered NS/s (all frames over the longest run) and the NA/s that came back.
func sendNS(t *topo, gens []*benchprog.Generator, cpus []int, n, batch uint32, replies *benchprog.Sink) (float64, float64, error) {
	r0, err := replies.Counts()
	if err != nil {
		return 0, 0, err
	}
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
					walls[i], err = gens[i].Send(t.g0.index, n, batch)
					return err
				})
			})
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, 0, err
	}
	time.Sleep(20 * time.Millisecond)
	r1, err := replies.Counts()
	if err != nil {
		return 0, 0, err
	}
	var longest time.Duration
	for _, w := range walls {
		longest = max(longest, w)
	}
	offered := float64(n) * float64(len(gens)) / longest.Seconds()
	return offered, float64(r1.HopOK-r0.HopOK) / longest.Seconds(), nil
}
