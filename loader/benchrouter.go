package loader

import (
	"fmt"
	"net"

	"github.com/cilium/ebpf"
)

// BenchRouter is xdpr_main loaded with private, unpinned maps, for
// BPF_PROG_TEST_RUN measurements (test/bench): it touches no bpffs and no
// attached instance, and goes away with Close.
type BenchRouter struct {
	objs routerObjects
}

// NewBenchRouter loads the data plane program with fresh maps.
func NewBenchRouter() (*BenchRouter, error) {
	spec, err := loadRouter()
	if err != nil {
		return nil, err
	}
	// Pinning by name would adopt (or create) maps under a bpffs directory;
	// a benchmark must neither disturb a running instance nor leave pins.
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	b := &BenchRouter{}
	if err := spec.LoadAndAssign(&b.objs, nil); err != nil {
		return nil, fmt.Errorf("load xdpr_main for benchmarking: %w", err)
	}
	return b, nil
}

// AddInterface records ifindex as an attached interface with Ethernet address
// mac, as Attach would, so that frames arriving on it are forwarded and
// frames routed out of it are redirected. The devmap resolves ifindex in the
// calling thread's network namespace.
func (b *BenchRouter) AddInterface(ifindex int, name string, mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("interface %d: want a 6-byte MAC, got %q", ifindex, mac)
	}
	v := routerXdprIface{Ifindex: uint32(ifindex)}
	copy(v.Mac[:], mac)
	for i := 0; i < len(name) && i < len(v.Name)-1; i++ {
		v.Name[i] = int8(name[i])
	}
	if err := b.objs.XdprIfaces.Put(v.Ifindex, v); err != nil {
		return fmt.Errorf("record interface %d in xdpr_ifaces: %w", ifindex, err)
	}
	if err := b.objs.XdprTxPorts.Put(uint32(ifindex), uint32(ifindex)); err != nil {
		return fmt.Errorf("add interface %d to xdpr_tx_ports: %w", ifindex, err)
	}
	return nil
}

// FD is the program's file descriptor, for BPF_PROG_TEST_RUN.
func (b *BenchRouter) FD() int { return b.objs.XdprMain.FD() }

// Counters reads the private counters, summed over CPUs, in enum order.
func (b *BenchRouter) Counters() ([]Counter, error) {
	d := &Dataplane{maps: b.objs.routerMaps}
	return d.Counters()
}

// Close unloads the program and its maps.
func (b *BenchRouter) Close() error { return b.objs.Close() }
