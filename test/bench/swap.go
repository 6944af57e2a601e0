package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/loader/benchprog"
)

// The swap part measures xdprouter against the bare forwarder without the
// host's changes of speed in between. The rounds of the live part run the
// two seconds apart, and this host flips between two speeds (2.9 and 4.5
// Mpps for the same program) within seconds, so about half of those pairs
// compare different speeds. Here `xdprouter attach r0 r1` attaches as usual
// and, while one long generator run is going, the router's two links swap
// between xdprouter's programs and the bare forwarder every swapSlice
// (BPF_LINK_UPDATE: same link, same interfaces, no gap in traffic). The
// frames the sink counts in each slice are credited to the program that ran
// it, in the order xdprouter, bare, bare, xdprouter, ... so that neither
// program always follows the other.

const (
	swapSlice   = 100 * time.Millisecond
	swapSeconds = 4 // length of one round's generator run
)

// swapRound is one round: one attach, one generator run.
type swapRound struct {
	XdprouterMpps float64 `json:"xdprouter_mpps"`
	BareMpps      float64 `json:"bare_mpps"`
	Ratio         float64 `json:"ratio"`
	Slices        int     `json:"slices"` // counted slices, both programs
	// XDPForwarded is what xdprouter's forward counter rose by, to compare
	// with the frames credited to its slices.
	XDPForwarded uint64 `json:"xdp_forwarded"`
	Credited     uint64 `json:"credited_to_xdprouter"`
}

// swapResult is one family.
type swapResult struct {
	Family   string      `json:"family"`
	Rounds   []swapRound `json:"rounds"`
	Ratio    float64     `json:"ratio"` // median of the rounds' ratios
	Problems []string    `json:"problems,omitempty"`
}

// slice tallies the frames and time credited to one program.
type slice struct {
	frames uint64
	secs   float64
}

func (s slice) mpps() float64 { return div(float64(s.frames)/1e6, s.secs) }

// runSwap measures every plain family cfg.runs times.
func runSwap(ctx context.Context, b *liveBench) ([]*swapResult, error) {
	fams := b.plainFamilies()
	var results []*swapResult
	for _, f := range fams {
		results = append(results, &swapResult{Family: f.name})
	}
	for round := 0; round < b.cfg.runs; round++ {
		for i, f := range fams {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r, err := b.swapRound(f)
			if err != nil {
				return nil, fmt.Errorf("%s round %d: %w", f.name, round+1, err)
			}
			res := results[i]
			res.Rounds = append(res.Rounds, r)
			if r.XDPForwarded < r.Credited {
				res.Problems = append(res.Problems, fmt.Sprintf("round %d: xdprouter counted %d forwarded, fewer than the %d credited to its slices",
					round+1, r.XDPForwarded, r.Credited))
			}
			b.logf("  swap %s round %d: xdprouter %.3f Mpps, bare %.3f Mpps, ratio %.3f (%d slices)",
				f.name, round+1, r.XdprouterMpps, r.BareMpps, r.Ratio, r.Slices)
		}
	}
	for _, res := range results {
		var ratios []float64
		for _, r := range res.Rounds {
			ratios = append(ratios, r.Ratio)
		}
		res.Ratio = median(ratios)
	}
	return results, nil
}

func (b *liveBench) plainFamilies() []family {
	var fams []family
	for _, f := range b.fams {
		if f.only == "" {
			fams = append(fams, f)
		}
	}
	return fams
}

// swapRound attaches xdprouter, runs the generator for swapSeconds while
// swapping, and detaches.
func (b *liveBench) swapRound(f family) (r swapRound, err error) {
	t := b.t
	detach, err := b.setup(scXdprouter, f)
	if err != nil {
		return r, err
	}
	defer func() {
		if derr := detach(); derr != nil && err == nil {
			err = derr
		}
	}()
	var links []*benchprog.Swappable
	defer func() {
		for _, l := range links {
			err = errors.Join(err, l.Close())
		}
	}()
	for _, ifc := range []iface{t.r0, t.r1} {
		l, err := benchprog.OpenSwappable(loader.XDPLinkPin(b.bpffs, ifc.index))
		if err != nil {
			return r, err
		}
		links = append(links, l)
	}
	use := func(bare bool) error {
		for _, l := range links {
			var err error
			if bare {
				err = l.UseBare(b.bare)
			} else {
				err = l.UseOwn()
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	k := key(scXdprouter, f.name)
	if b.repeat[k] == 0 {
		// -scenarios left xdprouter out of the live part.
		if b.repeat[k], err = b.calibrate(scXdprouter, f); err != nil {
			return r, err
		}
	}
	n := b.repeat[k]
	// Warm-up, untimed: both programs' code and maps into the caches.
	for _, bare := range []bool{true, false} {
		if err := use(bare); err != nil {
			return r, err
		}
		if _, _, err := b.measure(scXdprouter, f, n/20); err != nil {
			return r, fmt.Errorf("warm-up: %w", err)
		}
	}
	before, err := xdprouterCounters(b.bpffs)
	if err != nil {
		return r, err
	}
	done := make(chan error, 1)
	if b.circ != nil {
		if err := b.circ.start(f); err != nil {
			return r, err
		}
		go func() {
			time.Sleep(swapSeconds * time.Second)
			done <- b.circ.stop()
		}()
	} else {
		runLen := uint32(min(float64(n)*swapSeconds/b.cfg.seconds, float64(1<<31)))
		go func() {
			done <- t.lab.Do(t.genNS, func() error {
				return onCPU(b.cfg.genCPU, func() error {
					_, err := b.gens[f.name].Send(t.g0.index, runLen, b.cfg.batch)
					return err
				})
			})
		}()
	}
	var tally [2]slice // xdprouter, bare
	ran := false
	err = onCPU(controlCPU(b.cfg.genCPU), func() error {
		ran = true
		return b.swapSlices(f, done, use, &tally, &r.Slices)
	})
	if !ran {
		<-done // the generator must finish before the links go
	}
	if err != nil {
		return r, err
	}
	if err := use(false); err != nil {
		return r, err
	}
	after, err := xdprouterCounters(b.bpffs)
	if err != nil {
		return r, err
	}
	r.XdprouterMpps, r.BareMpps = tally[0].mpps(), tally[1].mpps()
	r.Ratio = div(r.XdprouterMpps, r.BareMpps)
	r.XDPForwarded = after[f.fwdCounter] - before[f.fwdCounter]
	r.Credited = tally[0].frames
	return r, nil
}

// swapSlices credits the frames of each slice to the program that ran it
// until the generator run ends (waiting for it); the slice it ends in, and
// the first one, are not counted: traffic was not flowing all through them.
func (b *liveBench) swapSlices(f family, done <-chan error, use func(bare bool) error, tally *[2]slice, counted *int) error {
	c0, err := b.sinks.counts(f)
	if err != nil {
		<-done
		return err
	}
	t0 := time.Now()
	for i := 0; ; i++ {
		bare := i%4 == 1 || i%4 == 2
		if err := use(bare); err != nil {
			<-done
			return err
		}
		select {
		case err := <-done:
			return err
		case <-time.After(swapSlice):
		}
		c1, err := b.sinks.counts(f)
		if err != nil {
			<-done
			return err
		}
		t1 := time.Now()
		if i > 0 {
			k := 0
			if bare {
				k = 1
			}
			tally[k].frames += c1.HopOK - c0.HopOK
			tally[k].secs += t1.Sub(t0).Seconds()
			*counted++
		}
		c0, t0 = c1, t1
	}
}

// controlCPU is a CPU other than the generator's, for the thread that swaps
// and reads the counters.
func controlCPU(gen int) int {
	if gen < 0 || runtime.NumCPU() < 2 {
		return -1
	}
	return (gen + 1) % runtime.NumCPU()
}
