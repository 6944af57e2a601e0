package dhcp6pd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// The protocol state machine. Every method here runs with c.mu held.

// maxBackoff caps the wait before soliciting again after failures.
const maxBackoff = 5 * time.Minute

func (c *Client) setState(s State) {
	if c.state != s {
		c.log.Debug("dhcpv6-pd state", "from", c.state, "to", s)
	}
	c.state = s
	c.stats.State = s
}

func (c *Client) noteError(err error) {
	c.stats.LastError = err.Error()
	c.stats.LastErrorAt = c.clock.Now()
}

// jitter is RFC 8415's RAND: uniform in [-0.1, 0.1].
func (c *Client) jitter() float64 { return c.rnd.Float64()*0.2 - 0.1 }

func (c *Client) randDelay(max time.Duration) time.Duration {
	return time.Duration(c.rnd.Int64N(int64(max) + 1))
}

func (c *Client) newXID() dhcpv6.TransactionID {
	var x dhcpv6.TransactionID
	v := c.rnd.Uint32()
	x[0], x[1], x[2] = byte(v>>16), byte(v>>8), byte(v)
	return x
}

// startSolicit begins server discovery after delay.
func (c *Client) startSolicit(now time.Time, delay time.Duration) {
	c.setState(StateSoliciting)
	c.adverts = nil
	p := params{IRT: solTimeout, MRT: c.solMaxRT}
	c.ex = newExchange(dhcpv6.MessageTypeSolicit, c.newXID(), p, now.Add(delay), time.Time{})
}

// backoff solicits again after a failed attempt, waiting longer after
// each consecutive failure.
func (c *Client) backoff(now time.Time, why string) {
	c.failures++
	d := min(time.Second<<min(c.failures, 16), maxBackoff) + c.randDelay(solMaxDelay)
	c.stats.Backoffs++
	c.log.Warn("dhcpv6-pd: no delegation, soliciting again", "reason", why, "in", d.Round(time.Millisecond))
	c.startSolicit(now, d)
}

func (c *Client) startRequest(now time.Time, a advert) {
	c.setState(StateRequesting)
	c.chosen = a
	c.adverts = nil
	c.ex = newExchange(dhcpv6.MessageTypeRequest, c.newXID(), params{IRT: reqTimeout, MRT: reqMaxRT, MRC: reqMaxRC}, now, time.Time{})
}

func (c *Client) startRenew(now time.Time) {
	c.setState(StateRenewing)
	c.ex = newExchange(dhcpv6.MessageTypeRenew, c.newXID(), params{IRT: renTimeout, MRT: renMaxRT}, now, c.b.t2)
}

func (c *Client) startRebind(now time.Time) {
	c.setState(StateRebinding)
	c.ex = newExchange(dhcpv6.MessageTypeRebind, c.newXID(), params{IRT: rebTimeout, MRT: rebMaxRT}, now, c.b.end())
}

// tick does whatever is due at now: expiries, state changes on timers,
// (re)transmissions. A send error is returned so the socket is reopened;
// the exchange stays due and is sent on the new one.
func (c *Client) tick(now time.Time, conn Conn) error {
	if c.state == StateBound || c.state == StateRenewing || c.state == StateRebinding {
		if c.b.expire(now) {
			c.publish()
			if len(c.b.leases) == 0 {
				c.stats.Expired++
				c.log.Warn("dhcpv6-pd: delegation expired")
				c.startSolicit(now, c.randDelay(solMaxDelay))
			}
		}
	}
	switch c.state {
	case StateSoliciting:
		if c.ex.count == 1 && !now.Before(c.ex.next) && len(c.adverts) > 0 {
			c.startRequest(now, c.best())
		}
	case StateRequesting:
		if c.ex.exhausted(now) {
			c.backoff(now, "no Reply to Request")
		}
	case StateBound:
		if !now.Before(c.b.t2) {
			c.startRebind(now)
		} else if !now.Before(c.b.t1) {
			c.startRenew(now)
		}
	case StateRenewing:
		if c.ex.exhausted(now) {
			c.startRebind(now)
		}
	case StateRebinding:
		if c.ex.exhausted(now) {
			// Only reachable with a clock jump: expiry above ends it first.
			c.b.leases = nil
			c.publish()
			c.stats.Expired++
			c.startSolicit(now, c.randDelay(solMaxDelay))
		}
	}
	if c.ex == nil || c.state == StateBound || now.Before(c.ex.next) {
		return nil
	}
	return c.send(now, conn)
}

// best is the Advertise with the highest preference, the first heard
// among equals.
func (c *Client) best() advert {
	b := c.adverts[0]
	for _, a := range c.adverts[1:] {
		if a.pref > b.pref {
			b = a
		}
	}
	return b
}

// send transmits the current exchange's message.
func (c *Client) send(now time.Time, conn Conn) error {
	r := request{typ: c.ex.typ, xid: c.ex.xid, clientID: c.id.duid, iaid: c.id.iaid, elapsed: c.ex.elapsed(now)}
	switch c.ex.typ {
	case dhcpv6.MessageTypeSolicit:
		r.hintLen = c.cfg.PrefixLengthHint
	case dhcpv6.MessageTypeRequest:
		r.serverID = c.chosen.serverID
		for _, p := range c.chosen.ia.prefixes {
			if p.valid > 0 {
				r.prefixes = append(r.prefixes, p.prefix)
			}
		}
	case dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease:
		r.serverID = c.b.serverID
		r.prefixes = c.b.prefixes()
	case dhcpv6.MessageTypeRebind:
		r.prefixes = c.b.prefixes()
	}
	if err := conn.Send(r.build()); err != nil {
		c.stats.SendErrors++
		err = fmt.Errorf("send %s: %w", typeName(c.ex.typ), err)
		c.noteError(err)
		return err
	}
	c.stats.Sent[typeName(c.ex.typ)]++
	if c.ex.count > 0 {
		c.stats.Retransmissions++
	}
	c.ex.sent(now, c.jitter)
	return nil
}

// wake is when tick next has something to do.
func (c *Client) wake(now time.Time) time.Time {
	w := now.Add(time.Hour)
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(w) {
			w = t
		}
	}
	switch c.state {
	case StateBound:
		earlier(c.b.t1)
		earlier(c.b.t2)
	case StateSoliciting, StateRequesting, StateRenewing, StateRebinding:
		earlier(c.ex.wake())
	}
	if c.state == StateBound || c.state == StateRenewing || c.state == StateRebinding {
		earlier(c.b.firstExpiry())
	}
	return w
}

// handle processes one received datagram.
func (c *Client) handle(now time.Time, pkt []byte, from netip.Addr) {
	d, err := dhcpv6.FromBytes(pkt)
	if err != nil {
		c.stats.Ignored++
		c.log.Debug("dhcpv6-pd: malformed message", "from", from, "err", err)
		return
	}
	m, ok := d.(*dhcpv6.Message)
	if !ok {
		c.stats.Ignored++
		return
	}
	c.stats.Received[typeName(m.MessageType)]++
	if c.ex == nil || m.TransactionID != c.ex.xid || !sameDUID(m.Options.ClientID(), c.id.duid) || m.Options.ServerID() == nil {
		c.stats.Ignored++
		return
	}
	st := messageStatus(m)
	if st != iana.StatusSuccess {
		c.stats.StatusCodes[st.String()]++
	}
	ia := parseIAPD(m, c.id.iaid)
	if ia.found && ia.status != iana.StatusSuccess {
		c.stats.StatusCodes[ia.status.String()]++
	}
	switch {
	case m.MessageType == dhcpv6.MessageTypeAdvertise && c.state == StateSoliciting:
		c.onAdvertise(now, m, st, ia)
	case m.MessageType == dhcpv6.MessageTypeReply && c.state == StateRequesting:
		c.onRequestReply(now, m, st, ia)
	case m.MessageType == dhcpv6.MessageTypeReply && (c.state == StateRenewing || c.state == StateRebinding):
		c.onRenewReply(now, m, st, ia)
	case m.MessageType == dhcpv6.MessageTypeReply && c.state == StateReleasing:
		c.ex = nil
	default:
		c.stats.Ignored++
	}
}

func (c *Client) onAdvertise(now time.Time, m *dhcpv6.Message, st iana.StatusCode, ia iaResult) {
	if v, ok := serverSolMaxRT(m); ok && v != c.solMaxRT {
		c.solMaxRT = v
		c.ex.p.MRT = v
	}
	// RFC 8415 section 18.2.9: an Advertise without prefixes (such as
	// NoPrefixAvail) is ignored; the Solicit's growing retransmission
	// timeout is the backoff.
	if st != iana.StatusSuccess || !ia.usable() {
		c.stats.Ignored++
		return
	}
	a := advert{serverID: m.Options.ServerID(), pref: m.Options.Preference(), ia: ia}
	c.adverts = append(c.adverts, a)
	// Preference 255 is taken at once, and after the first RT any
	// usable Advertise ends the search.
	if a.pref == 255 || c.ex.count > 1 {
		c.startRequest(now, a)
	}
}

func (c *Client) onRequestReply(now time.Time, m *dhcpv6.Message, st iana.StatusCode, ia iaResult) {
	switch {
	case st != iana.StatusSuccess:
		c.backoff(now, "Reply to Request: "+st.String())
	case !ia.usable():
		why := "Reply to Request without prefixes"
		if ia.found && ia.status != iana.StatusSuccess {
			why = "Reply to Request: " + ia.status.String()
		}
		c.backoff(now, why)
	default:
		c.b = binding{serverID: m.Options.ServerID()}
		c.bind(now, m, ia)
		c.stats.Bound++
		c.log.Info("dhcpv6-pd: bound", "prefixes", c.b.prefixes(), "t1", c.b.t1, "t2", c.b.t2, "dns", c.b.dns)
	}
}

func (c *Client) onRenewReply(now time.Time, m *dhcpv6.Message, st iana.StatusCode, ia iaResult) {
	renewing := c.state == StateRenewing
	switch {
	case st != iana.StatusSuccess:
		// UnspecFail and the like: keep retransmitting at the RFC's
		// pace; the exchange's own end moves on to Rebind or expiry.
	case !ia.found:
		// The server ignored the IA_PD: as if nothing was received.
	case ia.status == iana.StatusNoBinding:
		c.log.Info("dhcpv6-pd: server lost the binding, requesting it again")
		c.startRequest(now, advert{serverID: m.Options.ServerID(), ia: iaResult{found: true, prefixes: c.b.offered()}})
	case ia.status == iana.StatusNoPrefixAvail:
		c.b.leases = nil
		c.publish()
		c.backoff(now, "Reply to "+typeName(c.ex.typ)+": NoPrefixAvail")
	case ia.status != iana.StatusSuccess:
	default:
		c.b.serverID = m.Options.ServerID()
		c.bind(now, m, ia)
		if len(c.b.leases) == 0 {
			c.backoff(now, "server withdrew every prefix")
			return
		}
		if renewing {
			c.stats.Renewed++
		} else {
			c.stats.Rebound++
		}
		c.log.Debug("dhcpv6-pd: binding extended", "prefixes", c.b.prefixes(), "t1", c.b.t1)
	}
}

// bind applies a successful Reply and publishes the result.
func (c *Client) bind(now time.Time, m *dhcpv6.Message, ia iaResult) {
	c.b.apply(now, ia)
	c.b.dns = dnsServers(m)
	c.received = now
	c.failures = 0
	c.ex = nil
	c.setState(StateBound)
	c.publish()
}

// publish hands the binding to cfg.Publish if it changed.
func (c *Client) publish() {
	d := c.b.delegation(c.cfg.Interface)
	if sameDelegation(d, c.published) {
		return
	}
	c.published = d
	if c.cfg.Publish != nil {
		c.cfg.Publish(d)
	}
}

// exit ends the client: with ReleaseOnExit a bound delegation is released
// (briefly waiting for the Reply) and its loss published; otherwise the
// binding is kept for the next run.
func (c *Client) exit(conn Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cfg.ReleaseOnExit || len(c.b.leases) == 0 {
		c.setState(StateStopped)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseWait)
	defer cancel()
	start := c.clock.Now()
	end := start.Add(releaseWait)
	c.setState(StateReleasing)
	c.ex = newExchange(dhcpv6.MessageTypeRelease, c.newXID(), params{IRT: relTimeout, MRC: relMaxRC}, start, end)
	buf := make([]byte, 65536)
	for c.ex != nil {
		now := c.clock.Now()
		if c.ex.exhausted(now) {
			c.log.Warn("dhcpv6-pd: no Reply to Release")
			break
		}
		if !now.Before(c.ex.next) {
			if err := c.send(now, conn); err != nil {
				break
			}
		}
		wake := c.ex.wake()
		c.mu.Unlock()
		n, from, err := conn.Receive(ctx, buf, wake)
		c.mu.Lock()
		if errors.Is(err, errTimeout) {
			continue
		}
		if err != nil {
			break
		}
		c.handle(c.clock.Now(), buf[:n], from)
	}
	released := c.ex == nil
	c.ex = nil
	c.b.leases = nil
	c.publish()
	c.log.Info("dhcpv6-pd: released", "acknowledged", released)
	c.setState(StateStopped)
}
