package loader

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/xdprouter/xdprouter/loader/vethnapi"
	"golang.org/x/sys/unix"
)

// KernelFeature is one thing the data plane uses that a kernel may lack,
// as the probe found it.
type KernelFeature struct {
	Name    string `json:"name"`
	Since   string `json:"since"` // the first kernels that have it
	Present bool   `json:"present"`
	// Cost is what its absence costs; Err, when set, why the probe could
	// not tell (the feature then counts as missing).
	Cost string `json:"cost"`
	Err  string `json:"error,omitempty"`
}

// KernelReport is what ProbeKernel found in the running kernel.
type KernelReport struct {
	Release  string          `json:"release"`
	Features []KernelFeature `json:"features"`
}

// Missing is one line per missing feature, saying what is missing and what
// it costs: "kernel 6.1.0-27-amd64: no TCX (6.6), slow path on tc clsact".
func (r KernelReport) Missing() []string {
	var out []string
	for _, f := range r.Features {
		if f.Present {
			continue
		}
		line := fmt.Sprintf("kernel %s: no %s (%s), %s", r.Release, f.Name, f.Since, f.Cost)
		if f.Err != "" {
			line += " (probe failed: " + f.Err + ")"
		}
		out = append(out, line)
	}
	return out
}

// Has says whether the named feature was found.
func (r KernelReport) Has(name string) bool {
	for _, f := range r.Features {
		if f.Name == name {
			return f.Present
		}
	}
	return false
}

// Line is the Missing line of the named feature, or "" when it is there.
func (r KernelReport) Line(name string) string {
	for _, l := range (KernelReport{Release: r.Release, Features: r.only(name)}).Missing() {
		return l
	}
	return ""
}

func (r KernelReport) only(name string) []KernelFeature {
	for _, f := range r.Features {
		if f.Name == name {
			return []KernelFeature{f}
		}
	}
	return nil
}

// Names of the probed features, for Has.
const (
	FeatureTCX          = "TCX"
	featureCTLookup     = "bpf_xdp_ct_lookup"
	featureCTRelease    = "bpf_ct_release"
	featureCTTimeout    = "bpf_ct_change_timeout"
	featureFibSkipNeigh = "BPF_FIB_LOOKUP_SKIP_NEIGH"
	featureFibSrc       = "BPF_FIB_LOOKUP_SRC"
	featureDecapL3      = "BPF_F_ADJ_ROOM_DECAP_L3_IPV4"
	FeatureXDPFeatures  = "xdp-features"
)

// costCTGate is what a missing conntrack kfunc costs (compat.h).
const costCTGate = "conntrack gate unavailable: gated traffic goes through the kernel " +
	"(nf_conntrack must be loaded and built with BTF; attach again after loading it)"

// kernelProbes are the questions ProbeKernel asks; tests answer them with
// fakes. Each returns nil when the kernel has the thing, an error wrapping
// ebpf.ErrNotSupported when it has not, and any other error when it cannot
// tell.
type kernelProbes struct {
	release        func() string
	tcx            func() error
	kfunc          func(name string) error
	fibFlag        func(flag uint32) error
	adjustRoomFlag func(flag uint64) error
	xdpFeatures    func() error
}

// kernelFeatures lists what is probed, oldest requirement first. Since
// names the upstream release, and the Debian 12 (6.1.y) update that
// backported it where there is one. A volatile answer can change while
// the kernel runs: the conntrack kfuncs appear when nf_conntrack is
// loaded.
var kernelFeatures = []struct {
	name, since, cost string
	volatile          bool
	probe             func(kernelProbes) error
}{
	{FeatureTCX, "6.6", "slow path on tc clsact", false,
		func(p kernelProbes) error { return p.tcx() }},
	{featureCTLookup, "5.18", costCTGate, true,
		func(p kernelProbes) error { return p.kfunc(featureCTLookup) }},
	{featureCTRelease, "5.18", costCTGate, true,
		func(p kernelProbes) error { return p.kfunc(featureCTRelease) }},
	{featureCTTimeout, "6.0", costCTGate, true,
		func(p kernelProbes) error { return p.kfunc(featureCTTimeout) }},
	{featureFibSkipNeigh, "6.3, 6.1.57", "route lookups of the tunnel slow path also read the neighbour table", false,
		func(p kernelProbes) error { return p.fibFlag(unix.BPF_FIB_LOOKUP_SKIP_NEIGH) }},
	{featureFibSrc, "6.8, 6.1.81", "ICMP \"fragmentation needed\" for IPv4 into a tunnel is sent by the kernel, not XDP", false,
		func(p kernelProbes) error { return p.fibFlag(bpfFibLookupSrc) }},
	{featureDecapL3, "6.3", "the tunnel slow path decapsulates with one helper call more", false,
		func(p kernelProbes) error { return p.adjustRoomFlag(bpfAdjRoomDecapL3IPv4) }},
	// The same series let XDP redirect multi-buffer frames to devices
	// that say they take them (xdp_do_redirect refused them before), and
	// a veth say whether its peer has NAPI.
	{FeatureXDPFeatures, "6.3", "frames beyond one buffer (an MTU above " + fmt.Sprint(SingleBufferMTU) +
		" on a veth) are forwarded by the kernel, not XDP, and a veth's peer in another namespace is read from there", false,
		func(p kernelProbes) error { return p.xdpFeatures() }},
}

// UAPI values golang.org/x/sys does not name.
const (
	bpfFibLookupSrc       = 1 << 4 // BPF_FIB_LOOKUP_SRC
	bpfAdjRoomDecapL3IPv4 = 1 << 7 // BPF_F_ADJ_ROOM_DECAP_L3_IPV4
)

// probeKernel asks p about every feature; cached, when not nil, answers
// the questions whose answer cannot change.
func probeKernel(p kernelProbes, cached map[string]error) KernelReport {
	r := KernelReport{Release: p.release()}
	for _, f := range kernelFeatures {
		kf := KernelFeature{Name: f.name, Since: f.since, Cost: f.cost}
		err, ok := cached[f.name]
		if !ok {
			err = f.probe(p)
		}
		switch {
		case err == nil:
			kf.Present = true
		case !errors.Is(err, ebpf.ErrNotSupported):
			kf.Err = err.Error()
		}
		r.Features = append(r.Features, kf)
	}
	return r
}

var (
	stableProbes sync.Once
	stableAnswer map[string]error
	// found holds the volatile features found once: a module's kfuncs
	// stay while anything uses the module, and asking again would parse
	// its BTF on every attach.
	found = struct {
		sync.Mutex
		m map[string]error
	}{m: map[string]error{}}
)

// ProbeKernel finds which of the features the data plane uses the running
// kernel has. It needs root (it loads and runs tiny programs); without,
// every probe fails and says so. After the first call only the volatile
// questions not yet answered yes are asked again.
func ProbeKernel() KernelReport {
	stableProbes.Do(probeStable)
	found.Lock()
	defer found.Unlock()
	known := maps.Clone(stableAnswer)
	maps.Copy(known, found.m)
	r := probeKernel(realProbes, known)
	for _, f := range r.Features {
		if f.Present {
			found.m[f.Name] = nil
		}
	}
	return r
}

func probeStable() {
	stableAnswer = map[string]error{}
	for _, f := range kernelFeatures {
		if !f.volatile {
			stableAnswer[f.name] = f.probe(realProbes)
		}
	}
}

// stableProbe is the answer about one feature that cannot change.
func stableProbe(name string) error {
	stableProbes.Do(probeStable)
	return stableAnswer[name]
}

var realProbes = kernelProbes{
	release:        kernelRelease,
	tcx:            probeTCX,
	kfunc:          probeKfunc,
	fibFlag:        probeFibFlag,
	adjustRoomFlag: probeAdjustRoomFlag,
	xdpFeatures:    probeXDPFeatures,
}

func probeXDPFeatures() error {
	err := vethnapi.Available()
	if errors.Is(err, vethnapi.ErrNoXDPFeatures) {
		return fmt.Errorf("%w: %w", err, ebpf.ErrNotSupported)
	}
	return err
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// probeTCX attaches a program to an ifindex no interface has: a kernel
// with TCX says ENODEV, one without cannot create the link at all.
func probeTCX() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()},
	})
	if err != nil {
		return fmt.Errorf("load a TC program: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachTCX(link.TCXOptions{Interface: math.MaxInt32, Program: prog, Attach: ebpf.AttachTCXIngress})
	if err == nil {
		l.Close()
		return nil
	}
	if errors.Is(err, unix.ENODEV) {
		return nil
	}
	return err
}

// probeKfunc looks name up in the kernel's BTF and in nf_conntrack's,
// where cilium/ebpf finds the conntrack kfuncs when it loads the program.
func probeKfunc(name string) error {
	var fn *btf.Func
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return fmt.Errorf("kernel BTF: %w", err)
	}
	if spec.TypeByName(name, &fn) == nil {
		return nil
	}
	mod, err := btf.LoadKernelModuleSpec("nf_conntrack")
	if err != nil {
		return fmt.Errorf("%s: nf_conntrack's BTF: %w (%w)", name, err, ebpf.ErrNotSupported)
	}
	if err := mod.TypeByName(name, &fn); err != nil {
		return fmt.Errorf("%s: %w (%w)", name, err, ebpf.ErrNotSupported)
	}
	return nil
}

// probeFibFlag runs bpf_fib_lookup with flag and no address family: a
// kernel that knows the flag answers -EAFNOSUPPORT, one that does not
// -EINVAL (the flags are checked first).
func probeFibFlag(flag uint32) error {
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1), asm.Mov.Imm(asm.R0, 0)}
	for off := int16(-64); off < 0; off += 8 {
		insns = append(insns, asm.StoreMem(asm.RFP, off, asm.R0, asm.DWord))
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -64),
		asm.Mov.Imm(asm.R3, 64), // sizeof(struct bpf_fib_lookup)
		asm.Mov.Imm(asm.R4, int32(flag)),
		asm.FnFibLookup.Call(),
		asm.Return(),
	)
	return runProbe(ebpf.XDP, insns, fmt.Sprintf("bpf_fib_lookup flag %#x", flag))
}

// probeAdjustRoomFlag runs bpf_skb_adjust_room with flag on a frame that
// is not IP: a kernel that knows the flag answers -ENOTSUPP, one that does
// not -EINVAL.
func probeAdjustRoomFlag(flag uint64) error {
	insns := asm.Instructions{
		asm.Mov.Imm(asm.R2, -40),
		asm.Mov.Imm(asm.R3, 1), // BPF_ADJ_ROOM_MAC
		asm.LoadImm(asm.R4, int64(flag), asm.DWord),
		asm.FnSkbAdjustRoom.Call(),
		asm.Return(),
	}
	return runProbe(ebpf.SchedCLS, insns, fmt.Sprintf("bpf_skb_adjust_room flag %#x", flag))
}

// runProbe loads and runs a probe program once on a zeroed frame: its
// return value -EINVAL means the kernel refused the flag.
func runProbe(typ ebpf.ProgramType, insns asm.Instructions, what string) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: typ, License: "GPL", Instructions: insns})
	if err != nil {
		return fmt.Errorf("probe %s: %w", what, err)
	}
	defer prog.Close()
	ret, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
	if err != nil {
		return fmt.Errorf("probe %s: %w", what, err)
	}
	if int32(ret) == -int32(unix.EINVAL) {
		return fmt.Errorf("%s: %w", what, ebpf.ErrNotSupported)
	}
	return nil
}
