package loader

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// fakeProbes answers as a kernel without the named features would; a name
// mapped to a non-nil error in broken makes that probe fail to tell.
func fakeProbes(release string, missing []string, broken map[string]error) kernelProbes {
	answer := func(name string) error {
		if err := broken[name]; err != nil {
			return err
		}
		if slices.Contains(missing, name) {
			return fmt.Errorf("%s: %w", name, ebpf.ErrNotSupported)
		}
		return nil
	}
	return kernelProbes{
		release: func() string { return release },
		tcx:     func() error { return answer(FeatureTCX) },
		kfunc:   answer,
		fibFlag: func(flag uint32) error {
			if flag == unix.BPF_FIB_LOOKUP_SKIP_NEIGH {
				return answer(featureFibSkipNeigh)
			}
			return answer(featureFibSrc)
		},
		adjustRoomFlag: func(uint64) error { return answer(featureDecapL3) },
		xdpFeatures:    func() error { return answer(FeatureXDPFeatures) },
	}
}

// without is r with the named features missing.
func without(r KernelReport, names ...string) KernelReport {
	out := KernelReport{Release: r.Release}
	for _, f := range r.Features {
		if slices.Contains(names, f.Name) {
			f.Present = false
		}
		out.Features = append(out.Features, f)
	}
	return out
}

// TestKernelReportLines: each missing feature is one line that names the
// kernel, the feature, the kernel that brought it and what its absence
// costs; a probe that cannot tell counts as missing and says why; a
// complete kernel has no line.
func TestKernelReportLines(t *testing.T) {
	full := probeKernel(fakeProbes("6.18.0", nil, nil), nil)
	if m := full.Missing(); len(m) != 0 {
		t.Errorf("a kernel with every feature: %q", m)
	}
	if !full.ctKfuncs() || !full.Has(FeatureTCX) {
		t.Errorf("a kernel with every feature: %+v", full)
	}
	old := probeKernel(fakeProbes("6.1.0-9-amd64", []string{FeatureTCX, featureCTTimeout, featureDecapL3, FeatureXDPFeatures},
		map[string]error{featureFibSrc: unix.EPERM}), nil)
	want := []string{
		"kernel 6.1.0-9-amd64: no TCX (6.6), slow path on tc clsact",
		"kernel 6.1.0-9-amd64: no bpf_ct_change_timeout (6.0), " + costCTGate,
		"kernel 6.1.0-9-amd64: no BPF_FIB_LOOKUP_SRC (6.8, 6.1.81), ICMP \"fragmentation needed\" for IPv4 into a tunnel is sent by the kernel, not XDP (probe failed: operation not permitted)",
		"kernel 6.1.0-9-amd64: no BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (6.3), the tunnel slow path decapsulates with one helper call more",
		"kernel 6.1.0-9-amd64: no xdp-features (6.3), frames beyond one buffer (an MTU above 3498 on a veth) are forwarded by the kernel, not XDP, and a veth's peer in another namespace is read from there",
	}
	if got := old.Missing(); !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if old.ctKfuncs() {
		t.Error("conntrack gate usable without bpf_ct_change_timeout")
	}
	if got := old.ctKfuncsLine(); got != want[1] {
		t.Errorf("conntrack line %q, want %q", got, want[1])
	}
	if old.Line(featureCTLookup) != "" || old.Line(FeatureTCX) != want[0] {
		t.Errorf("Line: %q %q", old.Line(featureCTLookup), old.Line(FeatureTCX))
	}
	// The stable answers come from the cache, the volatile ones are asked.
	asked := map[string]int{}
	p := fakeProbes("6.1", nil, nil)
	p.kfunc = func(name string) error { asked[name]++; return nil }
	p.tcx = func() error { asked[FeatureTCX]++; return nil }
	r := probeKernel(p, map[string]error{FeatureTCX: ebpf.ErrNotSupported})
	if r.Has(FeatureTCX) || asked[FeatureTCX] != 0 || asked[featureCTLookup] != 1 {
		t.Errorf("cached TCX answer ignored or kfunc not asked: %+v, asked %v", r, asked)
	}
}

// TestCompatSpecFollowsReport: compat.h's constants are set from the
// report, so a kernel without a feature gets the program variant that does
// without it.
func TestCompatSpecFollowsReport(t *testing.T) {
	full := probeKernel(fakeProbes("6.18", nil, nil), nil)
	read := func(kern KernelReport) map[string]uint32 {
		spec, err := compatSpec(kern)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]uint32{}
		for _, n := range []string{"xdpr_fib_skip_neigh", "xdpr_ct_kfuncs", "xdpr_adj_room_decap_l3"} {
			var v uint32
			if err := spec.Variables[n].Get(&v); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			out[n] = v
		}
		return out
	}
	if got := read(full); got["xdpr_fib_skip_neigh"] != unix.BPF_FIB_LOOKUP_SKIP_NEIGH || got["xdpr_ct_kfuncs"] != 1 || got["xdpr_adj_room_decap_l3"] != 1 {
		t.Errorf("complete kernel: %v", got)
	}
	for _, c := range []struct {
		missing, variable string
	}{
		{featureFibSkipNeigh, "xdpr_fib_skip_neigh"},
		{featureCTLookup, "xdpr_ct_kfuncs"},
		{featureCTRelease, "xdpr_ct_kfuncs"},
		{featureCTTimeout, "xdpr_ct_kfuncs"},
		{featureDecapL3, "xdpr_adj_room_decap_l3"},
	} {
		got := read(without(full, c.missing))
		for n, v := range got {
			if (v == 0) != (n == c.variable) {
				t.Errorf("without %s: %s = %d", c.missing, n, v)
			}
		}
	}
}

// TestKernelProbesAnswer holds each probe to a question whose answer is
// known on any kernel: a flag no kernel has is refused and no flag is
// accepted, an invented kfunc is not found; and the TCX answer agrees
// with the kernel's BTF (struct tcx_link came with TCX).
func TestKernelProbesAnswer(t *testing.T) {
	requirePrivileged(t)
	unsupported := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ebpf.ErrNotSupported) {
			t.Errorf("%s: %v, want not supported", what, err)
		}
	}
	if err := probeFibFlag(0); err != nil {
		t.Errorf("bpf_fib_lookup without flags: %v", err)
	}
	unsupported("bpf_fib_lookup flag 1<<30", probeFibFlag(1<<30))
	if err := probeAdjustRoomFlag(0); err != nil {
		t.Errorf("bpf_skb_adjust_room without flags: %v", err)
	}
	unsupported("bpf_skb_adjust_room flag 1<<40", probeAdjustRoomFlag(1<<40))
	unsupported("kfunc bpf_xdpr_no_such_kfunc", probeKfunc("bpf_xdpr_no_such_kfunc"))
	if err := probeKfunc("bpf_xdp_ct_lookup"); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
		t.Errorf("kfunc bpf_xdp_ct_lookup: %v", err)
	}
	btfHasTCX := kernelBTFHas(t, "tcx_link")
	if err := probeTCX(); (err == nil) != btfHasTCX {
		t.Errorf("TCX probe %v, but tcx_link in the kernel's BTF: %t", err, btfHasTCX)
	}
	t.Logf("this kernel:\n%s", strings.Join(append(ProbeKernel().Missing(), "(end)"), "\n"))
}

func kernelBTFHas(t *testing.T, name string) bool {
	t.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	_, err = spec.AnyTypeByName(name)
	return err == nil
}
