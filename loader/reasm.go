package loader

import (
	"fmt"
	"io"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// AttachReassembly attaches the decapsulation of reassembled ipip6 and 6in4
// (xdpr_tun_reasm) to the ingress of ifname, the daemon's tap device that
// it writes what the kernel reassembled to (control/reasm). The TCX link (or
// clsact filter) is not pinned: the tap lives as long as the daemon's file descriptor, and so
// does the link. Close detaches it.
func (d *Dataplane) AttachReassembly(ifname string) (io.Closer, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("reassembly device %q: %w", ifname, err)
	}
	spec, err := compatSpec(ProbeKernel())
	if err != nil {
		return nil, err
	}
	var progs struct {
		XdprTunReasm *ebpf.Program `ebpf:"xdpr_tun_reasm"`
	}
	if err := spec.LoadAndAssign(&progs, &ebpf.CollectionOptions{MapReplacements: d.maps.replacements()}); err != nil {
		return nil, fmt.Errorf("load xdpr_tun_reasm: %w", err)
	}
	// The link or the filter holds the program.
	defer progs.XdprTunReasm.Close()
	mode, err := ResolveTCMode()
	if err != nil {
		return nil, err
	}
	if mode == TCModeClsact {
		return attachClsactUnpinned(reasmKind, ifc.Index, progs.XdprTunReasm)
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifc.Index, Program: progs.XdprTunReasm, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return nil, fmt.Errorf("attach tcx ingress to %s: %w", ifname, err)
	}
	return l, nil
}

// reasmKind names the reassembly program's clsact slot.
const reasmKind = "tun_reasm"
