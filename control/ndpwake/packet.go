package ndpwake

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// packetConn hears Neighbor Solicitations on one interface through an
// AF_PACKET socket. An ICMPv6 socket (ndpsock) would hear none of the
// ones that matter: the kernel delivers a multicast packet to its sockets
// only when the interface has joined the destination group, and an NS for
// a host the router does not know goes to that host's solicited-node
// group, which the router has not joined (and cannot join for all 2^24 of
// them). A packet socket taps the frame after XDP passed it and before
// the IPv6 layer drops it. SOCK_DGRAM: packets start at the IPv6 header.
type packetConn struct {
	f  *os.File
	rc syscall.RawConn
}

// nsFilter keeps IPv6 packets whose next header is ICMPv6, hop limit 255
// and ICMPv6 type NS, so the socket does not copy every packet on the
// WAN to userspace. An NS behind extension headers is not heard (neither
// the XDP proxy nor common stacks send one).
func nsFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: offNextHeader, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: 5},
		bpf.LoadAbsolute{Off: offHopLimit, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: ndpHopLimit, SkipTrue: 3},
		bpf.LoadAbsolute{Off: offICMPType, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: icmpNS, SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
}

// listenPacket opens the socket on ifname.
func listenPacket(ifname string) (*packetConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("ns socket on %s: %w", ifname, err)
	}
	prog, err := nsFilter()
	if err != nil {
		return nil, fmt.Errorf("ns socket filter: %w", err)
	}
	// Protocol 0 receives nothing until bind, so the filter is in place
	// before the first packet.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ns socket on %s: %w", ifname, err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ns socket on %s: attach filter: %w", ifname, err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: ifi.Index}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ns socket on %s: bind: %w", ifname, err)
	}
	// A non-blocking descriptor goes to the runtime poller, so Close
	// wakes a blocked Read.
	f := os.NewFile(uintptr(fd), "ndpwake-"+ifname)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ns socket on %s: %w", ifname, err)
	}
	return &packetConn{f: f, rc: rc}, nil
}

// Read reads one packet (IPv6 header onward) into b.
func (c *packetConn) Read(b []byte) (int, error) {
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), b, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

func (c *packetConn) Close() error { return c.f.Close() }

func htons(v uint16) uint16 { return v<<8 | v>>8 }
