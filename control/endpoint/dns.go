package endpoint

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Where the servers in use come from, for status.
const (
	SourceLearned    = "learned"     // RA RDNSS and DHCPv6
	SourceResolvConf = "resolv.conf" // nothing learned: the system's
	SourceNone       = "none"
)

// Exchanger sends one DNS query; *dns.Client is the real one.
type Exchanger interface {
	ExchangeContext(ctx context.Context, m *dns.Msg, addr string) (*dns.Msg, time.Duration, error)
}

// DNSOptions configure a DNS.
type DNSOptions struct {
	// ResolvConf is the fallback used while no server has been learned;
	// "" means /etc/resolv.conf.
	ResolvConf string
	// Port is the servers' port, 53 unless set (tests run servers on
	// other ports).
	Port uint16
	// Timeout bounds one query to one server; 0 means 2 s.
	Timeout time.Duration
	// UDP and TCP send queries; nil means *dns.Client (TCP is used when
	// an answer comes back truncated).
	UDP, TCP Exchanger
}

// DNS asks the DNS servers the router has learned from the WAN. The
// resolver and the provisioner share one, so both use what was learned
// last.
type DNS struct {
	o DNSOptions

	mu      sync.Mutex
	learned []netip.Addr
	changed chan struct{} // closed when the learned servers change
}

// NewDNS returns a DNS that uses the system's servers until SetServers.
func NewDNS(o DNSOptions) *DNS {
	if o.ResolvConf == "" {
		o.ResolvConf = "/etc/resolv.conf"
	}
	if o.Port == 0 {
		o.Port = 53
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.UDP == nil {
		o.UDP = &dns.Client{Net: "udp", Timeout: o.Timeout}
	}
	if o.TCP == nil {
		o.TCP = &dns.Client{Net: "tcp", Timeout: o.Timeout}
	}
	return &DNS{o: o, changed: make(chan struct{})}
}

// SetServers replaces the learned servers (the union of RA RDNSS and
// DHCPv6, in order of preference); an empty list falls back to
// resolv.conf. It may be called at any time.
func (d *DNS) SetServers(addrs []netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if slices.Equal(addrs, d.learned) {
		return
	}
	d.learned = slices.Clone(addrs)
	close(d.changed)
	d.changed = make(chan struct{})
}

// Changed is closed at the next change of the learned servers.
func (d *DNS) Changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// Servers returns the servers to ask, in order, and where they come from.
// resolv.conf is read at each call: it changes under a running daemon.
func (d *DNS) Servers() ([]netip.AddrPort, string) {
	d.mu.Lock()
	learned := slices.Clone(d.learned)
	d.mu.Unlock()
	if len(learned) > 0 {
		return d.withPort(learned), SourceLearned
	}
	cc, err := dns.ClientConfigFromFile(d.o.ResolvConf)
	if err != nil {
		return nil, SourceNone
	}
	var addrs []netip.Addr
	for _, s := range cc.Servers {
		if a, err := netip.ParseAddr(s); err == nil {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, SourceNone
	}
	return d.withPort(addrs), SourceResolvConf
}

func (d *DNS) withPort(addrs []netip.Addr) []netip.AddrPort {
	out := make([]netip.AddrPort, len(addrs))
	for i, a := range addrs {
		out[i] = netip.AddrPortFrom(a, d.o.Port)
	}
	return out
}
