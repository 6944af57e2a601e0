package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// machine describes where the figures come from.
type machine struct {
	Kernel    string `json:"kernel"`
	NProc     int    `json:"nproc"`
	CPU       string `json:"cpu"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit,omitempty"`
}

// ratio is one of the headline ratios with its target, if any.
type ratio struct {
	Name   string  `json:"name"`
	Family string  `json:"family"`
	Value  float64 `json:"value"` // ratio of the medians
	// Paired is the median of the per-round ratios: both figures of a pair
	// were measured seconds apart, so a slow phase of the host cancels out.
	Paired float64 `json:"paired"`
	Target float64 `json:"target,omitempty"` // the value should be >= Target
}

type settings struct {
	Runs          int     `json:"runs"`
	SecondsPerRun float64 `json:"seconds_per_run"`
	FrameBytes    int     `json:"frame_bytes"`
	Batch         uint32  `json:"batch"`
	GenCPU        int     `json:"gen_cpu"`
	NsppRepeat    uint32  `json:"nspp_repeat"`
	NsppRuns      int     `json:"nspp_runs"`
	// Generator is "circulating frames" or "live frames".
	Generator string `json:"generator"`
}

type report struct {
	Date        time.Time     `json:"date"`
	DurationSec float64       `json:"duration_seconds"`
	Machine     machine       `json:"machine"`
	Settings    settings      `json:"settings"`
	Live        []*liveResult `json:"live"`
	LiveRatios  []ratio       `json:"live_ratios"`
	Nspp        []*nsppResult `json:"ns_per_packet"`
	NsppRatios  []ratio       `json:"ns_per_packet_ratios"`
	NDP         []*ndpResult  `json:"ndp_proxy"`
	NDPRatios   []ratio       `json:"ndp_proxy_ratios"`
	Flood       *floodResult  `json:"ns_flood"`
	Swap        []*swapResult `json:"swap,omitempty"`
}

func newReport(cfg config, started time.Time, took time.Duration, lb *liveBench, nspp []*nsppResult) *report {
	r := &report{
		Date:        started,
		DurationSec: math.Round(took.Seconds()*10) / 10,
		Machine:     machineInfo(),
		Settings: settings{Runs: cfg.runs, SecondsPerRun: cfg.seconds, FrameBytes: frameLen,
			Batch: cfg.batch, GenCPU: cfg.genCPU, NsppRepeat: cfg.nsppRepeat, NsppRuns: cfg.nsppRuns,
			Generator: generatorName(lb)},
		Nspp: nspp,
	}
	for _, sc := range scenarios {
		for _, f := range lb.fams {
			if l := lb.results[key(sc, f.name)]; l != nil {
				r.Live = append(r.Live, l)
			}
		}
	}
	targets := map[string]float64{"xdprouter/kernel ipv4": 2.0, "xdprouter/kernel ipv6": 1.5,
		"xdprouter-ct/kernel-ct ipv4": 2.0, "xdprouter-ct/kernel-ct ipv6": 2.0,
		"xdprouter-nat44/kernel-nat44 ipv4-in-ipip6": 2.0,
		"xdprouter-npt/xdprouter ipv6":               0.95, "xdprouter-npt/kernel-npt ipv6": 3.0}
	for _, pair := range [][2]string{{scXdprouter, scKernel}, {scXdprouter, scBare}, {scBare, scKernel},
		{scKernelCT, scKernel}, {scBare, scKernelCT}, {scXdprouterCT, scKernelCT}, {scXdprouterCT, scXdprouter},
		{scNAT44, scKernelNAT44},
		{scKernel, scCeiling}, {scBare, scCeiling}, {scXdprouter, scCeiling},
		{scEncap, scKernelNAT44},
		{scNPT, scXdprouter}, {scNPT, scKernelNPT}} {
		for _, f := range lb.fams {
			name := pair[0] + "/" + pair[1]
			a, b := lb.results[key(pair[0], f.name)], lb.results[key(pair[1], f.name)]
			if a == nil || b == nil {
				continue
			}
			var paired []float64
			for i := 0; i < len(a.Runs) && i < len(b.Runs); i++ {
				paired = append(paired, div(a.Runs[i].Mpps, b.Runs[i].Mpps))
			}
			r.LiveRatios = append(r.LiveRatios, ratio{Name: name, Family: f.name, Value: div(a.MedianMpps, b.MedianMpps),
				Paired: median(paired), Target: targets[name+" "+f.name]})
		}
	}
	// For time per packet, lower is better: the ratios say how many times
	// the cost of the first program the second one's is.
	for _, pair := range [][2]string{{progXdprouter, progBare}, {progXdprouter, progPassDirect}, {progBare, progPassDirect}} {
		for _, f := range lb.fams {
			var a, b *nsppResult
			for _, n := range nspp {
				if n.Family == f.name && n.Program == pair[0] {
					a = n
				}
				if n.Family == f.name && n.Program == pair[1] {
					b = n
				}
			}
			if a == nil || b == nil {
				continue
			}
			var paired []float64
			for i := 0; i < len(a.NetNsRuns) && i < len(b.NetNsRuns); i++ {
				paired = append(paired, div(a.NetNsRuns[i], b.NetNsRuns[i]))
			}
			r.NsppRatios = append(r.NsppRatios, ratio{Name: pair[0] + "/" + pair[1], Family: f.name,
				Value: div(a.NetNs, b.NetNs), Paired: median(paired)})
		}
	}
	r.addTunnelRatios(lb, nspp)
	r.addVXLANRatios(lb)
	r.addVXLANNPTRatios(lb)
	r.add6in4Ratios(lb)
	return r
}

// addLiveRatio appends scenario a's family aFam against scenario b's family
// bFam, live, when both ran.
func (r *report) addLiveRatio(lb *liveBench, a, aFam, b, bFam string, target float64) {
	x, y := lb.results[key(a, aFam)], lb.results[key(b, bFam)]
	if x == nil || y == nil {
		return
	}
	var paired []float64
	for i := 0; i < len(x.Runs) && i < len(y.Runs); i++ {
		paired = append(paired, div(x.Runs[i].Mpps, y.Runs[i].Mpps))
	}
	fam := aFam
	if aFam != bFam {
		fam = aFam + " vs " + bFam
	}
	r.LiveRatios = append(r.LiveRatios, ratio{Name: a + "/" + b, Family: fam, Value: div(x.MedianMpps, y.MedianMpps),
		Paired: median(paired), Target: target})
}

func (r *report) problemCount() int {
	n := 0
	for _, l := range r.Live {
		n += len(l.Problems)
	}
	for _, x := range r.Nspp {
		n += len(x.Problems)
	}
	for _, x := range r.NDP {
		n += len(x.Problems)
	}
	if r.Flood != nil {
		n += len(r.Flood.Problems)
	}
	for _, x := range r.Swap {
		n += len(x.Problems)
	}
	return n
}

// text is the console table; markdown the same in Markdown.
func (r *report) text() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "\nxdprouter benchmark, %s — kernel %s, %d CPUs (%s)\n", r.Date.Format(time.RFC3339),
		r.Machine.Kernel, r.Machine.NProc, r.Machine.CPU)
	fmt.Fprintf(&b, "generator: %s; %d-byte UDP, gen -> router -> sink over veth, %d runs of ~%g s\n%s\n\n",
		r.Settings.Generator, r.Settings.FrameBytes, r.Settings.Runs, r.Settings.SecondsPerRun, r.generatorNote())
	fmt.Fprintf(&b, "%s\n\n", chainNote)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFAMILY\tMPPS (MEDIAN)\tRUNS (MPPS)\tIN-SITU NS (MEDIAN)\tDELIVERED\tCPU SHARE (MIN)\tSTEAL (MAX)\tRETRIES")
	for _, l := range r.Live {
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%s\t%.1f\t%s\t%.2f\t%.3f\t%d\n", l.Scenario, l.Family, l.MedianMpps, runsMpps(l), l.MedianInSituNs, delivered(l),
			minShare(l), maxSteal(l), retries(l))
	}
	tw.Flush()
	fmt.Fprintln(&b)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RATIO\tFAMILY\tOF MEDIANS\tPAIRED\tTARGET")
	for _, x := range r.LiveRatios {
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%s\n", x.Name, x.Family, x.Value, x.Paired, target(x))
	}
	tw.Flush()
	fmt.Fprintf(&b, "%s\n", pairedNote)
	if g := r.gateCost(); g != "" {
		fmt.Fprintf(&b, "\n%s\n", g)
	}
	if len(r.Swap) > 0 {
		fmt.Fprintf(&b, "\n%s\n\n", swapNote())
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SWAP\tFAMILY\tXDPROUTER MPPS (MEDIAN)\tBARE MPPS (MEDIAN)\tRATIO (MEDIAN)\tRATIO PER ROUND\tTARGET")
		for _, x := range r.Swap {
			fmt.Fprintf(tw, "xdprouter/bare\t%s\t%.3f\t%.3f\t%.3f\t%s\t>= %.2f\n", x.Family, swapMedian(x, true), swapMedian(x, false),
				x.Ratio, swapRatios(x), swapTarget)
		}
		tw.Flush()
	}

	fmt.Fprintf(&b, "\nns/packet: BPF_PROG_TEST_RUN (not live) in the router namespace, %d repetitions, %d runs;\n",
		r.Settings.NsppRepeat, r.Settings.NsppRuns)
	fmt.Fprintf(&b, "kernel-reported ns per run (integer); 'net' takes out the restore + tail-call harness\n\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROGRAM\tFAMILY\tVERDICT\tNS (MEDIAN)\tNET NS\tRUNS (NS)")
	for _, n := range r.Nspp {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%.0f\t%s\n", nsppLabel(n.Program), n.Family, n.Verdict,
			n.MedianKernelNs, n.NetNs, joinF(n.KernelNs, "%.0f"))
	}
	tw.Flush()
	fmt.Fprintln(&b)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RATIO (NET NS)\tFAMILY\tOF MEDIANS\tPAIRED")
	for _, x := range r.NsppRatios {
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\n", x.Name, x.Family, x.Value, x.Paired)
	}
	tw.Flush()
	fmt.Fprintf(&b, "\n%s\n\n", ndpNote)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NDP PROXY\tNA/S (MEDIAN)\tRUNS (NA/S)")
	for _, x := range r.NDP {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\n", x.Scenario, x.MedianNAps, ndpRuns(x))
	}
	for _, x := range r.NDPRatios {
		fmt.Fprintf(tw, "%s\t%.1f (paired %.1f)\t%s\n", x.Name, x.Value, x.Paired, target(x))
	}
	tw.Flush()
	if f := r.Flood; f != nil {
		fmt.Fprintf(&b, "\n%s\n", floodText(f))
	}
	if p := r.problems(); len(p) > 0 {
		fmt.Fprintf(&b, "\nPROBLEMS (these figures may not measure forwarding):\n")
		for _, s := range p {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	fmt.Fprintln(&b)
	return b.String()
}

func (r *report) markdown() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# xdprouter benchmark %s\n\n", r.Date.Format(time.RFC3339))
	fmt.Fprintf(&b, "- machine: kernel %s, %d CPUs, %s\n", r.Machine.Kernel, r.Machine.NProc, r.Machine.CPU)
	fmt.Fprintf(&b, "- %s, commit %s, run took %.0f s\n", r.Machine.GoVersion, orDash(r.Machine.Commit), r.DurationSec)
	fmt.Fprintf(&b, "- generator: %s; %d-byte UDP frames in namespace gen, through the router namespace, counted by an XDP sink; "+
		"%d runs of ~%g s per scenario, interleaved; throughput = frames counted forwarded at the sink / wall time. %s\n",
		r.Settings.Generator, r.Settings.FrameBytes, r.Settings.Runs, r.Settings.SecondsPerRun, r.generatorNote())
	fmt.Fprintf(&b, "- kernel: XDP_PASS on the router's veths, kernel forwards; bare: the bare fib-lookup XDP "+
		"forwarder (bpf/bench/xdp_bare_fwd.c); xdprouter: `xdprouter attach --ct-gate off r0 r1`; the other scenarios: "+
		"README, Benchmarks\n")
	fmt.Fprintf(&b, "- %s\n\n", chainNote)
	fmt.Fprintf(&b, "| scenario | family | Mpps (median) | runs (Mpps) | in-situ ns (median) | delivered | cpu share (min) | steal (max) | retries |\n"+
		"|---|---|---:|---|---:|---:|---:|---:|---:|\n")
	for _, l := range r.Live {
		fmt.Fprintf(&b, "| %s | %s | %.3f | %s | %.1f | %s | %.2f | %.3f | %d |\n", l.Scenario, l.Family, l.MedianMpps, runsMpps(l), l.MedianInSituNs, delivered(l),
			minShare(l), maxSteal(l), retries(l))
	}
	fmt.Fprintf(&b, "\n| ratio | family | of medians | paired | target |\n|---|---|---:|---:|---|\n")
	for _, x := range r.LiveRatios {
		fmt.Fprintf(&b, "| %s | %s | %.3f | %.3f | %s |\n", x.Name, x.Family, x.Value, x.Paired, target(x))
	}
	fmt.Fprintf(&b, "\n%s\n", pairedNote)
	if g := r.gateCost(); g != "" {
		fmt.Fprintf(&b, "\n%s\n", g)
	}
	if len(r.Swap) > 0 {
		fmt.Fprintf(&b, "\n## xdprouter and the bare forwarder on one attach\n\n%s\n\n", swapNote())
		fmt.Fprintf(&b, "| ratio | family | xdprouter Mpps (median) | bare Mpps (median) | ratio (median) | per round | target |\n"+
			"|---|---|---:|---:|---:|---|---|\n")
		for _, x := range r.Swap {
			fmt.Fprintf(&b, "| xdprouter/bare | %s | %.3f | %.3f | %.3f | %s | >= %.2f |\n", x.Family, swapMedian(x, true), swapMedian(x, false),
				x.Ratio, swapRatios(x), swapTarget)
		}
	}
	fmt.Fprintf(&b, "\n## ns/packet (BPF_PROG_TEST_RUN, not live, %d repetitions, %d runs)\n\n",
		r.Settings.NsppRepeat, r.Settings.NsppRuns)
	fmt.Fprintf(&b, "Kernel-reported ns per run (integer ns). Forwarders run behind a harness that restores the "+
		"frame and tail-calls them; net ns = ns(harness + program) − ns(harness + pass) + ns(pass direct).\n\n")
	fmt.Fprintf(&b, "| program | family | verdict | ns (median) | net ns | runs (ns) |\n|---|---|---|---:|---:|---|\n")
	for _, n := range r.Nspp {
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.0f | %s |\n", nsppLabel(n.Program), n.Family, n.Verdict,
			n.MedianKernelNs, n.NetNs, joinF(n.KernelNs, "%.0f"))
	}
	fmt.Fprintf(&b, "\n| ratio (net ns) | family | of medians | paired |\n|---|---|---:|---:|\n")
	for _, x := range r.NsppRatios {
		fmt.Fprintf(&b, "| %s | %s | %.3f | %.3f |\n", x.Name, x.Family, x.Value, x.Paired)
	}
	fmt.Fprintf(&b, "\n## NDP proxy\n\n%s\n\n| responder | NA/s (median) | runs (NA/s) |\n|---|---:|---|\n", ndpNote)
	for _, x := range r.NDP {
		fmt.Fprintf(&b, "| %s | %.0f | %s |\n", x.Scenario, x.MedianNAps, ndpRuns(x))
	}
	fmt.Fprintf(&b, "\n| ratio | of medians | paired | target |\n|---|---:|---:|---|\n")
	for _, x := range r.NDPRatios {
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %s |\n", x.Name, x.Value, x.Paired, target(x))
	}
	if f := r.Flood; f != nil {
		fmt.Fprintf(&b, "\n## NS flood\n\n%s", floodText(f))
	}
	if p := r.problems(); len(p) > 0 {
		fmt.Fprintf(&b, "\n## Problems\n\n")
		for _, s := range p {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(s, "\n", " "))
		}
	}
	return b.String()
}

func (r *report) problems() []string {
	var out []string
	for _, l := range r.Live {
		for _, p := range l.Problems {
			out = append(out, fmt.Sprintf("%s %s: %s", l.Scenario, l.Family, p))
		}
	}
	for _, n := range r.Nspp {
		for _, p := range n.Problems {
			out = append(out, fmt.Sprintf("ns/packet %s %s: %s", n.Program, n.Family, p))
		}
	}
	for _, n := range r.NDP {
		for _, p := range n.Problems {
			out = append(out, fmt.Sprintf("ndp proxy %s: %s", n.Scenario, p))
		}
	}
	if r.Flood != nil {
		for _, p := range r.Flood.Problems {
			out = append(out, "ns flood: "+p)
		}
	}
	for _, x := range r.Swap {
		for _, p := range x.Problems {
			out = append(out, fmt.Sprintf("swap %s: %s", x.Family, p))
		}
	}
	return out
}

// write stores <UTC timestamp>.json/.md and overwrites latest.json/.md.
func (r *report) write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode results: %w", err)
	}
	js = append(js, '\n')
	md := []byte(r.markdown())
	stamp := r.Date.Format("20060102T150405Z")
	var files []string
	for _, f := range []struct {
		name string
		data []byte
	}{{stamp + ".json", js}, {stamp + ".md", md}, {"latest.json", js}, {"latest.md", md}} {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return files, fmt.Errorf("write %s: %w", p, err)
		}
		files = append(files, p)
	}
	return files, nil
}

func machineInfo() machine {
	m := machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// chainNote says how to read the live figures.
const chainNote = "The generator, both veth hops, the router and the sink all run on the generator's CPU " +
	"(the veths' NAPI runs in its softirqs), so each Mpps figure includes a fixed per-frame cost outside the " +
	"router and the ratios understate the router's own difference (see ns/packet and in-situ ns for that). " +
	"CPU share = generator thread CPU time / wall time (live frames), or the generator CPU's busy share from /proc/stat " +
	"(circulating frames, whose loop runs in that CPU's softirq); well below 1 means other load took the CPU or the loop starved. " +
	"Steal = share of the generator CPU's time the hypervisor gave to other guests during a run (/proc/stat); " +
	"a run with more than -max-steal is measured again, up to -retries times (retries = discarded attempts), " +
	"so that a neighbour's burst does not decide a round's ratios."

const pairedNote = "Of medians: median / median. Paired: median over rounds of the ratio within a round " +
	"(measured seconds apart, so a slow phase of a shared host cancels out)."

func maxSteal(l *liveResult) float64 {
	m := 0.0
	for _, r := range l.Runs {
		m = max(m, r.Steal)
	}
	return m
}

func retries(l *liveResult) int {
	n := 0
	for _, r := range l.Runs {
		n += r.Retries
	}
	return n
}

func minShare(l *liveResult) float64 {
	m := 0.0
	for i, r := range l.Runs {
		if i == 0 || r.CPUShare < m {
			m = r.CPUShare
		}
	}
	return m
}

func runsMpps(l *liveResult) string {
	var v []float64
	for _, r := range l.Runs {
		v = append(v, r.Mpps)
	}
	return joinF(v, "%.3f")
}

// delivered is the share of sent frames that arrived forwarded: below 100 %
// the generator outran the path (veth ring full) and the rate is the path's.
func delivered(l *liveResult) string {
	var sent, fwd uint64
	for _, r := range l.Runs {
		sent += r.Sent
		fwd += r.Forwarded
	}
	return fmt.Sprintf("%.1f%%", 100*div(float64(fwd), float64(sent)))
}

func target(x ratio) string {
	if x.Target == 0 {
		return "-"
	}
	return fmt.Sprintf(">= %.2f", x.Target)
}

func nsppLabel(p string) string {
	switch p {
	case progPassDirect:
		return "xdp_pass (direct)"
	case progPass:
		return "harness + xdp_pass"
	case progBare:
		return "harness + bare"
	case progXdprouter:
		return "harness + xdpr_main"
	}
	return p
}

func joinF(v []float64, format string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// ndpNote says how the NDP proxy figures were taken.
const ndpNote = "NDP proxy: the generator floods r0 with Neighbor Solicitations (86-byte frames) for " +
	"fd00:b9::5, a proxied prefix; NA/s = Neighbor Advertisements counted by an XDP sink on the generator's " +
	"port / time (live frames: run time + 100 ms for late replies; circulating frames: the sink turns every NA " +
	"back into an NS, so 192 solicitations circulate through the proxy). xdprouter: `xdprouter apply` with ndp-proxy on r0 (XDP_TX); " +
	"ndppd: XDP_PASS on the router's ports, ndppd (static rule) answers through the kernel."

func ndpRuns(x *ndpResult) string {
	var v []float64
	for _, r := range x.Runs {
		v = append(v, r.NAps)
	}
	return joinF(v, "%.0f")
}

// floodText is the NS-flood section, the same in both formats.
func floodText(f *floodResult) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "IPv6 forwarding through xdprouter (NDP proxy on r0) with and without %d NS/s into the same port "+
		"(achieved: median %.0f NS/s sent, %.0f NS/s through r0's XDP program):\n\n",
		floodRate, f.FloodNSMedian, median(f.FloodXDPps))
	fmt.Fprintf(&b, "- without flood: %s Mpps (median %.3f; cpu share %s)\n",
		joinF(f.WithoutMpps, "%.3f"), median(f.WithoutMpps), joinF(f.WithoutShare, "%.2f"))
	fmt.Fprintf(&b, "- with flood:    %s Mpps (median %.3f; cpu share %s)\n",
		joinF(f.WithMpps, "%.3f"), median(f.WithMpps), joinF(f.WithShare, "%.2f"))
	fmt.Fprintf(&b, "- flood: NS sent %s /s; through r0's XDP %s /s; dropped at r0's ring %s; NAs xdprouter sent (tx_ndp_na*) %s /s; "+
		"NAs that reached gen's sink %s /s; forwarded frames dropped at r0's ring during the flood %s\n",
		joinF(f.FloodNSps, "%.0f"), joinF(f.FloodXDPps, "%.0f"), joinU(f.FloodDrops), joinF(f.FloodTXps, "%.0f"),
		joinF(f.FloodNAps, "%.0f"), joinU(f.FwdDrops))
	fmt.Fprintf(&b, "- with/without: %.3f of medians, %.3f paired (target >= 0.95)\n\n", f.Ratio, f.Paired)
	for _, r := range []replyRate{f.OneQueue, f.TwoQueues} {
		fmt.Fprintf(&b, "NDP proxy reply rate, gen's port on %d queue(s): peak with one generator %s NA/s (median %.0f); "+
			"two generators at once (one per CPU) offered %s NS/s (median %.0f, %.2fx the peak) and got %s NA/s back "+
			"(median %.0f; xdprouter sent %s NA/s; NS dropped at r0's ring %s)\n\n",
			r.Queues, joinF(r.PeakNAps, "%.0f"), median(r.PeakNAps), joinF(r.OfferedNSps, "%.0f"), median(r.OfferedNSps),
			r.OfferedRatio, joinF(r.DoubleNAps, "%.0f"), median(r.DoubleNAps), joinF(r.DoubleTXps, "%.0f"), joinU(r.RingDrops))
		fmt.Fprintf(&b, "- %d queue(s): replies under the double offer / peak: %.3f of medians, %.3f paired (target >= 0.95)",
			r.Queues, r.ReplyRatio, r.ReplyPaired)
		if r.Queues > 1 {
			fmt.Fprintf(&b, "; per queue (one CPU answering while the other is busy too): %.3f of the peak", r.ReplyRatio/float64(r.Queues))
		}
		b.WriteString("\n\n")
	}
	b.WriteString(floodMethod)
	return b.String()
}

func joinU(v []uint64) string {
	var f []float64
	for _, x := range v {
		f = append(f, float64(x))
	}
	return joinF(f, "%.0f")
}

const floodMethod = "Method: forwarding is measured exactly as without the flood (one run of the generator from its CPU, frames " +
	"counted at the sink). The flood comes from an AF_PACKET socket in gen, pinned to the other CPU, paced to 100k/s in sendmmsg " +
	"batches of at most 32 frames (~25 every ~0.25 ms; the sender sleeps with nanosleep between them), so nothing is attached or switched during the run (each live-frames " +
	"test run switches the XDP dispatcher twice, with RCU waits). For this part g0 and r0 have two queues: a veth puts a " +
	"frame sent from CPU c into the peer's RX queue c mod 2, so the flood goes through r0's queue 0 and XDP program on the " +
	"flooder's CPU and the forwarded frames through queue 1 on the generator's CPU, as RSS would spread them on a " +
	"multi-queue NIC. With one queue (the rest of the benchmark) the two senders share r0's one 256-frame ring and one " +
	"NAPI, which runs on whichever CPU scheduled it first: when the flooder's CPU has it, the generator overruns the ring " +
	"it no longer drains and its frames are dropped there, a veth artefact that measured the harness (0.59-0.88) rather " +
	"than the router. NS/NA counts: sent = frames the socket accepted; through XDP = r0's rx_queue_0_xdp_packets; " +
	"dropped at the ring = g0's tx_dropped for the socket's frames and its tx_queue_N_xdp_xmit_errors for live " +
	"frames (the generators' and the forwarded ones); NAs = xdprouter's tx_ndp_na and tx_ndp_na_redirect and the sink on g0 (hop limit 255).\n\n" +
	"Caveats (2-CPU VM): the flood's own per-packet cost (skb from the socket, XDP, the NA's XDP_TX) lands on the other " +
	"CPU, so the ratio shows what the flood costs forwarding through shared state (maps, counters, the port), not the " +
	"CPU time of answering it; that is at most one NA's share of the one-generator peak above (1/peak s per NS, e.g. " +
	"~0.35 µs at 2.9M NA/s, 3.5% of one CPU at 100k/s). The double offer: with one queue both generators feed r0's one ring, " +
	"which one NAPI on one CPU drains, while that CPU also runs its generator, so two CPUs cannot offer 2x the peak (the " +
	"factor above says how much they did; the rest is dropped at the ring before XDP, as a NIC drops at a full RX ring) " +
	"and the replies are what one CPU answers while the other CPU is busy, which the two-queue per-queue figure measures " +
	"without a shared ring (what the one-queue figure loses beyond that is the cost of one ring filled from one CPU and " +
	"drained on the other: frames arrive cache-cold, the NAPI may sit on either CPU, and both generators return the pages " +
	"of the frames the full ring refused through the page pool's spinlocked path, which a cpu-clock profile showed taking " +
	"some 20% of both CPUs); with two queues each CPU " +
	"generates into and answers from its own queue, which shows the absence of collapse when both cores are flooded but " +
	"not a single queue's overload.\n"

// swapTarget is issue 2's target for xdprouter against the bare forwarder.
const swapTarget = 0.95

// swapNote says how the swap figures are made and why they carry the target.
func swapNote() string {
	return fmt.Sprintf("Swap: `xdprouter attach r0 r1`, then one generator run of about %d s per round during which the router's "+
		"two links swap between xdprouter's programs and the bare forwarder every %v (BPF_LINK_UPDATE), in the order xdprouter, "+
		"bare, bare, xdprouter, ...; each slice's frames at the sink are credited to the program that ran it. The two programs "+
		"share every stretch of the host's speed, which flips between two levels within seconds here, so this is the figure "+
		"the %.2f target is judged on; the xdprouter/bare rows of the rounds above pair runs seconds apart and are shown for "+
		"comparison.", swapSeconds, swapSlice, swapTarget)
}

func swapMedian(x *swapResult, xdprouter bool) float64 {
	var v []float64
	for _, r := range x.Rounds {
		if xdprouter {
			v = append(v, r.XdprouterMpps)
		} else {
			v = append(v, r.BareMpps)
		}
	}
	return median(v)
}

func swapRatios(x *swapResult) string {
	var v []float64
	for _, r := range x.Rounds {
		v = append(v, r.Ratio)
	}
	return joinF(v, "%.3f")
}

func generatorName(lb *liveBench) string {
	if lb.circ != nil {
		return "circulating frames"
	}
	return "live frames"
}

// generatorNote says how frames were made and what the harness can carry.
func (r *report) generatorNote() string {
	ceiling := ""
	for _, l := range r.Live {
		if l.Scenario == scCeiling {
			ceiling += fmt.Sprintf(" %s %.2f Mpps (%.0f ns/frame);", l.Family, l.MedianMpps, div(1000, l.MedianMpps))
		}
	}
	if ceiling != "" {
		ceiling = " Harness ceiling (the 'ceiling' scenario: r0 only decrements the TTL and redirects to r1):" +
			strings.TrimSuffix(ceiling, ";") + "; a router figure is its own only well below it."
	}
	if r.Settings.Generator == "circulating frames" {
		return fmt.Sprintf("Circulating frames: %d frames injected once per run (AF_PACKET on gen's port) go round gen -> router -> sink -> gen: "+
			"the sink's XDP program rewrites each forwarded frame into a fresh template and redirects it through a devmap entry "+
			"holding gen's port, so the router sees exactly the live-frames input. The loop runs in softirq on the CPU the frames "+
			"were injected from: single-core rates. In-situ ns = run_time_ns/run_cnt of the XDP program on r0 from BPF_ENABLE_STATS, "+
			"in a separate %.2f s window (the statistics cost ~30 ns per run).%s", circFrames, inSituSeconds, ceiling)
	}
	return fmt.Sprintf("Live frames: BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES from an XDP generator in gen (batch %d). "+
		"In-situ ns = run_time_ns/run_cnt of the XDP program on r0 from BPF_ENABLE_STATS, in a separate %.2f s window.%s",
		r.Settings.Batch, inSituSeconds, ceiling)
}

// gateCost says what the conntrack gate adds per packet: the in-situ ns of
// xdprouter's program gated (xdprouter-ct) less ungated (xdprouter), and
// the same from the throughputs (1/Mpps), which include the harness.
func (r *report) gateCost() string {
	var parts []string
	for _, fam := range []string{"ipv4", "ipv6"} {
		var gated, plain *liveResult
		for _, l := range r.Live {
			if l.Family == fam && l.Scenario == scXdprouterCT {
				gated = l
			}
			if l.Family == fam && l.Scenario == scXdprouter {
				plain = l
			}
		}
		if gated == nil || plain == nil || gated.MedianMpps == 0 || plain.MedianMpps == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %+.1f ns in situ (%.1f vs %.1f), %+.1f ns per frame from the throughputs",
			fam, gated.MedianInSituNs-plain.MedianInSituNs, gated.MedianInSituNs, plain.MedianInSituNs,
			1000/gated.MedianMpps-1000/plain.MedianMpps))
	}
	if len(parts) == 0 {
		return ""
	}
	return "Conntrack gate cost per packet (xdprouter-ct - xdprouter, medians): " + strings.Join(parts, "; ")
}
