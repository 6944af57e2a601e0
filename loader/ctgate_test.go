package loader

// The conntrack gate's decisions (bpf/include/conntrack.h), as
// BPF_PROG_TEST_RUN cases inside the router namespace of the data-plane
// tests, whose conntrack table each case fills with the conntrack CLI
// (ctnetlink) before running: what XDP forwards and what it hands to the
// kernel, by entry state, TCP flags, protocol, NAT and NPT side, and the
// timeout refresh. A forwarded frame must be exactly what the ungated path
// makes of it; a passed one must be untouched.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// ctLab is the data-plane lab with a gated program beside each ungated one.
type ctLab struct {
	*routerLab
	gated map[string]*ebpf.Program
}

func newCTLab(t *testing.T) *ctLab {
	t.Helper()
	requirePrivileged(t)
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Fatalf("conntrack gate test needs the conntrack CLI (Debian package conntrack; make test installs it): %v", err)
	}
	rl := newRouterLab(t)
	cl := &ctLab{routerLab: rl, gated: map[string]*ebpf.Program{}}
	if err := rl.lab.Do(rl.ns, func() error { return cl.loadGated(t) }); err != nil {
		t.Fatal(err)
	}
	return cl
}

// loadGated loads a gated program for lan0 and wan0 (in the router
// namespace, over the lab's maps).
func (cl *ctLab) loadGated(t *testing.T) error {
	for _, name := range []string{"lan0", "wan0"} {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		role := RoleLAN
		if name == "wan0" {
			role = RoleWAN
		}
		cl.gated[name] = loadTestProgramGate(t, ifc, role, CTGateOn, cl.maps)
	}
	return nil
}

// conntrack runs the conntrack CLI in the router namespace.
func (cl *ctLab) conntrack(t *testing.T, args ...string) string {
	t.Helper()
	var out []byte
	err := cl.lab.Do(cl.ns, func() error {
		var err error
		out, err = exec.Command("conntrack", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("conntrack %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// run runs prog on frame arriving on ingress in the router namespace and
// returns the verdict, the output and the counter deltas, events included.
func (cl *ctLab) run(prog *ebpf.Program, frame []byte, ingress string) (uint32, []byte, []routerXdprCounterVal, error) {
	var (
		verdict uint32
		out     []byte
		delta   []routerXdprCounterVal
	)
	err := cl.lab.Do(cl.ns, func() error {
		before, err := allCounters(cl.maps.XdprCounters)
		if err != nil {
			return err
		}
		if verdict, out, err = runXDP(prog, frame, cl.ifindex[ingress]); err != nil {
			return fmt.Errorf("prog.Run: %w", err)
		}
		delta, err = allCounters(cl.maps.XdprCounters)
		for i := range delta {
			delta[i].Packets -= before[i].Packets
			delta[i].Bytes -= before[i].Bytes
		}
		return err
	})
	return verdict, out, delta, err
}

// allCounters is counterSnapshot with the event slots behind the packet
// counters.
func allCounters(m *ebpf.Map) ([]routerXdprCounterVal, error) {
	return sumCounters(m, int(routerXdprCounterLayoutXDPR_EV_BASE)+int(routerXdprEventXDPR_EV__MAX))
}

// ctCase is one gate decision: the conntrack entries present (conntrack -I
// arguments, one entry each), the frame and what the gated program must do.
type ctCase struct {
	name    string
	entries [][]string
	ingress string
	frame   []byte
	ungated bool // run the ungated program instead
	verdict uint32
	counter string
}

// ctEntry is `conntrack -I` for a flow of proto between src:sport and
// dst:dport with a timeout of 100 s, and extra arguments (status, state,
// NAT).
func ctEntry(proto, src, dst string, sport, dport int, extra ...string) []string {
	return append([]string{"-I", "-p", proto, "-s", src, "-d", dst,
		"--sport", strconv.Itoa(sport), "--dport", strconv.Itoa(dport), "-t", "100"}, extra...)
}

// Ports of the frames frameSpec builds.
const (
	udpSport, udpDport = 40000, 5353
	tcpSport, tcpDport = 40001, 443
)

func ctCases(t *testing.T) []ctCase {
	const (
		host4, far4 = "10.0.1.2", "198.51.100.9"
		host6, far6 = "2001:db8:1::2", "2001:db8:100::9"
		offTCPFlags = 14 + 20 + 13
	)
	replied := []string{"-u", "SEEN_REPLY,ASSURED"}
	udp4Est := ctEntry("udp", host4, far4, udpSport, udpDport, replied...)
	tcp4Est := ctEntry("tcp", host4, far4, tcpSport, tcpDport, append([]string{"--state", "ESTABLISHED"}, replied...)...)
	fromWAN := []frameOpt{to(labIfaceByName("wan0").mac), from(labIfaceByName("wan0").peerMAC)}
	v4 := udp4(t, host4, far4)
	tcp4 := udp4(t, host4, far4, tcp())
	pass, redirect := xdpPass, xdpRedirect

	// NPT: conntrack holds the inside address (conntrack.h).
	rule := nptTestRules[2] // rfc6296-64, inside fd64:1:2:3::/64
	inside := rule.host(false, "::5")
	outside := nptOutside(t, rule, inside)

	return []ctCase{
		{"no entry: new", nil, "lan0", v4, false, pass, "pass_ct_new"},
		{"unreplied entry", [][]string{ctEntry("udp", host4, far4, udpSport, udpDport)}, "lan0", v4, false, pass, "pass_ct_unreplied"},
		{"established udp forwarded", [][]string{udp4Est}, "lan0", v4, false, redirect, "fwd_ipv4"},
		{"established udp reply direction forwarded", [][]string{udp4Est}, "wan0",
			udp4(t, far4, host4, append(fromWAN, swapPorts())...), false, redirect, "fwd_ipv4"},
		{"entry of another flow: new", [][]string{ctEntry("udp", host4, far4, udpSport+1, udpDport, replied...)}, "lan0", v4, false, pass, "pass_ct_new"},
		{"established tcp ack forwarded", [][]string{tcp4Est}, "lan0", tcp4, false, redirect, "fwd_ipv4"},
		{"tcp syn", [][]string{tcp4Est}, "lan0", fixTCP(set(tcp4, offTCPFlags, 0x02)), false, pass, "pass_ct_tcp_flags"},
		{"tcp fin", [][]string{tcp4Est}, "lan0", fixTCP(set(tcp4, offTCPFlags, 0x11)), false, pass, "pass_ct_tcp_flags"},
		{"tcp rst", [][]string{tcp4Est}, "lan0", fixTCP(set(tcp4, offTCPFlags, 0x14)), false, pass, "pass_ct_tcp_flags"},
		{"tcp replied but syn_recv", [][]string{ctEntry("tcp", host4, far4, tcpSport, tcpDport, append([]string{"--state", "SYN_RECV"}, replied...)...)},
			"lan0", tcp4, false, pass, "pass_ct_tcp_state"},
		{"tcp closing (fin_wait)", [][]string{ctEntry("tcp", host4, far4, tcpSport, tcpDport, append([]string{"--state", "FIN_WAIT"}, replied...)...)},
			"lan0", tcp4, false, pass, "pass_ct_tcp_state"},
		{"udp entry does not cover tcp", [][]string{udp4Est}, "lan0",
			udp4(t, host4, far4, tcp()), false, pass, "pass_ct_new"},
		{"icmpv6 echo", nil, "lan0", icmp6(t, host6, far6, 128, 0, 0x12340001, []byte("ping")), false, pass, "pass_ct_proto"},
		{"ipv4 without transport", nil, "lan0", udp4(t, host4, far4, noL4()), false, pass, "pass_ct_proto"},
		{"snat entry", [][]string{ctEntry("udp", host4, far4, udpSport, udpDport, append([]string{"--src-nat", "10.0.2.1"}, replied...)...)},
			"lan0", v4, false, pass, "pass_ct_nat"},
		{"ipv6 no entry", nil, "lan0", udp6(t, host6, far6), false, pass, "pass_ct_new"},
		{"ipv6 established forwarded", [][]string{ctEntry("udp", host6, far6, udpSport, udpDport, replied...)}, "lan0",
			udp6(t, host6, far6), false, redirect, "fwd_ipv6"},
		{"ipv6 tcp established forwarded", [][]string{ctEntry("tcp", host6, far6, tcpSport, tcpDport, append([]string{"--state", "ESTABLISHED"}, replied...)...)},
			"lan0", udp6(t, host6, far6, tcp()), false, redirect, "fwd_ipv6"},
		{"gate off: forwarded without entry", nil, "lan0", v4, true, redirect, "fwd_ipv4"},
		{"gate off: tcp syn forwarded", nil, "lan0", fixTCP(set(tcp4, offTCPFlags, 0x02)), true, redirect, "fwd_ipv4"},
		// NPT: the entry's addresses are the inside ones.
		{"snpt: entry with inside source forwarded", [][]string{ctEntry("udp", inside, far6, udpSport, udpDport, replied...)},
			"lan0", udp6(t, inside, far6), false, redirect, "fwd_npt_snpt"},
		{"snpt: entry with outside source only: new", [][]string{ctEntry("udp", outside, far6, udpSport, udpDport, replied...)},
			"lan0", udp6(t, inside, far6), false, pass, "pass_ct_new"},
		{"dnpt: entry with inside destination forwarded", [][]string{ctEntry("udp", inside, far6, udpSport, udpDport, replied...)},
			"wan0", udp6(t, far6, outside, append(fromWAN, swapPorts())...), false, redirect, "fwd_npt_dnpt"},
		{"dnpt: entry with outside destination only: new", [][]string{ctEntry("udp", outside, far6, udpSport, udpDport, replied...)},
			"wan0", udp6(t, far6, outside, append(fromWAN, swapPorts())...), false, pass, "pass_ct_new"},
	}
}

// nptOutside is inside's address after SNPT under rule.
func nptOutside(t *testing.T, rule nptTestRule, inside string) string {
	a, ok := modelMap(netip.MustParseAddr(inside).As16(), rule.model(false))
	if !ok {
		t.Fatalf("%s unmappable under %s", inside, rule.name)
	}
	return netip.AddrFrom16(a).String()
}

// swapPorts makes a UDP or TCP frame the reply of frameSpec's default
// ports.
func swapPorts() frameOpt {
	return func(f *frameSpec) { f.swap = true }
}

// fixTCP recomputes the TCP checksum of an IPv4 frame after byte surgery.
func fixTCP(b []byte) []byte {
	ip := b[14:34]
	l4 := b[34:]
	l4[16], l4[17] = 0, 0
	pseudo := append(append([]byte{}, ip[12:20]...), 0, 6, byte(len(l4)>>8), byte(len(l4)))
	s := rfc1071(append(pseudo, l4...))
	l4[16], l4[17] = byte(s>>8), byte(s)
	return b
}

func TestConntrackGate(t *testing.T) {
	cl := newCTLab(t)
	cl.setNPT(t, []nptTestRule{nptTestRules[2]})
	// The host behind lan0 for the NPT inside prefix is routed by setNPT.
	for _, c := range ctCases(t) {
		t.Run(c.name, func(t *testing.T) {
			cl.conntrack(t, "-F")
			for _, e := range c.entries {
				cl.conntrack(t, e...)
			}
			// Past the gate cache's bound: the cases reuse tuples,
			// and a verdict of the case before may still be cached.
			time.Sleep(ctCacheLife + 20*time.Millisecond)
			prog := cl.gated[c.ingress]
			if c.ungated {
				prog = cl.progs[c.ingress]
			}
			verdict, out, delta, err := cl.run(prog, c.frame, c.ingress)
			if err != nil {
				t.Fatal(err)
			}
			if verdict != c.verdict {
				t.Errorf("verdict %s, want %s", verdictName(verdict), verdictName(c.verdict))
			}
			want := c.frame
			if c.verdict == xdpRedirect {
				// Exactly what the ungated path sends.
				_, ungated, _, err := cl.run(cl.progs[c.ingress], c.frame, c.ingress)
				if err != nil {
					t.Fatal(err)
				}
				want = ungated
				if err := verifyChecksums(out); err != nil {
					t.Errorf("output frame: %v", err)
				}
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output frame differs: %s", diffBytes(out, want))
			}
			if err := cl.checkCounters(delta[:routerXdprCounterXDPR_CNT__MAX], cl.counterIndex(t, c.counter), len(c.frame)); err != nil {
				t.Error(err)
			}
		})
	}
	cl.conntrack(t, "-F")
}

// TestConntrackGateRefresh: a forwarded flow whose entry has less than the
// refresh threshold left (half the established timeout, at most 15 s) gets
// the established timeout again (conntrack -L shows it), counted as
// ct_refresh; one with more left is not touched.
func TestConntrackGateRefresh(t *testing.T) {
	cl := newCTLab(t)
	const host, far = "10.0.1.2", "198.51.100.9"
	var stream uint64
	if err := cl.lab.Do(cl.ns, func() error {
		stream = readCTTimeouts().udpSeconds
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	refreshIdx := int(routerXdprCounterLayoutXDPR_EV_BASE) + int(routerXdprEventXDPR_EV_CT_REFRESH)
	for _, c := range []struct {
		name      string
		timeout   uint64
		refreshed bool
	}{
		{"below the threshold: refreshed", 10, true},
		{"above the threshold: untouched", stream - 5, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl.conntrack(t, "-F")
			e := ctEntry("udp", host, far, udpSport, udpDport, "-u", "SEEN_REPLY,ASSURED")
			e[len(e)-3] = strconv.FormatUint(c.timeout, 10) // -t
			cl.conntrack(t, e...)
			verdict, _, delta, err := cl.run(cl.gated["lan0"], udp4(t, host, far), "lan0")
			if err != nil {
				t.Fatal(err)
			}
			if verdict != xdpRedirect {
				t.Fatalf("verdict %s, want XDP_REDIRECT", verdictName(verdict))
			}
			left := ctTimeoutLeft(t, cl.conntrack(t, "-L", "-p", "udp", "-s", host, "-d", far))
			if c.refreshed {
				if left < stream-2 {
					t.Errorf("timeout %d s left after refresh, want about %d", left, stream)
				}
				if delta[refreshIdx].Packets != 1 {
					t.Errorf("ct_refresh +%d, want +1", delta[refreshIdx].Packets)
				}
			} else {
				if left > c.timeout {
					t.Errorf("timeout %d s left, want at most the %d s set (no refresh)", left, c.timeout)
				}
				if delta[refreshIdx].Packets != 0 {
					t.Errorf("ct_refresh +%d, want unchanged", delta[refreshIdx].Packets)
				}
			}
		})
	}
	cl.conntrack(t, "-F")
}

// ctTimeoutLeft reads the seconds left from a one-entry `conntrack -L`
// listing ("udp 17 119 src=...").
func ctTimeoutLeft(t *testing.T, listing string) uint64 {
	t.Helper()
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && (f[0] == "udp" || f[0] == "tcp") {
			v, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				t.Fatalf("timeout in %q: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no entry in %q", listing)
	return 0
}

// TestConntrackGateWithoutKfuncs: on a kernel without the conntrack
// kfuncs (nf_conntrack not loaded, or older than the gate needs), cilium/ebpf
// poisons the gate's weak kfunc calls and the verifier rejects a poisoned
// call it can reach, so a gated port could not be attached at all. The
// variant for such kernels (compat.h) must load with the calls poisoned,
// and hand to the kernel every packet the gate would have forwarded
// (pass_ct_new: netfilter decides), never forward one.
func TestConntrackGateWithoutKfuncs(t *testing.T) {
	cl := newCTLab(t)
	cl.setNPT(t, []nptTestRule{nptTestRules[2]})
	this := ProbeKernel()
	if !this.ctKfuncs() {
		t.Skipf("this kernel lacks the conntrack kfuncs: %s", this.ctKfuncsLine())
	}
	noCT := without(this, featureCTLookup)
	err := cl.lab.Do(cl.ns, func() error {
		ifc, err := net.InterfaceByName("lan0")
		if err != nil {
			return err
		}
		for _, kern := range []KernelReport{this, noCT} {
			spec, err := portSpecFor(ifc.Index, ifc.HardwareAddr, RoleLAN, CTGateOn, kern)
			if err != nil {
				return err
			}
			poisoned := 0
			for _, p := range spec.Programs {
				for i, ins := range p.Instructions {
					if ins.IsKfuncCall() {
						// What cilium/ebpf makes of a weak kfunc the
						// kernel lacks (linker.go, kfuncCallPoisonBase).
						p.Instructions[i] = asm.BuiltinFunc(0xdedc0de).Call().WithMetadata(ins.Metadata)
						p.Instructions[i] = btf.WithFuncMetadata(p.Instructions[i], nil)
						poisoned++
					}
				}
			}
			if poisoned == 0 {
				return fmt.Errorf("no kfunc call in the gated program")
			}
			for _, m := range spec.Maps {
				m.Pinning = ebpf.PinNone
			}
			var progs struct {
				XdprMain *ebpf.Program `ebpf:"xdpr_main"`
			}
			err = spec.LoadAndAssign(&progs, &ebpf.CollectionOptions{MapReplacements: cl.maps.replacements()})
			var ve *ebpf.VerifierError
			switch {
			case kern.ctKfuncs() && !errors.As(err, &ve):
				return fmt.Errorf("poisoned kfunc calls reachable, yet no verifier error: %v", err)
			case !kern.ctKfuncs() && err != nil:
				return fmt.Errorf("the variant without kfuncs does not load with them poisoned: %w", err)
			case err == nil:
				progs.XdprMain.Close()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	gated := map[string]*ebpf.Program{}
	err = cl.lab.Do(cl.ns, func() error {
		for name, role := range map[string]Role{"lan0": RoleLAN, "wan0": RoleWAN} {
			ifc, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			p, err := loadPortProgramFor(ifc, role, CTGateOn, cl.maps, noCT)
			if err != nil {
				return err
			}
			t.Cleanup(func() { p.Close() })
			gated[name] = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ctCases(t) {
		if c.ungated || c.verdict != xdpRedirect {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			cl.conntrack(t, "-F")
			for _, e := range c.entries {
				cl.conntrack(t, e...)
			}
			verdict, out, delta, err := cl.run(gated[c.ingress], c.frame, c.ingress)
			if err != nil {
				t.Fatal(err)
			}
			if verdict != xdpPass || !bytes.Equal(out, c.frame) {
				t.Errorf("verdict %s (frame changed: %t), want XDP_PASS untouched", verdictName(verdict), !bytes.Equal(out, c.frame))
			}
			if err := cl.checkCounters(delta[:routerXdprCounterXDPR_CNT__MAX], cl.counterIndex(t, "pass_ct_new"), len(c.frame)); err != nil {
				t.Error(err)
			}
		})
	}
	cl.conntrack(t, "-F")
}
