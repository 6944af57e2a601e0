package dhcp6pd

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// nopConn is a socket that sends nowhere and never receives.
type nopConn struct{}

func (nopConn) Send([]byte) error { return nil }
func (nopConn) Receive(context.Context, []byte, time.Time) (int, netip.Addr, error) {
	return 0, netip.Addr{}, errTimeout
}
func (nopConn) Close() error { return nil }

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

var fuzzDUID = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0xaa, 0, 0, 0, 1}}

// fuzzClient is a client in one of the states a server message can meet
// it in, its transaction ID xid.
func fuzzClient(t testing.TB, state byte) (*Client, *fixedClock) {
	clk := &fixedClock{t0}
	c, err := New(Config{Interface: "wan0", StateDir: "/nonexistent", Clock: clk, Logger: slog.New(slog.DiscardHandler), NoLinkWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	c.id = identity{duid: fuzzDUID, iaid: [4]byte{0, 0, 0, 1}}
	server := newServer(1, pfx)
	ia := iaResult{found: true, t1: time.Hour, t2: 2 * time.Hour,
		prefixes: []offered{{prefix: netip.MustParsePrefix(pfx), preferred: 3 * time.Hour, valid: 4 * time.Hour}}}
	switch state % 5 {
	case 0:
		c.startSolicit(clk.t, 0)
	case 1:
		c.startSolicit(clk.t, 0)
		c.ex.count = 2
	case 2:
		c.startRequest(clk.t, advert{serverID: server.duid, ia: ia})
	case 3, 4:
		c.b = binding{serverID: server.duid}
		c.b.apply(clk.t, ia)
		c.setState(StateBound)
		if state%5 == 3 {
			c.startRenew(clk.t)
		} else {
			c.startRebind(clk.t)
		}
	}
	c.ex.xid = dhcpv6.TransactionID{1, 2, 3}
	return c, clk
}

// FuzzDHCPv6 feeds arbitrary datagrams from port 547 to the client in
// each state it waits for one (soliciting, requesting, renewing,
// rebinding), with the transaction ID made its own so the fuzzer reaches
// the option handling, then lets its timers run: no panic, and a binding
// it takes is a sane one. Issue 13 item 14. The seeds are a server's
// Advertise and Reply with and without status codes.
func FuzzDHCPv6(f *testing.F) {
	s := newServer(1, pfx)
	s.preference = 255
	for st := range 5 {
		for _, typ := range []dhcpv6.MessageType{dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew} {
			c, _ := fuzzClient(f, byte(st))
			req := request{typ: typ, xid: c.ex.xid, clientID: c.id.duid, iaid: c.id.iaid, hintLen: 56, serverID: s.duid,
				prefixes: []netip.Prefix{netip.MustParsePrefix(pfx)}}
			m, err := dhcpv6.MessageFromBytes(req.build())
			if err != nil {
				f.Fatal(err)
			}
			for _, r := range s.answer(t0, m) {
				f.Add(byte(st), r.ToBytes())
			}
		}
	}
	s.noPrefix = true
	c, _ := fuzzClient(f, 0)
	m, _ := dhcpv6.MessageFromBytes(request{typ: dhcpv6.MessageTypeSolicit, xid: c.ex.xid, clientID: c.id.duid, iaid: c.id.iaid}.build())
	for _, r := range s.answer(t0, m) {
		f.Add(byte(0), r.ToBytes())
	}
	f.Add(byte(2), []byte{7, 1, 2, 3, 0, 1, 0, 0})

	f.Fuzz(func(t *testing.T, state byte, b []byte) {
		c, clk := fuzzClient(t, state)
		pkt := append([]byte(nil), b...)
		if len(pkt) >= 4 {
			copy(pkt[1:4], c.ex.xid[:])
		}
		c.locked(func() {
			c.handle(clk.t, pkt, netip.MustParseAddr("fe80::1"))
			for range 50 {
				w := c.wake(clk.t)
				if w.Before(clk.t) {
					w = clk.t
				}
				clk.t = w.Add(time.Millisecond)
				_ = c.tick(clk.t, nopConn{})
			}
		})
		st := c.Stats()
		if b := st.Binding; b != nil {
			for _, p := range b.Prefixes {
				if !p.Prefix.IsValid() || p.Preferred > p.Valid {
					t.Fatalf("binding %+v", b)
				}
			}
		}
	})
}
