package loader

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Verifiers before 6.4 (Debian 12's 6.1) add up a call chain's frames, each
// rounded up to 32 octets (a subprogram with none counts 32), and refuse
// more than 512: "combined stack size of 2 calls is 544. Too large" was
// every program refused on 6.1 after xdpr_main grew to 488 octets (found by
// the kernel matrix). This host's verifier accepts it, so the check is done
// here on the stack depths it reports.
func TestStackWithinOldVerifiers(t *testing.T) {
	requirePrivileged(t)
	spec, err := loadRouter()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	depth := regexp.MustCompile(`stack depth ([0-9+]+)`)
	for name, prog := range coll.Programs {
		m := depth.FindStringSubmatch(prog.VerifierLog)
		if m == nil {
			t.Fatalf("%s: no stack depth in the verifier's log:\n%s", name, prog.VerifierLog)
		}
		frames := strings.Split(m[1], "+")
		var n []int
		for _, f := range frames {
			v, _ := strconv.Atoi(f)
			n = append(n, v)
		}
		// The depth reported includes the 3 slots the verifier adds
		// when it inlines bpf_loop, after the combined check (6.1 too).
		if usesLoop(spec.Programs[name]) {
			n[0] -= 24
		}
		round := func(v int) int { return (max(v, 1) + 31) / 32 * 32 }
		worst := 0
		for _, v := range n[1:] {
			worst = max(worst, round(v))
		}
		if total := round(n[0]) + worst; total > 512 {
			t.Errorf("%s: stack depth %s (own frame %d): its deepest call chain takes %d octets on a 6.1 verifier, which allows 512", name, m[1], n[0], total)
		}
	}
}

func usesLoop(p *ebpf.ProgramSpec) bool {
	for _, ins := range p.Instructions {
		if ins.IsBuiltinCall() && ins.Constant == int64(asm.FnLoop) {
			return true
		}
	}
	return false
}
