package ndpwake

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/xdprouter/xdprouter/control/tasktest"
)

var quiet = slog.New(slog.DiscardHandler)

// nsPacket builds an IPv6 packet carrying an NS for target from src to
// target's solicited-node group, with a source link-layer option and a
// correct checksum; edit changes it before the checksum is computed.
func nsPacket(src, target netip.Addr, edit func(b []byte)) []byte {
	const plen = nsLen + 8
	b := make([]byte, ipv6HeaderLen+plen)
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:], plen)
	b[offNextHeader], b[offHopLimit] = protoICMPv6, ndpHopLimit
	s, d, t := src.As16(), solicitedNode(target).As16(), target.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	b[offICMPType] = icmpNS
	copy(b[offNSTarget:], t[:])
	opt := b[ipv6HeaderLen+nsLen:]
	opt[0], opt[1] = 1, 1
	copy(opt[2:], []byte{2, 0, 0, 0, 0, 1})
	if edit != nil {
		edit(b)
	}
	src, dst := netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	msg := b[ipv6HeaderLen:]
	msg[2], msg[3] = 0, 0
	binary.BigEndian.PutUint16(msg[2:], ^icmpChecksum(src, dst, msg))
	return b
}

// fakeConn stands for one proxy interface's socket.
type fakeConn struct {
	in     chan []byte
	once   sync.Once
	closed chan struct{}
}

func newFakeConn() *fakeConn { return &fakeConn{in: make(chan []byte), closed: make(chan struct{})} }

func (f *fakeConn) Read(b []byte) (int, error) {
	select {
	case p := <-f.in:
		return copy(b, p), nil
	case <-f.closed:
		return 0, errors.New("use of closed socket")
	}
}

func (f *fakeConn) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeConn) isClosed() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

type probe struct {
	lan    string
	target netip.Addr
	at     time.Time
}

// rig runs a Waker with fake sockets and a resolver that records what it
// was asked.
type rig struct {
	t        *testing.T
	w        *Waker
	mu       sync.Mutex
	conns    map[string]*fakeConn
	opens    map[string]int
	failOpen map[string]bool
	failLAN  map[string]bool
	probes   []probe
	stop     func() // cancels Run and waits for it
}

func runRig(t *testing.T, w *Waker, cfg Config) *rig { return runRigWith(t, w, cfg, nil) }

// runRigWith is runRig with setup applied to the rig before Run starts.
func runRigWith(t *testing.T, w *Waker, cfg Config, setup func(*rig)) *rig {
	r := &rig{t: t, w: w, conns: map[string]*fakeConn{}, opens: map[string]int{}, failOpen: map[string]bool{},
		failLAN: map[string]bool{}}
	w.Log = quiet
	w.Listen = func(ifname string) (Conn, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.opens[ifname]++
		if r.failOpen[ifname] {
			return nil, errors.New("no such interface")
		}
		c := newFakeConn()
		r.conns[ifname] = c
		return c, nil
	}
	w.Resolve = func(ifname string, target netip.Addr) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.failLAN[ifname] {
			return errors.New("netlink: no such device")
		}
		r.probes = append(r.probes, probe{lan: ifname, target: target, at: time.Now()})
		return nil
	}
	if setup != nil {
		setup(r)
	}
	w.Set(cfg)
	r.stop = tasktest.Start(t, w.Run)
	synctest.Wait()
	return r
}

func (r *rig) conn(ifname string) *fakeConn {
	r.t.Helper()
	synctest.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.conns[ifname]
	if c == nil {
		r.t.Fatalf("no socket opened on %s", ifname)
	}
	return c
}

// hear delivers packets on ifname and waits until the waker has handled
// them.
func (r *rig) hear(ifname string, packets ...[]byte) {
	r.t.Helper()
	c := r.conn(ifname)
	for _, p := range packets {
		c.in <- p
	}
	synctest.Wait()
}

// take returns the probes made since the last call.
func (r *rig) take() []probe {
	synctest.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.probes
	r.probes = nil
	return out
}
