package wanra

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
	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/control/tasktest"
)

// fakeConn stands for the ICMPv6 socket: tests inject received packets
// and read back what the tracker sent.
type fakeConn struct {
	in     chan packet
	once   sync.Once
	closed chan struct{}
	mu     sync.Mutex
	sent   []sentMsg
}

type sentMsg struct {
	m   ndp.Message
	dst netip.Addr
	at  time.Time
}

var quiet = slog.New(slog.DiscardHandler)

var fakeMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan packet), closed: make(chan struct{})}
}

func (f *fakeConn) ReadRaw(b []byte) (int, int, netip.Addr, error) {
	select {
	case p := <-f.in:
		return copy(b, p.b), p.hop, p.src, nil
	case <-f.closed:
		return 0, 0, netip.Addr{}, errors.New("use of closed connection")
	}
}

func (f *fakeConn) WriteTo(m ndp.Message, dst netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, sentMsg{m: m, dst: dst, at: time.Now()})
	return nil
}

func (f *fakeConn) MAC() net.HardwareAddr { return fakeMAC }

func (f *fakeConn) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// solicitations returns when each RS was sent, checking each is an RS to
// all-routers with the interface's MAC.
func (f *fakeConn) solicitations(t *testing.T) []time.Time {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var at []time.Time
	for _, s := range f.sent {
		rs, ok := s.m.(*ndp.RouterSolicitation)
		if !ok {
			t.Fatalf("sent %T, want only Router Solicitations", s.m)
		}
		if s.dst != allRouters {
			t.Errorf("RS sent to %s, want %s", s.dst, allRouters)
		}
		if len(rs.Options) != 1 || rs.Options[0].(*ndp.LinkLayerAddress).Addr.String() != fakeMAC.String() {
			t.Errorf("RS options %v, want the source link-layer address %s", rs.Options, fakeMAC)
		}
		at = append(at, s.at)
	}
	return at
}

// rig runs a Tracker on a fakeConn inside a synctest bubble.
type rig struct {
	t     *testing.T
	tr    *Tracker
	conn  *fakeConn
	pubs  chan learned.RA
	start time.Time
}

func runRig(t *testing.T) *rig {
	r := &rig{t: t, conn: newFakeConn(), pubs: make(chan learned.RA, 100), start: time.Now()}
	r.tr = &Tracker{
		Interface: "wan0",
		Log:       quiet,
		Publish:   func(ra learned.RA) { r.pubs <- ra },
		Listen:    func(string) (Conn, error) { return r.conn, nil },
	}
	tasktest.Start(t, r.tr.Run)
	synctest.Wait()
	return r
}

// send delivers an RA as received with the given hop limit and source,
// and waits until the tracker has handled it.
func (r *rig) send(b []byte, hop int, src string) {
	r.conn.in <- packet{b: b, hop: hop, src: netip.MustParseAddr(src)}
	synctest.Wait()
}

// published returns the snapshots published since the last call.
func (r *rig) published() []learned.RA {
	synctest.Wait()
	var out []learned.RA
	for {
		select {
		case ra := <-r.pubs:
			out = append(out, ra)
		default:
			return out
		}
	}
}

// last returns the one snapshot published since the last call.
func (r *rig) last() learned.RA {
	r.t.Helper()
	p := r.published()
	if len(p) != 1 {
		r.t.Fatalf("%d snapshots published, want 1: %+v", len(p), p)
	}
	return p[0]
}

// sleepUntil advances the bubble's clock to start+d.
func (r *rig) sleepUntil(d time.Duration) {
	time.Sleep(time.Until(r.start.Add(d)))
	synctest.Wait()
}

func marshal(t *testing.T, m ndp.Message) []byte {
	t.Helper()
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
