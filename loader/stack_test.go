package loader

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// stackBudget is what the deepest call chain of any program may take by the
// rule of verifiers before 6.4 (Debian 12's 6.1): they add up the frames of
// a call chain, each rounded up to 32 octets (a frame of none counts 32),
// and refuse more than 512 ("combined stack size of 2 calls is 544. Too
// large" was every program refused on 6.1 after xdpr_main grew to 488
// octets, found by the kernel matrix). The budget keeps 128 of the 512
// free, so that a feature added to the data plane (VXLAN, 6in4 are on
// their way, in subprograms of their own) does not refuse every program
// on 6.1 again the day it lands.
const stackBudget = 384

// TestStackWithinOldVerifiers checks stackBudget on the stack depths this
// host's verifier reports (it accepts up to 512 per frame, so loading here
// proves nothing for 6.1), summed along each call chain of each program.
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
		var depths []int
		for _, f := range strings.Split(m[1], "+") {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s: stack depth %q: %v", name, m[1], err)
			}
			depths = append(depths, v)
		}
		g := callGraph(spec.Programs[name].Instructions)
		if len(g.funcs) != len(depths) {
			t.Fatalf("%s: %d functions in the object, %d stack depths (%s) in the verifier's log",
				name, len(g.funcs), len(depths), m[1])
		}
		frame := make(map[string]int)
		for i, f := range g.funcs {
			frame[f] = depths[i]
			// The verifier adds 3 slots to the frame of a function
			// whose bpf_loop it inlines, after the combined check (6.1
			// too): not part of what that check adds up.
			if g.loops[f] {
				frame[f] -= 24
			}
		}
		chain, total := deepestChain(g, frame, g.funcs[0])
		if total > stackBudget {
			t.Errorf("%s: stack depth %s: its call chain %s takes %d octets on a 6.1 verifier (each frame rounded up to 32), over the budget of %d (of the 512 it allows)",
				name, m[1], strings.Join(chain, " -> "), total, stackBudget)
		} else {
			t.Logf("%s: deepest chain %s: %d octets", name, strings.Join(chain, " -> "), total)
		}
	}
}

// progCalls is the call graph of one program's flattened instructions:
// its functions in the order the verifier numbers its subprograms (by
// first instruction), which function references which (a call, or a
// callback handed to a helper such as bpf_loop: the verifier runs it on a
// frame of its own), and which call bpf_loop.
type progCalls struct {
	funcs []string
	calls map[string][]string
	loops map[string]bool
}

func callGraph(insns asm.Instructions) progCalls {
	g := progCalls{calls: make(map[string][]string), loops: make(map[string]bool)}
	cur := ""
	for _, ins := range insns {
		if sym := ins.Symbol(); sym != "" {
			cur = sym
			g.funcs = append(g.funcs, sym)
		}
		if ins.IsFunctionReference() && ins.Reference() != "" {
			g.calls[cur] = append(g.calls[cur], ins.Reference())
		}
		if ins.IsBuiltinCall() && ins.Constant == int64(asm.FnLoop) {
			g.loops[cur] = true
		}
	}
	return g
}

// deepestChain returns the call chain from f that takes the most stack by
// the 6.1 rule, and what it takes.
func deepestChain(g progCalls, frame map[string]int, f string) ([]string, int) {
	var worst []string
	most := 0
	for _, c := range g.calls[f] {
		if chain, n := deepestChain(g, frame, c); n > most {
			worst, most = chain, n
		}
	}
	round := (max(frame[f], 1) + 31) / 32 * 32
	return append([]string{f}, worst...), round + most
}
