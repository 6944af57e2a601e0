// Package lanra is the LAN Router Advertisement sender: for each LAN
// interface the reconciler hands it an Advert (prefixes with deadlines,
// DNS, MTU, router lifetime), and it advertises that as RFC 4861 6.2
// says: unsolicited RAs at random intervals (the first few faster), an RA
// at once when the advert changes, answers to Router Solicitations, and a
// final RA with router lifetime 0 when an interface stops advertising.
// Lifetimes in every RA are computed when it is sent, from the deadlines.
package lanra

import (
	"context"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"

	"github.com/xdprouter/xdprouter/control/ndpsock"
)

// RFC 4861 section 10 router constants.
const (
	maxInitialAdverts  = 3
	maxInitialInterval = 16 * time.Second
	maxRADelay         = 500 * time.Millisecond
)

// Defaults of the Sender's settings (RFC 4861 6.2.1, 10; RFC 8106 5.1).
const (
	DefaultMaxInterval = 600 * time.Second
	DefaultMinDelay    = 3 * time.Second
)

// reopenInterval paces attempts to open an interface's socket (it may not
// exist yet, or have no link-local address yet).
const reopenInterval = time.Second

// retryInterval paces attempts to send an RA the kernel refused.
const retryInterval = time.Second

var (
	allNodes   = netip.MustParseAddr("ff02::1")
	allRouters = netip.MustParseAddr("ff02::2")
)

// Conn is the sender's view of one interface's ICMPv6 socket
// (ndpsock.Conn).
type Conn interface {
	ReadRaw(b []byte) (n, hopLimit int, src netip.Addr, err error)
	WriteTo(m ndp.Message, dst netip.Addr) error
	Addr() netip.Addr
	MAC() net.HardwareAddr
	Close() error
}

// Sender is the task. The zero value is ready to use with RFC defaults.
type Sender struct {
	// MinInterval and MaxInterval are MinRtrAdvInterval and
	// MaxRtrAdvInterval: unsolicited RAs go out at random intervals
	// between them. Defaults: DefaultMaxInterval, and a third of
	// MaxInterval (three quarters under 9 s).
	MinInterval, MaxInterval time.Duration
	// MinDelay is MIN_DELAY_BETWEEN_RAS, the least time between two RAs
	// on an interface: changes and answers wait for it. Default
	// DefaultMinDelay.
	MinDelay time.Duration
	// DNSLifetime bounds the RDNSS and DNSSL lifetimes; default three
	// times MaxInterval (RFC 8106).
	DNSLifetime time.Duration
	// KeepOnStop ends Run without the final RA: the daemon stops but the
	// router keeps forwarding, and the next daemon advertises again; a
	// final RA would make every host drop its default route meanwhile.
	// Remove still sends it.
	KeepOnStop bool
	Log        *slog.Logger
	// Listen opens an interface's socket; nil opens an ndpsock.Conn that
	// hears Router Solicitations.
	Listen func(ifname string) (Conn, error)

	mu      sync.Mutex
	desired map[string]Advert
	wake    chan struct{}
	stats   map[string]*InterfaceStats
}

// Set makes ifname advertise ad from now on (replacing what it
// advertised). A change a host would notice goes out at once.
func (s *Sender) Set(ifname string, ad Advert) {
	ad.Prefixes = slices.Clone(ad.Prefixes)
	ad.Fixed = slices.Clone(ad.Fixed)
	ad.DNS = slices.Clone(ad.DNS)
	ad.DNSSL = slices.Clone(ad.DNSSL)
	ad.Own = slices.Clone(ad.Own)
	s.mu.Lock()
	s.init()
	s.desired[ifname] = ad
	s.mu.Unlock()
	s.notify()
}

// Remove stops advertising on ifname, with a final RA of router lifetime
// 0 so hosts drop it as a default router at once.
func (s *Sender) Remove(ifname string) {
	s.mu.Lock()
	s.init()
	delete(s.desired, ifname)
	s.mu.Unlock()
	s.notify()
}

func (s *Sender) init() {
	if s.desired == nil {
		s.desired = map[string]Advert{}
		s.wake = make(chan struct{}, 1)
		s.stats = map[string]*InterfaceStats{}
	}
}

func (s *Sender) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// timing is the Sender's settings with defaults filled in.
type timing struct {
	min, max, minDelay, dns time.Duration
}

func (s *Sender) timing() timing {
	t := timing{min: s.MinInterval, max: s.MaxInterval, minDelay: s.MinDelay, dns: s.DNSLifetime}
	if t.max <= 0 {
		t.max = DefaultMaxInterval
	}
	if t.min <= 0 || t.min > t.max {
		t.min = t.max / 3
		if t.max < 9*time.Second {
			t.min = t.max * 3 / 4
		}
	}
	if t.minDelay <= 0 {
		t.minDelay = DefaultMinDelay
	}
	if t.dns <= 0 {
		t.dns = 3 * t.max
	}
	return t
}

// Run advertises until ctx ends, then sends every interface's final RA
// and returns nil.
func (s *Sender) Run(ctx context.Context) error {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	s.mu.Lock()
	s.init()
	wake := s.wake
	s.mu.Unlock()
	l := &loop{s: s, tm: s.timing(), ifaces: map[string]*iface{}, events: make(chan event), ctx: ctx}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		l.sync()
		l.tick()
		timer.Reset(l.wait())
		select {
		case <-ctx.Done():
			for _, ifc := range l.ifaces {
				switch {
				case !s.KeepOnStop:
					l.retire(ifc)
				case ifc.conn != nil:
					ifc.conn.Close()
				}
			}
			return nil
		case <-wake:
		case ev := <-l.events:
			l.handle(ev)
		case <-timer.C:
		}
	}
}

func (s *Sender) listen(ifname string) (Conn, error) {
	if s.Listen != nil {
		return s.Listen(ifname)
	}
	c, err := ndpsock.Open(ifname, []ipv6.ICMPType{ipv6.ICMPTypeRouterSolicitation}, allRouters)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Stats returns the counters of every interface advertised since start,
// by name.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out Stats
	for _, name := range slices.Sorted(maps.Keys(s.stats)) {
		st := *s.stats[name]
		st.RSInvalid = maps.Clone(st.RSInvalid)
		st.Prefixes = slices.Clone(st.Prefixes)
		out.Interfaces = append(out.Interfaces, st)
	}
	return out
}

func (s *Sender) count(ifname string, f func(*InterfaceStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats[ifname]
	if st == nil {
		st = &InterfaceStats{Interface: ifname}
		s.stats[ifname] = st
	}
	f(st)
}

// interval is the time to the next unsolicited RA (RFC 4861 6.2.4).
func (t timing) interval(initial bool) time.Duration {
	d := t.min + rand.N(t.max-t.min+1)
	if initial {
		d = min(d, maxInitialInterval)
	}
	return d
}
