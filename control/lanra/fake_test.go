package lanra

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/xdprouter/xdprouter/control/tasktest"
)

var (
	quiet   = slog.New(slog.DiscardHandler)
	fakeMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	fakeLL  = netip.MustParseAddr("fe80::2")
)

type packet struct {
	b   []byte
	hop int
	src netip.Addr
}

// fakeConn stands for one interface's socket.
type fakeConn struct {
	in     chan packet
	once   sync.Once
	closed chan struct{}
	mu     sync.Mutex
	sent   []sentRA
	// refuse makes the next writes fail with refuseErr, as the kernel's
	// sendmsg does (refused records when).
	refuse    int
	refuseErr error
	refused   []time.Time
}

type sentRA struct {
	ra  *ndp.RouterAdvertisement
	dst netip.Addr
	at  time.Time
}

func newFakeConn() *fakeConn { return &fakeConn{in: make(chan packet), closed: make(chan struct{})} }

func (f *fakeConn) ReadRaw(b []byte) (int, int, netip.Addr, error) {
	select {
	case p := <-f.in:
		return copy(b, p.b), p.hop, p.src, nil
	case <-f.closed:
		return 0, 0, netip.Addr{}, errors.New("use of closed connection")
	}
}

// WriteTo marshals and parses m as the wire would, so what tests see is
// what a host would.
func (f *fakeConn) WriteTo(m ndp.Message, dst netip.Addr) error {
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		return err
	}
	p, err := ndp.ParseMessage(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse > 0 {
		f.refuse--
		f.refused = append(f.refused, time.Now())
		return f.refuseErr
	}
	f.sent = append(f.sent, sentRA{ra: p.(*ndp.RouterAdvertisement), dst: dst, at: time.Now()})
	return nil
}

func (f *fakeConn) Addr() netip.Addr      { return fakeLL }
func (f *fakeConn) MAC() net.HardwareAddr { return fakeMAC }
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

// take returns the RAs sent since the last call.
func (f *fakeConn) take() []sentRA {
	synctest.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.sent
	f.sent = nil
	return out
}

// rig runs a Sender whose interfaces all get fake sockets.
type rig struct {
	t     *testing.T
	s     *Sender
	mu    sync.Mutex
	conns map[string]*fakeConn
	stop  func() // cancels Run and waits for it
	start time.Time
}

func runRig(t *testing.T, s *Sender) *rig {
	r := &rig{t: t, s: s, conns: map[string]*fakeConn{}, start: time.Now()}
	s.Log = quiet
	s.Listen = func(ifname string) (Conn, error) {
		c := newFakeConn()
		r.mu.Lock()
		r.conns[ifname] = c
		r.mu.Unlock()
		return c, nil
	}
	r.stop = tasktest.Start(t, s.Run)
	synctest.Wait()
	return r
}

func (r *rig) sleepUntil(d time.Duration) {
	time.Sleep(time.Until(r.start.Add(d)))
	synctest.Wait()
}

func (r *rig) conn(ifname string) *fakeConn {
	r.t.Helper()
	synctest.Wait()
	r.mu.Lock()
	c := r.conns[ifname]
	r.mu.Unlock()
	if c == nil {
		r.t.Fatalf("no socket opened on %s", ifname)
	}
	return c
}
