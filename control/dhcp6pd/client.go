// Package dhcp6pd is the DHCPv6 prefix-delegation client (RFC 8415) of
// the WAN interface: it obtains a delegated prefix, renews and rebinds it,
// notices its expiry and publishes every change as a learned.Delegation.
package dhcp6pd

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/xdprouter/xdprouter/control/learned"
)

// Config configures a Client.
type Config struct {
	Interface string
	// PrefixLengthHint, if not 0, asks for a prefix of this length.
	PrefixLengthHint int
	// StateDir keeps the DUID and IAID across restarts, so the server
	// recognises the client and hands back the same prefix.
	StateDir string
	// ReleaseOnExit sends a Release when Run's context ends; otherwise
	// the binding is left to the server for the next run.
	ReleaseOnExit bool
	// Publish receives every change of the delegation, on Run's goroutine.
	Publish func(learned.Delegation)
	Logger  *slog.Logger

	// The OS boundary; nil means the real socket, clock and MAC.
	Listen func(ifname string) (Conn, error)
	Clock  Clock
	MAC    net.HardwareAddr
	// WatchLink calls up each time ifname's link comes up, until ctx
	// ends (see Restart); nil: netlink's link updates. NoLinkWatch
	// turns it off.
	WatchLink   func(ctx context.Context, ifname string, up func()) error
	NoLinkWatch bool
}

// releaseWait bounds the wait for the Reply to a Release at exit.
const releaseWait = 3 * time.Second

// Client is the prefix-delegation client of one interface.
type Client struct {
	cfg   Config
	log   *slog.Logger
	clock Clock
	rnd   *rand.Rand

	mu        sync.Mutex
	id        identity
	state     State
	ex        *exchange
	adverts   []advert // collected during the first Solicit RT
	chosen    advert   // the server being requested
	failures  int      // consecutive failed attempts, for the backoff
	solMaxRT  time.Duration
	b         binding
	received  time.Time // last Reply that set the binding
	published learned.Delegation
	stats     Stats
	// rcancel ends the Receive in progress, so that a Restart is acted
	// on at once; kick wakes the wait for the socket to reopen.
	rcancel     context.CancelFunc
	kick        chan struct{}
	lastRestart time.Time
}

// advert is a usable Advertise.
type advert struct {
	serverID dhcpv6.DUID
	pref     uint8
	ia       iaResult
}

// New checks cfg and returns a client; Run does the work.
func New(cfg Config) (*Client, error) {
	if cfg.Interface == "" {
		return nil, errors.New("dhcpv6-pd: no interface")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("dhcpv6-pd: no state directory")
	}
	if cfg.PrefixLengthHint < 0 || cfg.PrefixLengthHint > 128 {
		return nil, fmt.Errorf("dhcpv6-pd: prefix-length-hint %d out of range", cfg.PrefixLengthHint)
	}
	c := &Client{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		kick: make(chan struct{}, 1)}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("task", "dhcpv6-pd", "interface", cfg.Interface)
	if c.clock == nil {
		c.clock = systemClock{}
	}
	if c.cfg.Listen == nil {
		c.cfg.Listen = ListenUDP
	}
	c.solMaxRT = solMaxRT
	c.state = StateStarting
	c.stats = Stats{Interface: cfg.Interface, Sent: map[string]uint64{}, Received: map[string]uint64{}, StatusCodes: map[string]uint64{}}
	return c, nil
}

// Run obtains and keeps a delegation until ctx ends. It returns an error
// only when the state directory is unusable; socket trouble (interface
// missing, no link-local address yet) is retried.
func (c *Client) Run(ctx context.Context) error {
	mac := c.cfg.MAC
	if mac == nil {
		if ifc, err := net.InterfaceByName(c.cfg.Interface); err == nil {
			mac = ifc.HardwareAddr
		}
	}
	id, err := loadIdentity(c.cfg.StateDir, c.cfg.Interface, mac, c.clock.Now())
	if err != nil {
		return fmt.Errorf("dhcpv6-pd on %s: %w", c.cfg.Interface, err)
	}
	c.mu.Lock()
	c.id = id
	c.stats.DUID = hex.EncodeToString(id.duid.ToBytes())
	c.stats.IAID = hex.EncodeToString(id.iaid[:])
	c.mu.Unlock()
	c.log.Info("dhcpv6-pd client starting", "duid", c.stats.DUID, "iaid", c.stats.IAID, "hint", c.cfg.PrefixLengthHint)
	c.watchLink(ctx)

	retry := time.Second
	for {
		conn, err := c.cfg.Listen(c.cfg.Interface)
		if err == nil {
			retry = time.Second
			// Closed however serve ends (a panic too: the port must be
			// free when the supervisor starts the client again).
			err = func() error {
				defer conn.Close()
				return c.serve(ctx, conn)
			}()
		}
		if ctx.Err() != nil {
			c.mu.Lock()
			c.setState(StateStopped)
			c.mu.Unlock()
			return nil
		}
		c.mu.Lock()
		c.stats.SocketErrors++
		c.noteError(err)
		c.mu.Unlock()
		c.log.Warn("dhcpv6 socket, retrying", "err", err, "in", retry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		case <-c.kick:
			retry = time.Second // the link came up: try the socket now
			continue
		}
		retry = min(2*retry, 30*time.Second)
	}
}

// serve runs the protocol on conn until ctx ends (nil) or the socket fails.
func (c *Client) serve(ctx context.Context, conn Conn) error {
	buf := make([]byte, 65536)
	c.locked(func() {
		if c.ex == nil && c.state == StateStarting {
			c.startSolicit(c.clock.Now(), c.randDelay(solMaxDelay))
		}
	})
	defer c.locked(func() { c.rcancel = nil })
	for {
		var (
			err  error
			wake time.Time
		)
		rctx, rcancel := context.WithCancel(ctx)
		c.locked(func() {
			now := c.clock.Now()
			err = c.tick(now, conn)
			wake = c.wake(now)
			c.rcancel = rcancel
		})
		if err != nil {
			rcancel()
			return err
		}
		n, from, err := conn.Receive(rctx, buf, wake)
		interrupted := rctx.Err() != nil
		rcancel()
		switch {
		case ctx.Err() != nil:
			c.exit(conn)
			return nil
		case err == nil:
			c.locked(func() { c.handle(c.clock.Now(), buf[:n], from) })
		case errors.Is(err, errTimeout), interrupted:
			// The deadline, or a Restart: tick again.
		default:
			return fmt.Errorf("receive: %w", err)
		}
	}
}

// locked runs f with c.mu held, releasing it however f ends: a panic in
// a parser must not leave the client locked (Stats would hang, and so
// would the client the supervisor starts again).
func (c *Client) locked(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

// Stats returns a snapshot.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats.clone()
	if len(c.b.leases) > 0 {
		now := c.clock.Now()
		b := &Binding{ServerID: c.b.serverHex(), DNS: append([]netip.Addr(nil), c.b.dns...), T1: c.b.t1, T2: c.b.t2, Received: c.received}
		for _, l := range c.b.leases {
			b.Prefixes = append(b.Prefixes, PrefixLease{Prefix: l.prefix, Valid: seconds(learned.Remaining(l.valid, now)), Preferred: seconds(learned.Remaining(l.preferred, now))})
		}
		s.Binding = b
	}
	return s
}

// Delegation is the delegation last published.
func (c *Client) Delegation() learned.Delegation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.published
}
