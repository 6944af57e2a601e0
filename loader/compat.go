package loader

import (
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// compatSpec returns the router objects with the constants of
// bpf/include/compat.h set for the kernel kern describes, so the verifier
// drops what a missing feature would need: every program is loaded from
// such a spec.
func compatSpec(kern KernelReport) (*ebpf.CollectionSpec, error) {
	spec, err := loadRouter()
	if err != nil {
		return nil, err
	}
	skipNeigh := uint32(0)
	if kern.Has(featureFibSkipNeigh) {
		skipNeigh = unix.BPF_FIB_LOOKUP_SKIP_NEIGH
	}
	ct := uint32(0)
	if kern.ctKfuncs() {
		ct = 1
	}
	decapL3 := uint32(0)
	if kern.Has(featureDecapL3) {
		decapL3 = 1
	}
	return spec, setVariables(spec, map[string]any{"xdpr_fib_skip_neigh": skipNeigh, "xdpr_ct_kfuncs": ct,
		"xdpr_adj_room_decap_l3": decapL3})
}

// ctKfuncs says whether the conntrack gate can run (compat.h).
func (r KernelReport) ctKfuncs() bool {
	return r.Has(featureCTLookup) && r.Has(featureCTRelease) && r.Has(featureCTTimeout)
}

// ctKfuncsLine is the report's line for the first conntrack kfunc it
// lacks, or "".
func (r KernelReport) ctKfuncsLine() string {
	for _, n := range []string{featureCTLookup, featureCTRelease, featureCTTimeout} {
		if l := r.Line(n); l != "" {
			return l
		}
	}
	return ""
}

func setVariables(spec *ebpf.CollectionSpec, vars map[string]any) error {
	for name, v := range vars {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("BPF object lacks variable %s", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}
