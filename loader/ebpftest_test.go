package loader

// A small harness for privileged BPF tests, in the style of retina's
// pkg/plugin/ebpftest: it skips (never fails) where BPF cannot run, loads
// the embedded objects without touching /sys/fs/bpf, and wraps
// BPF_PROG_TEST_RUN for XDP.

import (
	"errors"
	"net"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// XDP verdicts (enum xdp_action).
const (
	xdpAborted  uint32 = 0
	xdpDrop     uint32 = 1
	xdpPass     uint32 = 2
	xdpTX       uint32 = 3
	xdpRedirect uint32 = 4
)

func verdictName(v uint32) string {
	switch v {
	case xdpAborted:
		return "XDP_ABORTED"
	case xdpDrop:
		return "XDP_DROP"
	case xdpPass:
		return "XDP_PASS"
	case xdpTX:
		return "XDP_TX"
	case xdpRedirect:
		return "XDP_REDIRECT"
	}
	return "XDP_UNKNOWN"
}

// requirePrivileged skips the test unless it runs as root on a kernel that
// loads XDP programs.
func requirePrivileged(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("data-plane test needs root (BPF_PROG_TEST_RUN, network namespaces); run as root to include it")
	}
	if err := features.HaveProgramType(ebpf.XDP); err != nil {
		tb.Skipf("this kernel cannot load XDP programs: %v", err)
	}
}

// loadTestMaps creates the router maps without pinning, so the test
// neither reads nor writes /sys/fs/bpf and starts from zeroed counters and
// empty maps; loadTestProgram loads one interface's program over them. Both
// are closed when the test ends.
func loadTestMaps(tb testing.TB) *routerMaps {
	tb.Helper()
	maps, err := loadUnpinnedMaps()
	if err != nil {
		skipOrFail(tb, err)
	}
	tb.Cleanup(func() { maps.Close() })
	return maps
}

func loadTestProgram(tb testing.TB, ifc *net.Interface, role Role, maps *routerMaps) *ebpf.Program {
	tb.Helper()
	return loadTestProgramGate(tb, ifc, role, CTGateOff, maps)
}

// loadTestProgramGate is loadTestProgram with the conntrack gate on or off.
func loadTestProgramGate(tb testing.TB, ifc *net.Interface, role Role, gate CTGate, maps *routerMaps) *ebpf.Program {
	tb.Helper()
	prog, err := loadPortProgram(ifc, role, gate, maps)
	if err != nil {
		skipOrFail(tb, err)
	}
	tb.Cleanup(func() { prog.Close() })
	return prog
}

func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	var ve *ebpf.VerifierError
	switch {
	case errors.As(err, &ve):
		// The program is wrong, not the machine: fail loudly.
		tb.Fatalf("verifier rejected the program: %+v", ve)
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.EPERM),
		errors.Is(err, unix.ENOSYS):
		tb.Skipf("BPF objects cannot be loaded here: %v", err)
	default:
		tb.Fatalf("load BPF objects: %v", err)
	}
}

// xdpMD mirrors struct xdp_md, the context BPF_PROG_TEST_RUN takes for XDP.
// data and data_meta are offsets (0: no metadata), data_end must be the
// frame length, egress_ifindex must be 0 on input.
type xdpMD struct {
	Data           uint32
	DataEnd        uint32
	DataMeta       uint32
	IngressIfindex uint32
	RxQueueIndex   uint32
	EgressIfindex  uint32
}

// runXDP runs prog once on frame as if it arrived on ingress (an ifindex in
// the calling thread's network namespace, 0 for none) and returns the
// verdict and the frame as the program left it.
func runXDP(prog *ebpf.Program, frame []byte, ingress int) (uint32, []byte, error) {
	opts := ebpf.RunOptions{
		Data:    frame,
		DataOut: make([]byte, len(frame)+256),
		Context: xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ingress)},
		Repeat:  1,
	}
	ret, err := prog.Run(&opts)
	if err != nil {
		return 0, nil, err
	}
	return ret, opts.DataOut, nil
}

// counterSnapshot reads every data-plane counter summed over CPUs.
func counterSnapshot(m *ebpf.Map) ([]routerXdprCounterVal, error) {
	return sumCounters(m, int(routerXdprCounterXDPR_CNT__MAX))
}

// sumCounters reads the first n slots of xdpr_counters summed over CPUs.
func sumCounters(m *ebpf.Map, n int) ([]routerXdprCounterVal, error) {
	out := make([]routerXdprCounterVal, n)
	var perCPU []routerXdprCounterVal
	for i := range out {
		if err := m.Lookup(uint32(i), &perCPU); err != nil {
			return nil, err
		}
		for _, v := range perCPU {
			out[i].Packets += v.Packets
			out[i].Bytes += v.Bytes
		}
	}
	return out, nil
}

// skbCtx is the head of struct __sk_buff up to ifindex, the context
// BPF_PROG_TEST_RUN takes for TC programs; only ifindex is set (the device
// the program runs on, in the calling thread's namespace).
type skbCtx struct {
	Len, PktType, Mark, QueueMapping, Protocol, VlanPresent, VlanTCI, VlanProto uint32
	Priority, IngressIfindex, Ifindex                                           uint32
}

// runTC runs a TC program on frame as if on ifindex and returns the
// verdict and the frame as the program left it.
func runTC(prog *ebpf.Program, frame []byte, ifindex int) (uint32, []byte, error) {
	opts := ebpf.RunOptions{
		Data:    frame,
		DataOut: make([]byte, len(frame)+256),
		Context: skbCtx{Ifindex: uint32(ifindex)},
		Repeat:  1,
	}
	ret, err := prog.Run(&opts)
	if err != nil {
		return 0, nil, err
	}
	return ret, opts.DataOut, nil
}
