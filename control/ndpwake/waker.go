// Package ndpwake makes the lan-neighbor NDP proxy work for hosts the
// router has not talked to yet, as ndppd's "auto" mode does. The XDP
// proxy answers an NS from the WAN only when the target has a resolved
// neighbour behind a LAN, and passes the rest to the kernel. The waker
// hears those on the proxy interface and asks the kernel to resolve the
// target on each LAN; once a host answers there, the solicitor's next
// (retransmitted) NS is answered by XDP. The waker never answers an NS
// itself, so the proxy still only speaks for addresses that exist behind
// a LAN, and it rate-limits, so an NS flood does not become a probe flood.
package ndpwake

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// reopenInterval paces attempts to open a socket (the interface may not
// exist yet).
const reopenInterval = time.Second

// Config is what the waker works on; the daemon sets it from each
// reconcile pass.
type Config struct {
	// Proxies are the interfaces whose solicitations the waker hears,
	// each with its lan-neighbor prefixes.
	Proxies []Proxy
	// LANs are the interfaces targets are resolved on.
	LANs []string
	// Own are the router's own addresses (WAN and LAN addresses, NPT
	// exclusions): the kernel answers for them; they are never probed.
	Own []netip.Addr
}

// Proxy is one proxy interface, its lan-neighbor prefixes and the NPT
// rules whose outside interface it is.
type Proxy struct {
	Interface string
	Prefixes  []netip.Prefix
	NPT       []NPT
	// Foreign are addresses in Prefixes other nodes on the link hold
	// (the data plane's xdpr_ndp_foreign): never probed.
	Foreign []netip.Addr
}

// NPT is an NPT rule: a target in Outside is resolved as its inside
// address, the one the XDP proxy looks up.
type NPT struct {
	Outside, Inside netip.Prefix
	RFC6296         bool // checksum-neutral mapping; false keeps the host bits
}

// Conn is one proxy interface's socket: Read returns one IPv6 packet
// (header onward) that may be an NS.
type Conn interface {
	Read(b []byte) (int, error)
	Close() error
}

// Waker is the task. The zero value works with the default limits.
type Waker struct {
	Log *slog.Logger
	// Listen opens a proxy interface's socket; nil opens an AF_PACKET
	// socket (packetConn).
	Listen func(ifname string) (Conn, error)
	// Resolve asks the kernel to resolve a target on a LAN; nil sends
	// RTM_NEWNEIGH with NTF_USE (resolveNeigh).
	Resolve func(ifname string, target netip.Addr) error
	// TargetInterval, Rate (probes per second), Burst and TableSize are
	// the limits; zero takes the Default*.
	TargetInterval time.Duration
	Rate, Burst    int
	TableSize      int

	mu    sync.Mutex
	cfg   Config
	wake  chan struct{}
	stats Stats
}

// Set replaces what the waker works on. It never blocks.
func (w *Waker) Set(cfg Config) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cfg = cfg
	w.wakeLocked()
}

func (w *Waker) wakeLocked() {
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// event is a packet heard, or a socket failing (err set).
type event struct {
	ifname string
	conn   Conn
	b      []byte
	err    error
}

// listener is one proxy interface, owned by Run's goroutine.
type listener struct {
	conn    Conn
	reopen  time.Time
	lastErr string
}

// Run hears solicitations and probes until ctx ends (then it returns nil).
func (w *Waker) Run(ctx context.Context) error {
	if w.Log == nil {
		w.Log = slog.Default()
	}
	if w.Listen == nil {
		w.Listen = func(ifname string) (Conn, error) { return listenPacket(ifname) }
	}
	if w.Resolve == nil {
		w.Resolve = resolveNeigh
	}
	w.mu.Lock()
	w.wakeLocked()
	wake := w.wake
	w.mu.Unlock()
	l := &loop{w: w, ctx: ctx, ifaces: map[string]*listener{}, events: make(chan event),
		lim: newLimiter(or(w.TargetInterval, DefaultTargetInterval), or(w.Rate, DefaultRate),
			or(w.Burst, DefaultBurst), or(w.TableSize, DefaultTableSize))}
	defer l.closeAll()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
			l.sync()
		case ev := <-l.events:
			l.handle(ev)
		case <-timer.C:
		}
		l.open()
		l.w.count(func(st *Stats) { st.Interfaces = l.listening() })
		timer.Reset(l.wait())
	}
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

type loop struct {
	w      *Waker
	ctx    context.Context
	cfg    Config
	ifaces map[string]*listener
	events chan event
	lim    *limiter
}

// sync takes the latest Config: sockets open on new proxy interfaces and
// close on ones no longer wanted.
func (l *loop) sync() {
	l.w.mu.Lock()
	l.cfg = l.w.cfg
	l.w.mu.Unlock()
	want := map[string]bool{}
	for _, p := range l.cfg.Proxies {
		want[p.Interface] = true
		if l.ifaces[p.Interface] == nil {
			l.ifaces[p.Interface] = &listener{}
		}
	}
	for name, li := range l.ifaces {
		if !want[name] {
			if li.conn != nil {
				li.conn.Close()
			}
			delete(l.ifaces, name)
		}
	}
}

func (l *loop) open() {
	now := time.Now()
	for name, li := range l.ifaces {
		if li.conn != nil || now.Before(li.reopen) {
			continue
		}
		conn, err := l.w.Listen(name)
		if err != nil {
			li.reopen = now.Add(reopenInterval)
			l.w.count(func(st *Stats) { st.SocketErrors++ })
			if err.Error() != li.lastErr {
				li.lastErr = err.Error()
				l.w.Log.Warn("ndp wake: cannot open socket, retrying", "interface", name, "error", err)
			}
			continue
		}
		li.conn, li.lastErr = conn, ""
		go l.read(name, conn)
	}
}

// listening are the interfaces with an open socket, sorted.
func (l *loop) listening() []string {
	var out []string
	for name, li := range l.ifaces {
		if li.conn != nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// wait is how long until a socket is due to be opened again.
func (l *loop) wait() time.Duration {
	d := time.Hour
	now := time.Now()
	for _, li := range l.ifaces {
		if li.conn == nil {
			d = min(d, max(li.reopen.Sub(now), 0))
		}
	}
	return d
}

// read hands each packet from conn to the loop, until conn fails or is
// closed.
func (l *loop) read(ifname string, conn Conn) {
	b := make([]byte, 1500)
	for {
		n, err := conn.Read(b)
		ev := event{ifname: ifname, conn: conn, err: err}
		if err == nil {
			ev.b = append([]byte(nil), b[:n]...)
		}
		select {
		case l.events <- ev:
		case <-l.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func (l *loop) closeAll() {
	for _, li := range l.ifaces {
		if li.conn != nil {
			li.conn.Close()
		}
	}
	l.w.count(func(st *Stats) { st.Interfaces = nil })
}

func (l *loop) handle(ev event) {
	li := l.ifaces[ev.ifname]
	if li == nil || li.conn != ev.conn {
		return // from a socket already closed
	}
	if ev.err != nil {
		li.conn.Close()
		li.conn, li.reopen = nil, time.Now().Add(reopenInterval)
		l.w.count(func(st *Stats) { st.SocketErrors++ })
		l.w.Log.Warn("ndp wake: socket failed, reopening", "interface", ev.ifname, "error", ev.err)
		return
	}
	m, reason := parseNS(ev.b)
	if reason == "" {
		reason = l.check(ev.ifname, &m)
	}
	l.w.count(func(st *Stats) {
		st.NSSeen++
		switch reason {
		case "":
		case ignoreOutside:
			st.OutsidePrefixes++
		default:
			st.Ignored[reason]++
		}
	})
	if reason != "" {
		return
	}
	l.probe(m.target)
}

// ignoreOutside is a target in none of the interface's lan-neighbor
// prefixes (counted in Stats.OutsidePrefixes).
const ignoreOutside = "outside"

// check says why m's target is not to be probed ("" when it is) and
// turns it into the address to resolve on the LANs.
func (l *loop) check(ifname string, m *ns) string {
	i := slices.IndexFunc(l.cfg.Proxies, func(p Proxy) bool {
		return p.Interface == ifname && slices.ContainsFunc(p.Prefixes, func(pfx netip.Prefix) bool { return pfx.Contains(m.target) })
	})
	if i < 0 {
		return ignoreOutside
	}
	if slices.Contains(l.cfg.Own, m.target) {
		return IgnoreOwn
	}
	if anycast(m.target) || slices.Contains(l.cfg.Proxies[i].Foreign, m.target) {
		return IgnoreElsewhere
	}
	// The most specific rule, as the data plane's LPM lookup picks it.
	var rule *NPT
	for j, r := range l.cfg.Proxies[i].NPT {
		if r.Outside.Contains(m.target) && (rule == nil || r.Outside.Bits() > rule.Outside.Bits()) {
			rule = &l.cfg.Proxies[i].NPT[j]
		}
	}
	if rule != nil {
		in, ok := rule.inside(m.target)
		if !ok {
			return IgnoreUnmapped
		}
		if slices.Contains(l.cfg.Own, in) {
			return IgnoreOwn
		}
		m.target = in
	}
	if len(l.cfg.LANs) == 0 {
		return IgnoreNoLAN
	}
	return ""
}

// probe asks every LAN to resolve target, if the limits allow it.
func (l *loop) probe(target netip.Addr) {
	now := time.Now()
	switch l.lim.allow(target, now) {
	case limitedTarget:
		l.w.count(func(st *Stats) { st.RateLimitedTarget++ })
		return
	case limitedGlobal:
		l.w.count(func(st *Stats) { st.RateLimitedGlobal++ })
		return
	case tableFull:
		l.w.count(func(st *Stats) { st.TableFull++ })
		return
	}
	for _, lan := range l.cfg.LANs {
		err := l.w.Resolve(lan, target)
		l.w.count(func(st *Stats) {
			if err != nil {
				st.ProbeErrors++
				return
			}
			st.Probes++
			st.LastProbe, st.LastTarget = now, target.String()
		})
		if err != nil {
			l.w.Log.Warn("ndp wake: probe", "interface", lan, "target", target, "error", err)
			continue
		}
		l.w.Log.Debug("ndp wake: probing", "interface", lan, "target", target)
	}
}
