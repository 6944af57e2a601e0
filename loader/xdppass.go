package loader

import (
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// AttachXDPPass attaches a native XDP program that passes every frame to
// the interface ifindex (in the calling thread's network namespace) until
// the returned Closer is closed; nothing is pinned.
//
// It exists for veth labs: a veth delivers XDP_TX frames to its peer only
// when the peer runs an XDP program (veth_xdp_flush kicks the peer's NAPI
// only then), so the link partner of an interface answering with XDP_TX
// (the NDP proxy) needs one. A physical link partner never does. It takes
// multi-buffer frames (BPF_F_XDP_HAS_FRAGS), so it attaches to a veth at
// any MTU.
func AttachXDPPass(ifindex int) (io.Closer, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "xdpr_pass",
		Type:    ebpf.XDP,
		Flags:   unix.BPF_F_XDP_HAS_FRAGS,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("load XDP pass program: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		return nil, fmt.Errorf("attach XDP pass program to ifindex %d: %w", ifindex, err)
	}
	return l, nil
}
