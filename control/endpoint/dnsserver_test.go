package endpoint

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// record is what the test server answers for a name.
type record struct {
	addrs  []string
	ttl    uint32
	rcode  int  // non-zero: answer with this rcode and nothing else
	silent bool // do not answer at all (a timeout for the client)
	noAAAA bool // the name exists, without AAAA records
	// truncated answers over UDP with TC set and no records, as a server
	// does when the answer does not fit.
	truncated bool
}

// testDNS is a DNS server on a loopback UDP port whose answers a test
// changes while the code under test queries it.
type testDNS struct {
	Addr    netip.AddrPort
	queries atomic.Int64

	mu      sync.Mutex
	records map[string]record
}

// startDNS serves on host:port (port 0: any).
func startDNS(t *testing.T, host string, port uint16) (*testDNS, error) {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(int(port))))
	if err != nil {
		return nil, err
	}
	d := &testDNS{records: map[string]record{}}
	d.Addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	d.Addr = netip.AddrPortFrom(d.Addr.Addr().Unmap(), d.Addr.Port())
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: d, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return d, nil
}

// startDNSPair starts two servers on one port (the client's port is the
// same for every server), on 127.0.0.1 and 127.0.0.2.
func startDNSPair(t *testing.T) (*testDNS, *testDNS) {
	t.Helper()
	for range 20 {
		a, err := startDNS(t, "127.0.0.1", 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := startDNS(t, "127.0.0.2", a.Addr.Port())
		if err == nil {
			return a, b
		}
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return nil, nil
}

// serveTCP answers over TCP too, on the same address and port.
func (d *testDNS) serveTCP(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", d.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{Listener: ln, Handler: d, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
}

func (d *testDNS) set(name string, r record) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.records[dns.Fqdn(name)] = r
}

func (d *testDNS) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	d.queries.Add(1)
	d.mu.Lock()
	r, ok := d.records[strings.ToLower(q.Question[0].Name)]
	d.mu.Unlock()
	if r.silent {
		return
	}
	m := new(dns.Msg)
	m.SetReply(q)
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
	case r.rcode != 0:
		m.Rcode = r.rcode
	case r.noAAAA:
	case r.truncated && w.LocalAddr().Network() == "udp":
		m.Truncated = true
	default:
		for _, a := range r.addrs {
			m.Answer = append(m.Answer, &dns.AAAA{
				Hdr:  dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: r.ttl},
				AAAA: net.ParseIP(a),
			})
		}
	}
	_ = w.WriteMsg(m)
}
