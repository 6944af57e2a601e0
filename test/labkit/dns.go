package labkit

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// DNSServer is the ISP's resolver in a lab: it answers AAAA queries for
// the names it is given (with their TTL) and NXDOMAIN for the rest. It
// runs in the test process, its UDP socket opened inside a namespace.
type DNSServer struct {
	Addr netip.AddrPort
	srv  *dns.Server

	mu      sync.Mutex
	records map[string]dnsRecord
	queries int
}

type dnsRecord struct {
	addrs []netip.Addr
	ttl   time.Duration
}

// StartDNS serves on [addr]:53 in namespace ns until Stop.
func StartDNS(lab *netlab.Lab, ns string, addr netip.Addr) (*DNSServer, error) {
	s := &DNSServer{Addr: netip.AddrPortFrom(addr, 53), records: map[string]dnsRecord{}}
	var pc net.PacketConn
	err := lab.Do(ns, func() error {
		var err error
		pc, err = net.ListenPacket("udp6", s.Addr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dns server on %s in %s: %w", s.Addr, ns, err)
	}
	s.srv = &dns.Server{PacketConn: pc, Handler: s}
	started := make(chan struct{})
	s.srv.NotifyStartedFunc = func() { close(started) }
	go s.srv.ActivateAndServe()
	<-started
	return s, nil
}

// Set makes name resolve to addrs with ttl (no addrs: NXDOMAIN).
func (s *DNSServer) Set(name string, ttl time.Duration, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[dns.Fqdn(strings.ToLower(name))] = dnsRecord{addrs: addrs, ttl: ttl}
}

// Queries is how many queries it answered.
func (s *DNSServer) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

// Stop ends the server.
func (s *DNSServer) Stop() error { return s.srv.Shutdown() }

// ServeDNS answers one query.
func (s *DNSServer) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	s.mu.Lock()
	s.queries++
	for _, qq := range q.Question {
		rec, ok := s.records[strings.ToLower(qq.Name)]
		if !ok || len(rec.addrs) == 0 {
			m.Rcode = dns.RcodeNameError
			continue
		}
		if qq.Qtype != dns.TypeAAAA {
			continue // NOERROR, no data
		}
		for _, a := range rec.addrs {
			m.Answer = append(m.Answer, &dns.AAAA{
				Hdr:  dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: uint32(rec.ttl / time.Second)},
				AAAA: a.AsSlice(),
			})
		}
	}
	s.mu.Unlock()
	w.WriteMsg(m)
}
