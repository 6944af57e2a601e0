package loader

import (
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
)

// portSpec returns the router objects specialised for one interface: the
// program reads its ifindex, MAC, role and conntrack gate from constants
// instead of a map (see xdpr_port_* in bpf/xdp_router.c), so every attached
// interface runs its own program instance over the shared maps. A gated
// port also gets the conntrack timeouts of the calling thread's network
// namespace (xdpr_ct_* in bpf/include/conntrack.h).
func portSpec(ifindex int, mac net.HardwareAddr, role Role, gate CTGate) (*ebpf.CollectionSpec, error) {
	return portSpecFor(ifindex, mac, role, gate, ProbeKernel())
}

// portSpecFor is portSpec for the kernel kern describes.
func portSpecFor(ifindex int, mac net.HardwareAddr, role Role, gate CTGate, kern KernelReport) (*ebpf.CollectionSpec, error) {
	spec, err := compatSpec(kern)
	if err != nil {
		return nil, err
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("ifindex %d: want a 6-byte MAC, got %q", ifindex, mac)
	}
	var m [6]byte
	copy(m[:], mac)
	vars := map[string]any{
		"xdpr_port_ifindex": uint32(ifindex),
		"xdpr_port_role":    uint32(role),
		"xdpr_port_mac":     m,
		"xdpr_port_ct_gate": uint32(gate.value()),
		// VXLAN's cached outer route and "to this router" answer: 100 ms.
		"xdpr_vxlan_cache_jiffies": uint32((100*kernelHZ() + 999) / 1000),
	}
	if gate.on() {
		t := readCTTimeouts()
		vars["xdpr_ct_tcp_timeout_ms"] = t.tcpMS
		vars["xdpr_ct_udp_timeout_ms"] = t.udpMS
		vars["xdpr_ct_tcp_refresh_jiffies"] = t.tcpRefreshJ
		vars["xdpr_ct_udp_refresh_jiffies"] = t.udpRefreshJ
		vars["xdpr_ct_cache_jiffies"] = t.cacheJ
	}
	if err := setVariables(spec, vars); err != nil {
		return nil, err
	}
	return spec, nil
}

// ifaceEntry is the xdpr_ifaces record of an attachment.
func ifaceEntry(ifc *net.Interface, role Role, mode routerXdprXdpMode, gate CTGate) routerXdprIface {
	v := routerXdprIface{Ifindex: uint32(ifc.Index), Role: routerXdprRole(role), XdpMode: mode, CtGate: gate.value()}
	copy(v.Mac[:], ifc.HardwareAddr)
	for i := 0; i < len(ifc.Name) && i < len(v.Name)-1; i++ {
		v.Name[i] = int8(ifc.Name[i])
	}
	return v
}

// loadUnpinnedMaps creates the router's maps without pinning, for tests and
// benchmarks that must not touch a bpffs or a running instance.
func loadUnpinnedMaps() (*routerMaps, error) {
	spec, err := loadRouter()
	if err != nil {
		return nil, err
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	var maps routerMaps
	if err := spec.LoadAndAssign(&maps, nil); err != nil {
		return nil, fmt.Errorf("create maps: %w", err)
	}
	return &maps, nil
}

// loadPortProgram loads the program for one interface over existing maps.
func loadPortProgram(ifc *net.Interface, role Role, gate CTGate, maps *routerMaps) (*ebpf.Program, error) {
	return loadPortProgramFor(ifc, role, gate, maps, ProbeKernel())
}

// loadPortProgramFor is loadPortProgram for the kernel kern describes.
func loadPortProgramFor(ifc *net.Interface, role Role, gate CTGate, maps *routerMaps, kern KernelReport) (*ebpf.Program, error) {
	spec, err := portSpecFor(ifc.Index, ifc.HardwareAddr, role, gate, kern)
	if err != nil {
		return nil, err
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	// Only the XDP program: the TC programs are loaded where they attach.
	var progs struct {
		XdprMain *ebpf.Program `ebpf:"xdpr_main"`
	}
	opts := &ebpf.CollectionOptions{MapReplacements: maps.replacements()}
	if err := spec.LoadAndAssign(&progs, opts); err != nil {
		return nil, fmt.Errorf("load program for %s: %w", ifc.Name, err)
	}
	return progs.XdprMain, nil
}

// tcPrograms are the NPT slow-path programs.
type tcPrograms struct {
	XdprTcDnpt *ebpf.Program `ebpf:"xdpr_tc_dnpt"`
	XdprTcSnpt *ebpf.Program `ebpf:"xdpr_tc_snpt"`
}

func (p *tcPrograms) Close() error {
	return errors.Join(p.XdprTcDnpt.Close(), p.XdprTcSnpt.Close())
}

// loadTCPrograms loads the NPT TC programs over maps, for mode.
func loadTCPrograms(maps *routerMaps, mode TCMode) (*tcPrograms, error) {
	spec, err := tcSpec(mode)
	if err != nil {
		return nil, err
	}
	var progs tcPrograms
	if err := spec.LoadAndAssign(&progs, &ebpf.CollectionOptions{MapReplacements: maps.replacements()}); err != nil {
		return nil, fmt.Errorf("load TC programs: %w", err)
	}
	return &progs, nil
}

// tcSpec is the router objects for loading TC programs in mode. A clsact
// filter takes programs of no particular attach type: the TC programs'
// sections name TCX's (tcx/ingress, tcx/egress), which a kernel without
// TCX does not know (it ignores the expected attach type of a SCHED_CLS
// program, but nothing needs one there).
func tcSpec(mode TCMode) (*ebpf.CollectionSpec, error) {
	spec, err := compatSpec(ProbeKernel())
	if err != nil {
		return nil, err
	}
	if mode == TCModeClsact {
		for _, p := range spec.Programs {
			if p.Type == ebpf.SchedCLS {
				p.AttachType = ebpf.AttachNone
			}
		}
	}
	return spec, nil
}

// loadTunnelPrograms loads the TC slow-path programs over existing maps
// (unpinned), for tests.
func loadTunnelPrograms(maps *routerMaps) (*routerPrograms, error) {
	return loadTunnelProgramsFor(maps, ProbeKernel())
}

// loadTunnelProgramsFor is loadTunnelPrograms for the kernel kern
// describes.
func loadTunnelProgramsFor(maps *routerMaps, kern KernelReport) (*routerPrograms, error) {
	spec, err := compatSpec(kern)
	if err != nil {
		return nil, err
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	var progs routerPrograms
	if err := spec.LoadAndAssign(&progs, &ebpf.CollectionOptions{MapReplacements: maps.replacements()}); err != nil {
		return nil, fmt.Errorf("load tunnel programs: %w", err)
	}
	return &progs, nil
}
