package endpoint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Why a query failed; the keys of Failures.
const (
	ReasonTimeout   = "timeout"
	ReasonNetwork   = "network"   // refused, unreachable, ...
	ReasonServFail  = "servfail"  // SERVFAIL
	ReasonRefused   = "refused"   // REFUSED
	ReasonNXDomain  = "nxdomain"  // the name does not exist
	ReasonNoAAAA    = "no_aaaa"   // the name exists but has no AAAA
	ReasonBadReply  = "bad_reply" // another rcode, or an unusable message
	ReasonNoServers = "no_servers"
)

// Try is one query to one server.
type Try struct {
	Server netip.AddrPort
	Reason string // "" for an answer
	Err    error
}

// Answer is a successful lookup.
type Answer struct {
	Addrs  []netip.Addr // sorted, no duplicates
	TTL    time.Duration
	Server netip.AddrPort
}

// LookupAAAA resolves name to IPv6 addresses, asking the servers in turn
// until one answers with addresses. tries has one entry per query sent
// (the caller counts them); err says why no server answered.
func (d *DNS) LookupAAAA(ctx context.Context, name string) (ans Answer, tries []Try, source string, err error) {
	servers, source := d.Servers()
	if len(servers) == 0 {
		tries = []Try{{Reason: ReasonNoServers, Err: errors.New("no DNS server learned (RA RDNSS, DHCPv6) and none in " + d.o.ResolvConf)}}
		return Answer{}, tries, source, fmt.Errorf("resolve %s: %w", name, tries[0].Err)
	}
	var errs []error
	for _, s := range servers {
		if ctx.Err() != nil {
			break
		}
		addrs, ttl, reason, err := d.query(ctx, s, name)
		tries = append(tries, Try{Server: s, Reason: reason, Err: err})
		if err == nil {
			return Answer{Addrs: addrs, TTL: ttl, Server: s}, tries, source, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", s, err))
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return Answer{}, tries, source, fmt.Errorf("resolve %s: %w", name, errors.Join(errs...))
}

// query asks one server, over TCP again when the UDP answer is
// truncated (a name with many AAAA records).
func (d *DNS) query(ctx context.Context, s netip.AddrPort, name string) ([]netip.Addr, time.Duration, string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeAAAA)
	m.SetEdns0(1232, false)
	qctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	r, _, err := d.o.UDP.ExchangeContext(qctx, m, s.String())
	if err == nil && r.Truncated {
		r, _, err = d.o.TCP.ExchangeContext(qctx, m, s.String())
	}
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			return nil, 0, ReasonTimeout, fmt.Errorf("no answer within %v: %w", d.o.Timeout, err)
		}
		return nil, 0, ReasonNetwork, err
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeServerFailure:
		return nil, 0, ReasonServFail, errors.New("SERVFAIL")
	case dns.RcodeRefused:
		return nil, 0, ReasonRefused, errors.New("REFUSED")
	case dns.RcodeNameError:
		return nil, 0, ReasonNXDomain, errors.New("NXDOMAIN: no such name")
	default:
		return nil, 0, ReasonBadReply, fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	addrs, ttl := aaaaAnswer(r, dns.Fqdn(name))
	if len(addrs) == 0 {
		return nil, 0, ReasonNoAAAA, errors.New("no AAAA record")
	}
	return addrs, ttl, "", nil
}

// aaaaAnswer takes the AAAA records of name from r's answer section,
// following CNAMEs; the TTL is the smallest along the chain, since the
// answer is only as fresh as its shortest-lived link.
func aaaaAnswer(r *dns.Msg, name string) ([]netip.Addr, time.Duration) {
	target := name
	ttl := uint32(0)
	first := true
	lower := func(t uint32) {
		if first || t < ttl {
			ttl, first = t, false
		}
	}
	// A chain longer than the answer section would loop.
	for range len(r.Answer) {
		next := ""
		for _, rr := range r.Answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, target) {
				next = c.Target
				lower(c.Hdr.Ttl)
				break
			}
		}
		if next == "" {
			break
		}
		target = next
	}
	var addrs []netip.Addr
	for _, rr := range r.Answer {
		a, ok := rr.(*dns.AAAA)
		if !ok || !strings.EqualFold(a.Hdr.Name, target) {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.AAAA)
		if !ok || ip.Is4In6() || !ip.Is6() {
			continue
		}
		addrs = append(addrs, ip)
		lower(a.Hdr.Ttl)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs), time.Duration(ttl) * time.Second
}
