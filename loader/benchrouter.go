package loader

import (
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
)

// BenchRouter is xdpr_main loaded with private, unpinned maps, for
// BPF_PROG_TEST_RUN measurements (test/bench): it touches no bpffs and no
// attached instance, and goes away with Close.
type BenchRouter struct {
	maps  *routerMaps
	progs map[int]*ebpf.Program
}

// NewBenchRouter creates the data plane's maps; AddPort loads a
// program instance per interface, as Attach does.
func NewBenchRouter() (*BenchRouter, error) {
	maps, err := loadUnpinnedMaps()
	if err != nil {
		return nil, fmt.Errorf("load xdpr_main for benchmarking: %w", err)
	}
	return &BenchRouter{maps: maps, progs: map[int]*ebpf.Program{}}, nil
}

// FD is the file descriptor of the program for frames arriving on ifindex,
// for BPF_PROG_TEST_RUN; -1 if AddInterface was not called for it.
func (b *BenchRouter) FD(ifindex int) int {
	if p, ok := b.progs[ifindex]; ok {
		return p.FD()
	}
	return -1
}

// Counters reads the private counters, summed over CPUs, in enum order.
func (b *BenchRouter) Counters() ([]Counter, error) {
	d := &Dataplane{maps: *b.maps}
	return d.Counters()
}

// Close unloads the programs and maps.
func (b *BenchRouter) Close() error {
	var errs []error
	for _, p := range b.progs {
		errs = append(errs, p.Close())
	}
	return errors.Join(append(errs, b.maps.Close())...)
}

// AddPort records ifindex as an attached interface with Ethernet address mac
// and role, as Attach would, so that frames arriving on it are forwarded and
// frames routed out of it are redirected (a WAN port also decapsulates
// ipip6). The devmap resolves ifindex in the calling thread's network
// namespace. The port forwards without the conntrack gate (AddPortGate).
func (b *BenchRouter) AddPort(ifindex int, name string, mac net.HardwareAddr, role Role) error {
	return b.AddPortGate(ifindex, name, mac, role, CTGateOff)
}

// AddPortGate is AddPort with the conntrack gate on or off (auto is
// resolved in the calling thread's network namespace, as Attach does).
// Gated, the program looks flows up in the conntrack table of the network
// namespace of the device a frame arrives on (for BPF_PROG_TEST_RUN: the
// ingress ifindex given to the run, in the caller's namespace).
func (b *BenchRouter) AddPortGate(ifindex int, name string, mac net.HardwareAddr, role Role, gate CTGate) error {
	gate, _, err := ResolveCTGate(gate)
	if err != nil {
		return err
	}
	ifc := &net.Interface{Index: ifindex, Name: name, HardwareAddr: mac}
	prog, err := loadPortProgram(ifc, role, gate, b.maps)
	if err != nil {
		return err
	}
	if old, ok := b.progs[ifindex]; ok {
		old.Close()
	}
	b.progs[ifindex] = prog
	if err := b.maps.XdprIfaces.Put(uint32(ifindex), ifaceEntry(ifc, role, routerXdprXdpModeXDPR_MODE_NATIVE, gate)); err != nil {
		return fmt.Errorf("record interface %d in xdpr_ifaces: %w", ifindex, err)
	}
	_, _, err = setTxPorts(b.maps, ifindex, TXXDP)
	return err
}

// AddTunnel programs a tunnel into the private maps, as PutTunnel does.
func (b *BenchRouter) AddTunnel(t Tunnel) error {
	d := &Dataplane{maps: *b.maps}
	return d.PutTunnel(t)
}
