// Package wanra is the WAN Router Advertisement tracker: it listens for
// RAs on the WAN interface on its own ICMPv6 socket (so it works whatever
// the kernel's accept_ra and forwarding sysctls are), validates them as
// RFC 4861 6.1.2 asks, keeps what they say with their lifetimes as
// deadlines, and publishes a learned.RA snapshot whenever that changes:
// on every accepted RA and when something it holds expires.
package wanra

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"

	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/control/ndpsock"
)

// RFC 4861 section 10 host constants for Router Solicitations.
const (
	maxRtrSolicitations     = 3
	rtrSolicitationInterval = 4 * time.Second
)

// reopenInterval is how long the tracker waits before trying again to
// open its socket (the interface may not exist yet, or its link-local
// address may still be tentative).
const reopenInterval = time.Second

var allRouters = netip.MustParseAddr("ff02::2")

// Conn is the tracker's view of its ICMPv6 socket (ndpsock.Conn).
type Conn interface {
	// ReadRaw reads one ICMPv6 message and returns its length, the hop
	// limit it arrived with and its source.
	ReadRaw(b []byte) (n, hopLimit int, src netip.Addr, err error)
	WriteTo(m ndp.Message, dst netip.Addr) error
	MAC() net.HardwareAddr
	Close() error
}

// Tracker is the task. Interface and Publish must be set; the rest is
// optional.
type Tracker struct {
	Interface string
	// Publish receives every new snapshot, from the tracker's goroutine;
	// it must not block for long.
	Publish func(learned.RA)
	Log     *slog.Logger
	// Listen opens the socket; nil opens an ndpsock.Conn on Interface.
	Listen func(ifname string) (Conn, error)
	// Managed, if set, is called from the tracker's goroutine when a
	// router starts advertising the M or O flag (see noteFlags): the
	// daemon has the DHCPv6 client solicit again at once.
	Managed func(router netip.Addr, managed, other bool)

	mu    sync.Mutex
	stats Stats
}

type packet struct {
	b   []byte
	hop int
	src netip.Addr
}

// Run tracks RAs until ctx ends (then it returns nil). A socket that
// fails is reopened; what was learned is kept meanwhile and still expires
// on time.
func (t *Tracker) Run(ctx context.Context) error {
	if t.Log == nil {
		t.Log = slog.Default()
	}
	t.mu.Lock()
	t.stats.Interface = t.Interface
	t.mu.Unlock()
	l := loop{t: t, st: newState(), rsLeft: maxRtrSolicitations}
	for ctx.Err() == nil {
		conn, err := t.listen()
		if err != nil {
			t.count(func(s *Stats) { s.SocketErrors++ })
			t.Log.Warn("wan ra: cannot open socket, retrying", "interface", t.Interface, "error", err)
			if err := l.idle(ctx, reopenInterval); err != nil {
				return nil
			}
			continue
		}
		err = l.serve(ctx, conn)
		conn.Close()
		if ctx.Err() != nil {
			return nil
		}
		t.count(func(s *Stats) { s.SocketErrors++ })
		t.Log.Warn("wan ra: socket failed, reopening", "interface", t.Interface, "error", err)
		if err := l.idle(ctx, reopenInterval); err != nil {
			return nil
		}
	}
	return nil
}

func (t *Tracker) listen() (Conn, error) {
	if t.Listen != nil {
		return t.Listen(t.Interface)
	}
	c, err := ndpsock.Open(t.Interface, []ipv6.ICMPType{ipv6.ICMPTypeRouterAdvertisement}, netip.MustParseAddr("ff02::1"))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// loop is the state one Run owns.
type loop struct {
	t  *Tracker
	st *state
	// rsLeft Router Solicitations remain to be sent, the next at rsNext;
	// an accepted RA ends the burst.
	rsLeft     int
	rsNext     time.Time
	hadRouters bool
	// full is the tables that dropped an entry since they last had room:
	// one warning per episode, not one per RA of a flood.
	full map[string]bool
	// flags is whether each source's last RA had the M or O flag.
	flags map[netip.Addr]bool
}

// serve runs on one socket until ctx ends or the socket fails.
func (l *loop) serve(ctx context.Context, conn Conn) error {
	pkts := make(chan packet)
	readErr := make(chan error, 1)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		// Room for any ICMPv6 message: an RA is as long as the link's
		// MTU allows, and options as long as 2040 bytes.
		b := make([]byte, 1<<16)
		for {
			n, hop, src, err := conn.ReadRaw(b)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case pkts <- packet{b: append([]byte(nil), b[:n]...), hop: hop, src: src}:
			case <-done:
				return
			}
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		l.tick(conn)
		timer.Reset(l.wake())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			return fmt.Errorf("read: %w", err)
		case p := <-pkts:
			l.receive(p)
		case <-timer.C:
		}
	}
}

// idle waits without a socket, still expiring what is held.
func (l *loop) idle(ctx context.Context, d time.Duration) error {
	until := time.Now().Add(d)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		l.expire()
		now := time.Now()
		if !now.Before(until) {
			return nil
		}
		wait := until.Sub(now)
		if n := l.st.next(now); !n.IsZero() && n.Sub(now) < wait {
			wait = n.Sub(now)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// tick does what is due: expiries, and a Router Solicitation.
func (l *loop) tick(conn Conn) {
	l.expire()
	now := time.Now()
	if l.rsLeft > 0 && !now.Before(l.rsNext) {
		l.solicit(conn)
		l.rsLeft--
		l.rsNext = now.Add(rtrSolicitationInterval)
	}
}

// wake is how long until the next tick has something to do.
func (l *loop) wake() time.Duration {
	now := time.Now()
	next := l.st.next(now)
	if l.rsLeft > 0 && (next.IsZero() || l.rsNext.Before(next)) {
		next = l.rsNext
	}
	if next.IsZero() {
		return time.Hour
	}
	return max(next.Sub(now), 0)
}

func (l *loop) expire() {
	if l.st.expire(time.Now()) {
		l.publish()
	}
}

// publish hands the snapshot over and, when the last default router just
// went away, starts soliciting again.
func (l *loop) publish() {
	ra := l.st.snapshot(l.t.Interface)
	l.t.count(func(s *Stats) {
		s.Routers, s.Prefixes, s.DNS, s.DNSSL = len(ra.Routers), len(ra.Prefixes), len(ra.DNS), len(ra.DNSSL)
		s.RouterAddrs = len(ra.RouterAddrs)
	})
	for table, n := range map[string]int{TableRouters: len(ra.Routers), TablePrefixes: len(ra.Prefixes),
		TableDNS: len(ra.DNS), TableDNSSL: len(ra.DNSSL), TableRAddrs: len(ra.RouterAddrs)} {
		if l.full[table] && n < limits[table] {
			delete(l.full, table)
		}
	}
	if l.hadRouters && len(ra.Routers) == 0 {
		l.t.Log.Info("wan ra: no default router left, soliciting", "interface", l.t.Interface)
		l.rsLeft, l.rsNext = maxRtrSolicitations, time.Now()
	}
	l.hadRouters = len(ra.Routers) > 0
	if l.t.Publish != nil {
		l.t.Publish(ra)
	}
}

func (l *loop) receive(p packet) {
	now := time.Now()
	ra, malformed, reason := check(p.b, p.hop, p.src)
	if reason != "" {
		l.t.count(func(s *Stats) {
			s.Received++
			if s.Rejected == nil {
				s.Rejected = map[string]uint64{}
			}
			s.Rejected[reason]++
		})
		l.t.Log.Debug("wan ra: rejected", "interface", l.t.Interface, "source", p.src, "reason", reason)
		return
	}
	if len(malformed) > 0 {
		l.t.Log.Debug("wan ra: options that do not parse ignored", "interface", l.t.Interface, "source", p.src, "count", len(malformed))
	}
	res := l.st.apply(now, p.src, ra)
	ignored := append(malformed, res.ignored...)
	l.st.expire(now) // lifetime-0 removals
	l.rsLeft = 0
	l.t.count(func(s *Stats) {
		s.Received++
		s.Accepted++
		s.LastRA, s.LastRASource = now, p.src.String()
		for _, r := range ignored {
			if s.IgnoredOptions == nil {
				s.IgnoredOptions = map[string]uint64{}
			}
			s.IgnoredOptions[r]++
		}
		s.Renumbered += uint64(len(res.deprecated))
		for _, t := range res.dropped {
			if s.Dropped == nil {
				s.Dropped = map[string]uint64{}
			}
			s.Dropped[t]++
		}
	})
	for _, d := range res.deprecated {
		l.t.Log.Info("wan ra: prefix no longer advertised by its router, which advertises a new one: deprecated (RFC 8978 flash renumbering)",
			"interface", l.t.Interface, "prefix", d, "router", p.src)
	}
	for _, t := range res.dropped {
		if !l.full[t] {
			if l.full == nil {
				l.full = map[string]bool{}
			}
			l.full[t] = true
			l.t.Log.Warn("wan ra: table full, new entries not learned until some expire", "interface", l.t.Interface,
				"table", t, "limit", limits[t], "source", p.src)
		}
	}
	l.publish()
	l.noteFlags(p.src, ra)
}

// limits are the Max* constants by table name.
var limits = map[string]int{TableRouters: MaxRouters, TablePrefixes: MaxPrefixes, TableDNS: MaxDNS, TableDNSSL: MaxDNSSL,
	TableRAddrs: MaxRouterAddrs}

func (l *loop) solicit(conn Conn) {
	rs := &ndp.RouterSolicitation{}
	if mac := conn.MAC(); len(mac) > 0 {
		rs.Options = append(rs.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac})
	}
	if err := conn.WriteTo(rs, allRouters); err != nil {
		l.t.count(func(s *Stats) { s.SendErrors++ })
		l.t.Log.Warn("wan ra: router solicitation", "interface", l.t.Interface, "error", err)
		return
	}
	l.t.count(func(s *Stats) { s.RSSent++ })
}
