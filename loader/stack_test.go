package loader

import (
	"errors"
	"fmt"
	"net"
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
// proves nothing for 6.1), summed along each call chain of each program,
// for every role and conntrack gate a port is loaded with: each makes the
// verifier follow other paths (the rest is dead code to it), so each has
// its own depths.
func TestStackWithinOldVerifiers(t *testing.T) {
	requirePrivileged(t)
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	for _, role := range []Role{RoleNone, RoleWAN, RoleLAN} {
		for _, gate := range []CTGate{CTGateOff, CTGateOn} {
			spec, err := portSpecFor(1, mac, role, gate, ProbeKernel())
			if err != nil {
				t.Fatal(err)
			}
			checkStack(t, role.String()+"/gate "+string(gate), spec)
		}
	}
}

var stackDepth = regexp.MustCompile(`stack depth ([0-9+]+)`)

func checkStack(t *testing.T, variant string, spec *ebpf.CollectionSpec) {
	t.Helper()
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Log(strings.Join(ve.Log[max(0, len(ve.Log)-40):], "\n"))
		}
		t.Fatalf("%s: %v", variant, err)
	}
	defer coll.Close()
	for name, prog := range coll.Programs {
		frame, err := verifiedFrames(prog)
		if err != nil {
			t.Fatalf("%s: %s: %v", variant, name, err)
		}
		g := callGraph(spec.Programs[name].Instructions)
		for f := range g.loops {
			// The verifier adds 3 slots to the frame of a function
			// whose bpf_loop it inlines, after the combined check (6.1
			// too): not part of what that check adds up.
			if frame[f] >= 24 {
				frame[f] -= 24
			}
		}
		chain, total := deepestChain(g, frame, g.funcs[0])
		if total > stackBudget {
			t.Errorf("%s: %s: its call chain %s takes %d octets on a 6.1 verifier (each frame rounded up to 32), over the budget of %d (of the 512 it allows)",
				variant, name, chainString(chain, frame), total, stackBudget)
		} else {
			t.Logf("%s: %s: deepest chain %s: %d octets", variant, name, chainString(chain, frame), total)
		}
	}
}

// verifiedFrames returns the stack depth the verifier found for each
// function of prog, by name. A function it never reached is removed from
// the program after verification (and has none); 6.1 checks the call
// chains before that, counting such a callee 32, as deepestChain does.
func verifiedFrames(prog *ebpf.Program) (map[string]int, error) {
	m := stackDepth.FindStringSubmatch(prog.VerifierLog)
	if m == nil {
		return nil, fmt.Errorf("no stack depth in the verifier's log:\n%s", prog.VerifierLog)
	}
	info, err := prog.Info()
	if err != nil {
		return nil, err
	}
	funcs, err := info.FuncInfos()
	if err != nil {
		return nil, err
	}
	depths := strings.Split(m[1], "+")
	if len(depths) != len(funcs) {
		return nil, fmt.Errorf("%d functions verified, %d stack depths (%s) in the verifier's log", len(funcs), len(depths), m[1])
	}
	frame := make(map[string]int)
	for i, f := range funcs {
		v, err := strconv.Atoi(depths[i])
		if err != nil {
			return nil, fmt.Errorf("stack depth %q: %w", m[1], err)
		}
		frame[f.Func.Name] = v
	}
	return frame, nil
}

// progCalls is the call graph of one program's flattened instructions:
// its functions, which function references which (a call, or a callback
// handed to a helper such as bpf_loop: the verifier runs it on a frame of
// its own), and which call bpf_loop.
type progCalls struct {
	funcs []string
	calls map[string][]string
	loops map[string]bool
}

func callGraph(insns asm.Instructions) progCalls {
	g := progCalls{calls: make(map[string][]string), loops: make(map[string]bool)}
	cur := ""
	seen := make(map[[2]string]bool)
	for _, ins := range insns {
		if sym := ins.Symbol(); sym != "" {
			cur = sym
			g.funcs = append(g.funcs, sym)
		}
		if ins.IsFunctionReference() && ins.Reference() != "" {
			if e := [2]string{cur, ins.Reference()}; !seen[e] {
				seen[e] = true
				g.calls[cur] = append(g.calls[cur], ins.Reference())
			}
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

func chainString(chain []string, frame map[string]int) string {
	var s []string
	for _, f := range chain {
		s = append(s, f+"("+strconv.Itoa(frame[f])+")")
	}
	return strings.Join(s, " -> ")
}
