package dhcp6pd

import (
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// params are one message type's retransmission parameters (RFC 8415
// section 15): initial and maximum retransmission time, maximum count and
// maximum duration (0: unlimited).
type params struct {
	IRT, MRT time.Duration
	MRC      int
	MRD      time.Duration
}

// RFC 8415 section 7.6.
const (
	solMaxDelay = 1 * time.Second
	solTimeout  = 1 * time.Second
	solMaxRT    = 3600 * time.Second
	reqTimeout  = 1 * time.Second
	reqMaxRT    = 30 * time.Second
	reqMaxRC    = 10
	renTimeout  = 10 * time.Second
	renMaxRT    = 600 * time.Second
	rebTimeout  = 10 * time.Second
	rebMaxRT    = 600 * time.Second
	relTimeout  = 1 * time.Second
	relMaxRC    = 4
)

// exchange is one message with its retransmissions: same transaction ID,
// the Elapsed Time option counting from the first transmission.
type exchange struct {
	typ   dhcpv6.MessageType
	xid   dhcpv6.TransactionID
	p     params
	start time.Time // first transmission; zero before it
	next  time.Time // when the next transmission is due
	end   time.Time // MRD deadline; zero: none
	rt    time.Duration
	count int // transmissions so far
}

// newExchange starts an exchange whose first transmission is due at first.
// end, if not zero, is an absolute MRD deadline (Renew until T2, Rebind
// until the valid lifetimes end) that overrides p.MRD.
func newExchange(typ dhcpv6.MessageType, xid dhcpv6.TransactionID, p params, first, end time.Time) *exchange {
	return &exchange{typ: typ, xid: xid, p: p, next: first, end: end}
}

// elapsed is the Elapsed Time option's value at now: 0 in the first
// message, then hundredths of a second, capped at 0xffff.
func (e *exchange) elapsed(now time.Time) time.Duration {
	if e.start.IsZero() {
		return 0
	}
	d := now.Sub(e.start)
	if max := 0xffff * 10 * time.Millisecond; d > max {
		return max
	}
	return d
}

// sent records a transmission at now and schedules the next one with
// RFC 8415 section 15's formula; rnd returns RAND, uniform in [-0.1, 0.1].
func (e *exchange) sent(now time.Time, rnd func() float64) {
	if e.start.IsZero() {
		e.start = now
		if e.end.IsZero() && e.p.MRD > 0 {
			e.end = now.Add(e.p.MRD)
		}
	}
	e.count++
	r := rnd()
	if e.count == 1 {
		// The first Solicit's RAND must be strictly positive so that
		// Advertises are collected for at least IRT.
		if e.typ == dhcpv6.MessageTypeSolicit && r <= 0 {
			r = -r
			if r == 0 {
				r = 0.05
			}
		}
		e.rt = e.p.IRT + time.Duration(r*float64(e.p.IRT))
	} else {
		e.rt = 2*e.rt + time.Duration(r*float64(e.rt))
	}
	if e.p.MRT > 0 && e.rt > e.p.MRT {
		e.rt = e.p.MRT + time.Duration(rnd()*float64(e.p.MRT))
	}
	e.next = now.Add(e.rt)
}

// exhausted reports whether the exchange has failed at now: MRC
// transmissions made and the last RT elapsed, or MRD passed.
func (e *exchange) exhausted(now time.Time) bool {
	if !e.end.IsZero() && !now.Before(e.end) {
		return true
	}
	return e.p.MRC > 0 && e.count >= e.p.MRC && !now.Before(e.next)
}

// wake is the next moment the exchange needs attention.
func (e *exchange) wake() time.Time {
	if !e.end.IsZero() && e.end.Before(e.next) {
		return e.end
	}
	return e.next
}
