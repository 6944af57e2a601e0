// Package reasm hands ipip6 that arrived fragmented in the outer header
// back to the data plane once the kernel has reassembled it.
//
// RFC 6333 5.3 asks a B4 to reassemble before it decapsulates (an AFTR
// fragments the outer packet when the inner one does not fit the path), as
// Linux ip6_tnl does. XDP and the WAN's TC program see fragments and leave
// them to the kernel (counted pass_tun_fragment); the kernel reassembles
// them (nf_defrag_ipv6 at PREROUTING, or ipv6_frag_rcv on local delivery)
// and, having no ipip6 handler here, delivers the whole packet to raw
// sockets only. The Relay reads it from a raw IPv6 socket for protocol 4,
// puts the outer header back (source, destination and traffic class as
// received) and writes the frame to a tap device of its own, whose TCX
// ingress program (xdpr_tun_reasm, loader.AttachReassembly) applies the
// WAN's checks and decapsulation and delivers the inner packet to the
// tunnel netdev: one decapsulation, in the data plane, for every path.
//
// A tap, not a packet socket on the tunnel netdev: a packet socket refuses
// frames beyond the device's MTU, and the inner packet of a fragmented
// outer one is typically larger than the tunnel MTU (1500 bytes from a
// 1500-byte path). A write to a tap is received whole, and a TC redirect to
// ingress checks no MTU either. ipip6 the data plane decapsulated never
// reaches the raw socket: it is redirected before local delivery.
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
	// Packets and Bytes count the reassembled ipip6 packets handed to the
	// data plane (which then decapsulates or drops them: tc_decap_reassembled
	// and the tc_drop_* counters).
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
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

	mu    sync.Mutex
	stats Stats
}

// Stats returns a copy of the counters.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

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
	conn, err := net.ListenPacket("ip6:4", "::")
	if err != nil {
		return fmt.Errorf("raw ipv6 socket for ipip: %w", err)
	}
	defer conn.Close()
	pc := ipv6.NewPacketConn(conn)
	if err := pc.SetControlMessage(ipv6.FlagDst|ipv6.FlagTrafficClass, true); err != nil {
		return fmt.Errorf("raw ipv6 socket for ipip: ask for destination and traffic class: %w", err)
	}
	// Fragmented packets come in bursts of large ones.
	if rc, ok := conn.(*net.IPConn); ok {
		_ = rc.SetReadBuffer(4 << 20)
	}
	r.mu.Lock()
	r.stats.Device = name
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.stats.Device = ""
		r.mu.Unlock()
	}()
	r.Log.Info("decapsulating ipip6 the kernel reassembled", "device", name)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	buf := make([]byte, 65535)
	frame := make([]byte, 14+40+65535)
	for {
		n, cm, src, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read reassembled ipip6: %w", err)
		}
		f, err := Frame(frame, mac, src, cm, buf[:n])
		if err == nil {
			_, err = tap.Write(f)
		}
		r.mu.Lock()
		if err != nil {
			r.stats.Errors++
			r.stats.LastError = err.Error()
			first := r.stats.Errors&(r.stats.Errors-1) == 0 // 1, 2, 4, ...: not a log line per packet
			r.mu.Unlock()
			if first {
				r.Log.Warn("reassembled ipip6 not handed to the data plane", "error", err, "errors", r.Stats().Errors)
			}
			continue
		}
		r.stats.Packets++
		r.stats.Bytes += uint64(n)
		r.mu.Unlock()
	}
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
	if len(mac) != 6 || len(payload) > 65535 || len(buf) < 14+40+len(payload) {
		return nil, fmt.Errorf("cannot frame %d bytes", len(payload))
	}
	f := buf[:14+40+len(payload)]
	copy(f[0:6], mac)
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], unix.ETH_P_IPV6)
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
