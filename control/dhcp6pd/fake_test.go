package dhcp6pd

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/xdprouter/xdprouter/control/learned"
)

// The fake network runs the client in virtual time on one goroutine: a
// Receive with nothing queued jumps the clock to its deadline, so hours of
// protocol take microseconds and every timing is exact.

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type sentMsg struct {
	at time.Time
	m  *dhcpv6.Message
}

type fakeNet struct {
	t       *testing.T
	now     time.Time
	stopAt  time.Time
	stopped bool
	cancel  context.CancelFunc
	inbox   [][]byte
	servers []*fakeServer
	sent    []sentMsg
	// events run at their virtual time, in order, from Receive (the
	// client's lock is not held there): a server coming up, a Restart.
	events []fakeEvent
}

type fakeEvent struct {
	at time.Time
	f  func()
}

// at schedules f at virtual time t0+d.
func (f *fakeNet) at(d time.Duration, fn func()) {
	f.events = append(f.events, fakeEvent{t0.Add(d), fn})
}

func (f *fakeNet) Now() time.Time { return f.now }

func (f *fakeNet) Send(b []byte) error {
	m, err := dhcpv6.MessageFromBytes(b)
	if err != nil {
		f.t.Fatalf("client sent a malformed message: %v", err)
	}
	f.sent = append(f.sent, sentMsg{f.now, m})
	for _, s := range f.servers {
		for _, r := range s.answer(f.now, m) {
			f.inbox = append(f.inbox, r.ToBytes())
		}
	}
	return nil
}

func (f *fakeNet) Receive(ctx context.Context, buf []byte, deadline time.Time) (int, netip.Addr, error) {
	if err := ctx.Err(); err != nil {
		return 0, netip.Addr{}, err
	}
	if len(f.inbox) > 0 {
		n := copy(buf, f.inbox[0])
		f.inbox = f.inbox[1:]
		return n, netip.MustParseAddr("fe80::1"), nil
	}
	if len(f.events) > 0 && !f.events[0].at.After(deadline) && f.events[0].at.Before(f.stopAt) {
		ev := f.events[0]
		f.events = f.events[1:]
		if ev.at.After(f.now) {
			f.now = ev.at
		}
		ev.f()
		if err := ctx.Err(); err != nil {
			return 0, netip.Addr{}, err
		}
		return 0, netip.Addr{}, errTimeout
	}
	if !f.stopped && !deadline.Before(f.stopAt) {
		f.stopped = true
		f.now = f.stopAt
		f.cancel()
		return 0, netip.Addr{}, context.Canceled
	}
	if deadline.After(f.now) {
		f.now = deadline
	}
	return 0, netip.Addr{}, errTimeout
}

func (f *fakeNet) Close() error { return nil }

// sentOf returns the client's messages of one type.
func (f *fakeNet) sentOf(typ dhcpv6.MessageType) []sentMsg {
	var out []sentMsg
	for _, s := range f.sent {
		if s.m.MessageType == typ {
			out = append(out, s)
		}
	}
	return out
}

// fakeServer answers like a DHCPv6 server delegating one prefix. Its
// fields are the script; tests change them between runs or from hooks.
type fakeServer struct {
	duid       dhcpv6.DUID
	prefix     netip.Prefix
	preferred  time.Duration
	valid      time.Duration
	t1, t2     time.Duration
	dns        []netip.Addr
	preference int // -1: no Preference option
	// silent drops messages of these types; noPrefix answers Solicit and
	// Request with NoPrefixAvail; iaStatus puts a status into the IA_PD
	// of Replies to these types.
	silent   map[dhcpv6.MessageType]bool
	noPrefix bool
	iaStatus map[dhcpv6.MessageType]iana.StatusCode
	// hook sees each message first (to change the script mid-run).
	hook func(now time.Time, m *dhcpv6.Message)
}

func newServer(id byte, prefix string) *fakeServer {
	return &fakeServer{
		duid:      &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, id}},
		prefix:    netip.MustParsePrefix(prefix),
		preferred: 3000 * time.Second, valid: 4000 * time.Second,
		t1: 1000 * time.Second, t2: 1600 * time.Second,
		dns:        []netip.Addr{netip.MustParseAddr("2001:db8::53")},
		preference: -1,
		silent:     map[dhcpv6.MessageType]bool{},
		iaStatus:   map[dhcpv6.MessageType]iana.StatusCode{},
	}
}

func (s *fakeServer) answer(now time.Time, m *dhcpv6.Message) []*dhcpv6.Message {
	if s.hook != nil {
		s.hook(now, m)
	}
	if s.silent[m.MessageType] {
		return nil
	}
	if sid := m.Options.ServerID(); sid != nil && !sameDUID(sid, s.duid) {
		return nil
	}
	typ := dhcpv6.MessageTypeReply
	if m.MessageType == dhcpv6.MessageTypeSolicit {
		typ = dhcpv6.MessageTypeAdvertise
	}
	r := &dhcpv6.Message{MessageType: typ, TransactionID: m.TransactionID}
	r.AddOption(dhcpv6.OptClientID(m.Options.ClientID()))
	r.AddOption(dhcpv6.OptServerID(s.duid))
	if typ == dhcpv6.MessageTypeAdvertise && s.preference >= 0 {
		r.AddOption(dhcpv6.OptPreference(uint8(s.preference)))
	}
	if m.MessageType == dhcpv6.MessageTypeRelease {
		return []*dhcpv6.Message{r}
	}
	ia := &dhcpv6.OptIAPD{IaId: m.Options.OneIAPD().IaId}
	st, ok := s.iaStatus[m.MessageType]
	switch {
	case s.noPrefix && (m.MessageType == dhcpv6.MessageTypeSolicit || m.MessageType == dhcpv6.MessageTypeRequest):
		ia.Options.Add(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoPrefixAvail, StatusMessage: "none left"})
	case ok:
		ia.Options.Add(&dhcpv6.OptStatusCode{StatusCode: st})
	default:
		ia.T1, ia.T2 = s.t1, s.t2
		ia.Options.Add(&dhcpv6.OptIAPrefix{PreferredLifetime: s.preferred, ValidLifetime: s.valid, Prefix: ipNet(s.prefix)})
	}
	r.AddOption(ia)
	if len(s.dns) > 0 {
		var ips []net.IP
		for _, a := range s.dns {
			ips = append(ips, a.AsSlice())
		}
		r.AddOption(dhcpv6.OptDNS(ips...))
	}
	return []*dhcpv6.Message{r}
}

// run is a client on a fake network until virtual time `until`.
type run struct {
	f         *fakeNet
	c         *Client
	published []pub
	err       error
}

type pub struct {
	at time.Time
	d  learned.Delegation
}

func newRun(t *testing.T, dir string, cfg Config, servers ...*fakeServer) *run {
	t.Helper()
	f := &fakeNet{t: t, now: t0, servers: servers}
	r := &run{f: f}
	cfg.Interface = "wan0"
	cfg.StateDir = dir
	cfg.Clock = f
	cfg.Listen = func(string) (Conn, error) { return f, nil }
	if cfg.MAC == nil {
		cfg.MAC = net.HardwareAddr{2, 0xaa, 0, 0, 0, 1}
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.NoLinkWatch = cfg.WatchLink == nil
	cfg.Publish = func(d learned.Delegation) { r.published = append(r.published, pub{f.now, d}) }
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.rnd = rand.New(rand.NewPCG(1, uint64(len(t.Name()))))
	r.c = c
	return r
}

// until runs the client until virtual time t0+d, then ends its context.
func (r *run) until(d time.Duration) *run {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.f.stopAt = t0.Add(d)
	r.f.cancel = cancel
	r.err = r.c.Run(ctx)
	return r
}

func (r *run) last() learned.Delegation {
	if len(r.published) == 0 {
		return learned.Delegation{}
	}
	return r.published[len(r.published)-1].d
}
