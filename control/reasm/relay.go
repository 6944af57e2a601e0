// Package reasm hands ipip6 and 6in4 that arrived fragmented in the outer
// header back to the data plane once the kernel has reassembled it.
//
// RFC 6333 5.3 asks a B4 to reassemble before it decapsulates (an AFTR
// fragments the outer packet when the inner one does not fit the path), as
// Linux ip6_tnl does; a 6in4 broker or an IPv4 path without DF fragments
// the outer IPv4 header alike, and Linux sit reassembles too. XDP and the
// WAN's TC program see fragments and leave them to the kernel (counted
// pass_tun_fragment); the kernel reassembles them (nf_defrag at
// PREROUTING, or on local delivery) and, having no ipip6 or sit handler
// here, delivers the whole packet to raw sockets only. The Relay reads it
// from a raw IPv6 socket for protocol 4 and a raw IPv4 socket for
// protocol 41, puts the outer header back (addresses and traffic class or
// TOS as received) and writes the frame to a tap device of its own, whose
// TCX ingress program (xdpr_tun_reasm, loader.AttachReassembly) applies
// the WAN's checks and decapsulation and delivers the inner packet to the
// tunnel netdev: one decapsulation, in the data plane, for every path.
//
// A tap, not a packet socket on the tunnel netdev: a packet socket refuses
// frames beyond the device's MTU, and the inner packet of a fragmented
// outer one is typically larger than the tunnel MTU (1500 bytes from a
// 1500-byte path). A write to a tap is received whole, and a TC redirect to
// ingress checks no MTU either. Tunnel packets the data plane decapsulated
// never reach the raw sockets: they are redirected before local delivery.
package reasm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// DeviceName is the tap's name pattern; the kernel fills in the number.
const DeviceName = "xdpr-frag%d"

// Stats is what the relay has done, for the status API.
type Stats struct {
	// Device is the tap the relay writes to ("" while it is not running).
	Device string `json:"device"`
	// Relays names the tunnel modes whose raw sockets it reads.
	Relays []string `json:"relays,omitempty"`
	// Packets and Bytes count the reassembled ipip6 and 6in4 packets
	// handed to the data plane (which then decapsulates or drops them:
	// tc_decap_reassembled and the tc_drop_* counters).
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// NotReassembled counts protocol 41 the kernel delivered whole,
	// left alone (see open6in4).
	NotReassembled uint64 `json:"not_reassembled,omitempty"`
	// Errors counts packets that could not be handed over.
	Errors    uint64 `json:"errors,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Relay is the daemon's task; see the package comment.
type Relay struct {
	// Attach attaches the data plane's program to the tap's ingress
	// (loader.Dataplane.AttachReassembly); Close detaches it.
	Attach func(ifname string) (io.Closer, error)
	Log    *slog.Logger
	// IPIP6 and SixInFour say which raw sockets to read: one for each
	// mode the config has tunnels of (a raw socket also stops the
	// kernel's ICMP answer to its protocol).
	IPIP6, SixInFour bool

	mu    sync.Mutex
	stats Stats
}

// Stats returns a copy of the counters.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Relays = slices.Clone(s.Relays)
	return s
}

// A source is one raw socket the kernel gives reassembled tunnel packets
// to, and how to frame them for the tap.
type source struct {
	mode string // "ipip6", "6in4"
	conn net.PacketConn
	// read reads one packet into buf and frames it into frame. An error
	// of the socket ends the relay; a packetError is that packet's
	// alone; errSkip: not one to hand over.
	read func(buf, frame []byte) (f []byte, n int, err error)
}

// packetError is a packet that could not be framed.
type packetError struct{ error }

// errSkip is a packet the relay leaves alone.
var errSkip = errors.New("not reassembled")

// Run relays until ctx ends. Setting up fails the task (the supervisor
// starts it again); errors on single packets are counted.
func (r *Relay) Run(ctx context.Context) error {
	tap, name, err := openTap()
	if err != nil {
		return err
	}
	defer tap.Close()
	mac, err := setUp(name)
	if err != nil {
		return err
	}
	det, err := r.Attach(name)
	if err != nil {
		return fmt.Errorf("attach to %s: %w", name, err)
	}
	defer det.Close()
	var srcs []*source
	defer func() {
		for _, s := range srcs {
			s.conn.Close()
		}
	}()
	for _, m := range []struct {
		on   bool
		open func(net.HardwareAddr) (*source, error)
	}{{r.IPIP6, openIPIP6}, {r.SixInFour, open6in4}} {
		if !m.on {
			continue
		}
		s, err := m.open(mac)
		if err != nil {
			return err
		}
		srcs = append(srcs, s)
	}
	var modes []string
	for _, s := range srcs {
		modes = append(modes, s.mode)
	}
	r.mu.Lock()
	r.stats.Device, r.stats.Relays = name, modes
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.stats.Device, r.stats.Relays = "", nil
		r.mu.Unlock()
	}()
	r.Log.Info("decapsulating tunnel packets the kernel reassembled", "device", name, "modes", modes)

	// The first socket to fail ends them all (the supervisor starts the
	// task again).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		for _, s := range srcs {
			s.conn.Close()
		}
	})
	defer stop()
	errs := make(chan error, len(srcs))
	for _, s := range srcs {
		go func() {
			err := r.relay(ctx, tap, s)
			cancel()
			errs <- err
		}()
	}
	var first error
	for range srcs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// relay hands what s reads to the tap until its socket fails or ctx ends.
func (r *Relay) relay(ctx context.Context, tap io.Writer, s *source) error {
	buf := make([]byte, 65535)
	frame := make([]byte, 14+40+65535)
	for {
		f, n, err := s.read(buf, frame)
		var pe packetError
		switch {
		case errors.Is(err, errSkip):
			r.mu.Lock()
			r.stats.NotReassembled++
			r.mu.Unlock()
			continue
		case err != nil && !errors.As(err, &pe):
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read reassembled %s: %w", s.mode, err)
		case err == nil:
			_, err = tap.Write(f)
		}
		r.mu.Lock()
		if err != nil {
			r.stats.Errors++
			r.stats.LastError = err.Error()
			first := r.stats.Errors&(r.stats.Errors-1) == 0 // 1, 2, 4, ...: not a log line per packet
			r.mu.Unlock()
			if first {
				r.Log.Warn("reassembled tunnel packet not handed to the data plane", "mode", s.mode, "error", err, "errors", r.Stats().Errors)
			}
			continue
		}
		r.stats.Packets++
		r.stats.Bytes += uint64(n)
		r.mu.Unlock()
	}
}

// openIPIP6 reads ipip6: a raw IPv6 socket gives the payload, the inner
// packet, with the addresses and traffic class as ancillary data.
func openIPIP6(mac net.HardwareAddr) (*source, error) {
	conn, err := net.ListenPacket("ip6:4", "::")
	if err != nil {
		return nil, fmt.Errorf("raw ipv6 socket for ipip: %w", err)
	}
	pc := ipv6.NewPacketConn(conn)
	if err := pc.SetControlMessage(ipv6.FlagDst|ipv6.FlagTrafficClass, true); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raw ipv6 socket for ipip: ask for destination and traffic class: %w", err)
	}
	// Fragmented packets come in bursts of large ones.
	if rc, ok := conn.(*net.IPConn); ok {
		_ = rc.SetReadBuffer(4 << 20)
	}
	return &source{mode: "ipip6", conn: conn, read: func(buf, frame []byte) ([]byte, int, error) {
		n, cm, src, err := pc.ReadFrom(buf)
		if err != nil {
			return nil, 0, err
		}
		f, err := Frame(frame, mac, src, cm, buf[:n])
		if err != nil {
			return nil, n, packetError{err}
		}
		return f, n, nil
	}}, nil
}

// open6in4 reads 6in4: a raw IPv4 socket gives the whole packet, header
// and all. It also gets protocol 41 that arrived whole and that the data
// plane left to the kernel (another pair, options in the outer header):
// only what the kernel reassembled carries the largest fragment's size
// (IP_RECVFRAGSIZE), so the rest is left alone, as the data plane left it.
// (What the data plane decapsulated is redirected before local delivery
// and never reaches the socket.)
func open6in4(mac net.HardwareAddr) (*source, error) {
	conn, err := net.ListenPacket("ip4:41", "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("raw ipv4 socket for 6in4: %w", err)
	}
	ipc := conn.(*net.IPConn)
	rc, err := ipc.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVFRAGSIZE, 1)
		})
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("raw ipv4 socket for 6in4: ask for the fragment size: %w", err)
	}
	_ = ipc.SetReadBuffer(4 << 20)
	oob := make([]byte, unix.CmsgSpace(4))
	return &source{mode: "6in4", conn: conn, read: func(buf, frame []byte) ([]byte, int, error) {
		n, oobn, _, _, err := ipc.ReadMsgIP(buf, oob)
		if err != nil {
			return nil, 0, err
		}
		if !Reassembled(oob[:oobn]) {
			return nil, n, errSkip
		}
		f, err := Frame4(frame, mac, buf[:n])
		if err != nil {
			return nil, n, packetError{err}
		}
		return f, n, nil
	}}, nil
}

// Reassembled says whether a raw IPv4 socket's ancillary data (oob)
// marks its packet as one the kernel reassembled (IP_RECVFRAGSIZE).
func Reassembled(oob []byte) bool {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVFRAGSIZE && len(m.Data) >= 4 &&
			binary.NativeEndian.Uint32(m.Data) != 0 {
			return true
		}
	}
	return false
}

// Frame4 builds into buf the Ethernet frame for the tap from pkt, a
// reassembled 6in4 packet as a raw IPv4 socket gives it: to the tap's own
// MAC, the outer header rebuilt as the data plane decapsulates one
// (source, destination, TOS and TTL as received; no options, no ID, no
// fragment flags; checksummed) and the inner packet untouched.
func Frame4(buf []byte, mac net.HardwareAddr, pkt []byte) ([]byte, error) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return nil, fmt.Errorf("not an IPv4 packet (%d bytes)", len(pkt))
	}
	ihl := int(pkt[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(pkt[2:4]))
	if ihl < 20 || tot != len(pkt) || ihl > tot || pkt[9] != unix.IPPROTO_IPV6 {
		return nil, fmt.Errorf("malformed 6in4 header: length %d of %d, header %d, protocol %d", tot, len(pkt), ihl, pkt[9])
	}
	payload := pkt[ihl:]
	f, err := ethFrame(buf, mac, unix.ETH_P_IP, 20, len(payload))
	if err != nil {
		return nil, err
	}
	h := f[14:34]
	h[0], h[1] = 0x45, pkt[1]
	binary.BigEndian.PutUint16(h[2:4], uint16(20+len(payload)))
	clear(h[4:8])
	h[8], h[9] = pkt[8], unix.IPPROTO_IPV6
	clear(h[10:12])
	copy(h[12:20], pkt[12:20])
	binary.BigEndian.PutUint16(h[10:12], checksum(h))
	copy(f[34:], payload)
	return f, nil
}

// checksum is the IPv4 header checksum (RFC 1071) of h.
func checksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// ethFrame is the first 14+hlen+plen octets of buf with an Ethernet header
// from and to mac (the tap's own: the frame is received, not forwarded)
// of type etype, for an IP header of hlen octets and plen of payload.
func ethFrame(buf []byte, mac net.HardwareAddr, etype uint16, hlen, plen int) ([]byte, error) {
	if len(mac) != 6 || len(buf) < 14+hlen+plen {
		return nil, fmt.Errorf("cannot frame %d bytes", plen)
	}
	f := buf[:14+hlen+plen]
	copy(f[0:6], mac)
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], etype)
	return f, nil
}

// Frame builds into buf the Ethernet frame for the tap: to the tap's own
// MAC (so the kernel sees it as PACKET_HOST), the outer IPv6 header of the
// reassembled packet (source src, destination and traffic class from cm,
// next header 4) and payload, the inner packet.
func Frame(buf []byte, mac net.HardwareAddr, src net.Addr, cm *ipv6.ControlMessage, payload []byte) ([]byte, error) {
	ip, ok := src.(*net.IPAddr)
	if !ok || ip.IP.To16() == nil || cm == nil || cm.Dst.To16() == nil {
		return nil, errors.New("no source or destination address with the packet")
	}
	if len(payload) > 65535 {
		return nil, fmt.Errorf("cannot frame %d bytes", len(payload))
	}
	f, err := ethFrame(buf, mac, unix.ETH_P_IPV6, 40, len(payload))
	if err != nil {
		return nil, err
	}
	h := f[14:54]
	binary.BigEndian.PutUint32(h[0:4], 6<<28|uint32(cm.TrafficClass&0xff)<<20)
	binary.BigEndian.PutUint16(h[4:6], uint16(len(payload)))
	h[6] = unix.IPPROTO_IPIP
	h[7] = 64
	copy(h[8:24], ip.IP.To16())
	copy(h[24:40], cm.Dst.To16())
	copy(f[54:], payload)
	return f, nil
}

// openTap makes a tap device that lasts as long as the returned file.
func openTap() (*os.File, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(DeviceName)
	if err != nil {
		unix.Close(fd)
		return nil, "", err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("create tap %s: %w", DeviceName, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), ifr.Name(), nil
}

// setUp brings the tap up with nothing of the stack on it: no IPv6 (no
// link-local address, router solicitations or MLD), no ARP, no address.
func setUp(name string) (net.HardwareAddr, error) {
	sysctl := filepath.Join("/proc/sys/net/ipv6/conf", name, "disable_ipv6")
	if err := os.WriteFile(sysctl, []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("disable IPv6 on %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkSetARPOff(l); err != nil {
		return nil, fmt.Errorf("arp off on %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("set %s up: %w", name, err)
	}
	return l.Attrs().HardwareAddr, nil
}
