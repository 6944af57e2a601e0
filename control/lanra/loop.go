package lanra

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// iface is one advertising interface, owned by Run's goroutine.
type iface struct {
	name  string
	ad    Advert
	shape string
	conn  Conn
	// reopen is when to try opening the socket again while conn is nil.
	reopen  time.Time
	lastErr string
	// fast RAs remain of the current burst (at start, after a change)
	// that go out at most maxInitialInterval apart.
	fast int
	// next is the next unsolicited RA; solicited, when set, an answer
	// to a Router Solicitation.
	next, solicited time.Time
	last            time.Time // the last RA sent
	// withheld are the DNS servers the last RA left out (logged when
	// they change).
	withheld []string
	// failed counts the sends refused in a row since the last RA that
	// went out; sendErr is the last refusal's error (logged when it
	// changes).
	failed      int
	failedSince time.Time
	sendErr     string
}

type loop struct {
	s      *Sender
	tm     timing
	ifaces map[string]*iface
	events chan event
	ctx    context.Context
}

// event is a Router Solicitation heard, or the socket failing (err set).
type event struct {
	ifname string
	conn   Conn
	b      []byte
	hop    int
	src    netip.Addr
	err    error
}

// sync brings the interfaces in line with what Set and Remove asked for.
func (l *loop) sync() {
	l.s.mu.Lock()
	desired := make(map[string]Advert, len(l.s.desired))
	for k, v := range l.s.desired {
		desired[k] = v
	}
	l.s.mu.Unlock()
	now := time.Now()
	for name, ad := range desired {
		ifc := l.ifaces[name]
		shape := ad.shape(now)
		switch {
		case ifc == nil:
			l.ifaces[name] = &iface{name: name, ad: ad, shape: shape, reopen: now}
			l.s.count(name, func(st *InterfaceStats) { st.Advertising = true })
		case shape != ifc.shape:
			// Hosts must hear it now, and a few times quickly in case
			// one RA is lost.
			ifc.ad, ifc.shape = ad, shape
			ifc.next, ifc.fast = now, maxInitialAdverts
			l.s.Log.Info("lan ra: advert changed", "interface", name, "advert", shape)
		default:
			ifc.ad = ad // same thing, deadlines maybe refreshed
		}
	}
	for name, ifc := range l.ifaces {
		if _, ok := desired[name]; !ok {
			l.retire(ifc)
			delete(l.ifaces, name)
		}
	}
}

// tick opens sockets and sends the RAs that are due.
func (l *loop) tick() {
	now := time.Now()
	for _, ifc := range l.ifaces {
		if ifc.conn == nil {
			if !now.Before(ifc.reopen) {
				l.open(ifc, now)
			}
			continue
		}
		if due := ifc.due(l.tm); !due.IsZero() && !now.Before(due) {
			l.send(ifc, now)
		}
	}
}

// due is when ifc sends its next RA: the earlier of the unsolicited and
// the solicited one, no sooner than MinDelay after the last.
func (ifc *iface) due(tm timing) time.Time {
	d := ifc.next
	if !ifc.solicited.IsZero() && ifc.solicited.Before(d) {
		d = ifc.solicited
	}
	if !ifc.last.IsZero() {
		if earliest := ifc.last.Add(tm.minDelay); d.Before(earliest) {
			d = earliest
		}
	}
	return d
}

// wait is how long until tick has something to do.
func (l *loop) wait() time.Duration {
	now := time.Now()
	var next time.Time
	for _, ifc := range l.ifaces {
		t := ifc.reopen
		if ifc.conn != nil {
			t = ifc.due(l.tm)
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if next.IsZero() {
		return time.Hour
	}
	return max(next.Sub(now), 0)
}

func (l *loop) open(ifc *iface, now time.Time) {
	conn, err := l.s.listen(ifc.name)
	if err != nil {
		ifc.reopen = now.Add(reopenInterval)
		l.s.count(ifc.name, func(st *InterfaceStats) { st.SocketErrors++ })
		if err.Error() != ifc.lastErr {
			ifc.lastErr = err.Error()
			l.s.Log.Warn("lan ra: cannot open socket, retrying", "interface", ifc.name, "error", err)
		}
		return
	}
	ifc.conn, ifc.lastErr = conn, ""
	ifc.next, ifc.fast, ifc.solicited = now, maxInitialAdverts, time.Time{}
	l.s.count(ifc.name, func(st *InterfaceStats) { st.Source = conn.Addr().String() })
	go l.read(ifc.name, conn)
}

// read hands each message from conn to the loop, until conn fails or is
// closed.
func (l *loop) read(ifname string, conn Conn) {
	b := make([]byte, 1500)
	for {
		n, hop, src, err := conn.ReadRaw(b)
		ev := event{ifname: ifname, conn: conn, err: err}
		if err == nil {
			ev.b, ev.hop, ev.src = append([]byte(nil), b[:n]...), hop, src
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

func (l *loop) handle(ev event) {
	ifc := l.ifaces[ev.ifname]
	if ifc == nil || ifc.conn != ev.conn {
		return // from a socket already closed
	}
	now := time.Now()
	if ev.err != nil {
		ifc.conn.Close()
		ifc.conn, ifc.reopen = nil, now.Add(reopenInterval)
		l.s.count(ifc.name, func(st *InterfaceStats) { st.SocketErrors++ })
		l.s.Log.Warn("lan ra: socket failed, reopening", "interface", ifc.name, "error", ev.err)
		return
	}
	reason := checkRS(ev.b, ev.hop, ev.src)
	l.s.count(ifc.name, func(st *InterfaceStats) {
		st.RSReceived++
		if reason != "" {
			if st.RSInvalid == nil {
				st.RSInvalid = map[string]uint64{}
			}
			st.RSInvalid[reason]++
		}
	})
	if reason != "" {
		l.s.Log.Debug("lan ra: router solicitation ignored", "interface", ifc.name, "source", ev.src, "reason", reason)
		return
	}
	// Answer after a random delay (RFC 4861 6.2.6), unless an RA is due
	// by then anyway.
	at := now.Add(rand.N(maxRADelay + 1))
	if !ifc.next.After(at) || (!ifc.solicited.IsZero() && !ifc.solicited.After(at)) {
		return
	}
	ifc.solicited = at
}

// send multicasts ifc's RA as it stands at now.
func (l *loop) send(ifc *iface, now time.Time) {
	solicited := !ifc.solicited.IsZero() && !ifc.solicited.After(now) && ifc.solicited.Before(ifc.next)
	ra, prefixes := ifc.ad.message(now, ifc.conn.MAC(), l.tm.dns)
	var withheld []string
	_, w := ifc.ad.resolvers()
	for _, a := range w {
		withheld = append(withheld, a.String())
	}
	if !slices.Equal(withheld, ifc.withheld) {
		if len(withheld) > 0 {
			l.s.Log.Warn("lan ra: learned DNS servers not advertised (not global unicast, or the router's own address)",
				"interface", ifc.name, "servers", withheld)
		}
		ifc.withheld = withheld
	}
	if err := ifc.conn.WriteTo(ra, allNodes); err != nil {
		// Nothing went out: the kernel refused it for now (its
		// neighbour table full of a WAN RA flood's sources, so
		// ff02::1 cannot be resolved; the source address gone or
		// tentative). Hosts still need this RA, so it is tried again
		// soon, with the burst it belongs to intact; the interval and
		// MinDelay count from RAs sent.
		if ifc.failed == 0 {
			ifc.failedSince = now
		}
		ifc.failed++
		ifc.next, ifc.solicited = now.Add(retryInterval), time.Time{}
		l.s.count(ifc.name, func(st *InterfaceStats) {
			st.SendErrors++
			st.LastSendError, st.LastSendErrorAt = err.Error(), now
		})
		if err.Error() != ifc.sendErr {
			ifc.sendErr = err.Error()
			l.s.Log.Warn("lan ra: send failed, retrying", "interface", ifc.name, "error", err, "retry_in", retryInterval)
		} else {
			l.s.Log.Debug("lan ra: send failed again", "interface", ifc.name, "error", err, "failed", ifc.failed)
		}
		return
	}
	if ifc.failed > 0 {
		l.s.Log.Info("lan ra: sent again", "interface", ifc.name, "failed_attempts", ifc.failed,
			"after", now.Sub(ifc.failedSince).Round(time.Millisecond))
		ifc.failed, ifc.sendErr = 0, ""
	}
	if ifc.fast > 0 {
		ifc.fast--
	}
	// Any multicast RA restarts the unsolicited interval.
	ifc.last, ifc.solicited = now, time.Time{}
	ifc.next = now.Add(l.tm.interval(ifc.fast > 0))
	l.s.count(ifc.name, func(st *InterfaceStats) {
		if solicited {
			st.Solicited++
		} else {
			st.Unsolicited++
		}
		st.LastSent, st.RouterLifetime, st.Prefixes = now, int(ra.RouterLifetime/time.Second), prefixes
		st.DNSWithheld = withheld
	})
}

// retire sends ifc's final RA (router lifetime 0, RFC 4861 6.2.5) and
// closes its socket.
func (l *loop) retire(ifc *iface) {
	l.s.count(ifc.name, func(st *InterfaceStats) { st.Advertising = false })
	if ifc.conn == nil {
		return
	}
	defer ifc.conn.Close()
	now := time.Now()
	ra, _ := Advert{MTU: ifc.ad.MTU}.message(now, ifc.conn.MAC(), l.tm.dns)
	if err := ifc.conn.WriteTo(ra, allNodes); err != nil {
		l.s.count(ifc.name, func(st *InterfaceStats) { st.SendErrors++ })
		l.s.Log.Warn("lan ra: final advertisement", "interface", ifc.name, "error", err)
		return
	}
	l.s.count(ifc.name, func(st *InterfaceStats) {
		st.Final++
		st.LastSent, st.RouterLifetime, st.Prefixes = now, 0, nil
	})
}
