package endpoint

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
)

// ResolverOptions configure a Resolver; zero fields take the defaults.
type ResolverOptions struct {
	DNS *DNS
	// Publish receives a name's addresses when they are first obtained
	// and whenever they change, and a Remote without addresses when the
	// name is dropped by SetNames. It is called from Run's goroutine.
	Publish func(learned.Remote)
	// MinRefresh and MaxRefresh bound the TTL: a TTL of 0 or 5 s must not
	// turn into a query storm, one of a week must not pin an AFTR that
	// moved. Defaults 30 s and 1 h.
	MinRefresh, MaxRefresh time.Duration
	// Retry is the schedule after failed resolutions; default 1 s
	// doubling to 1 min, 20% jitter.
	Retry Backoff
	Clock Clock
	Log   *slog.Logger
}

// Resolver resolves the tunnel remotes given as DNS names and follows
// their TTLs. A failure never withdraws an answer: the last good one
// stays in force (a DNS hiccup must not take a tunnel down) while the
// resolver retries with backoff.
type Resolver struct {
	o    ResolverOptions
	wake chan struct{}

	mu    sync.Mutex
	names map[string]*nameState
	// withdrawn are names dropped by SetNames, to be published by Run so
	// that the consumer sees one ordered stream.
	withdrawn []string
}

type nameState struct {
	stats NameStats
	due   time.Time // next resolution; zero: now
}

// NewResolver returns a Resolver with no names; Run does the work.
func NewResolver(o ResolverOptions) *Resolver {
	if o.DNS == nil {
		o.DNS = NewDNS(DNSOptions{})
	}
	if o.Publish == nil {
		o.Publish = func(learned.Remote) {}
	}
	if o.MinRefresh == 0 {
		o.MinRefresh = 30 * time.Second
	}
	if o.MaxRefresh == 0 {
		o.MaxRefresh = time.Hour
	}
	if o.Retry.Initial == 0 {
		o.Retry = Backoff{Initial: time.Second, Max: time.Minute, Jitter: 0.2}
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{o: o, wake: make(chan struct{}, 1), names: map[string]*nameState{}}
}

// SetNames makes names the set to resolve (the config's remotes given as
// names); new ones are resolved at once, dropped ones are withdrawn.
func (r *Resolver) SetNames(names []string) {
	r.mu.Lock()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
		if r.names[n] == nil {
			r.names[n] = &nameState{stats: NameStats{Name: n, Failures: Failures{}}}
			r.withdrawn = slices.DeleteFunc(r.withdrawn, func(w string) bool { return w == n })
		}
	}
	for n, st := range r.names {
		if !want[n] {
			delete(r.names, n)
			if st.stats.Changes > 0 {
				r.withdrawn = append(r.withdrawn, n)
			}
		}
	}
	r.mu.Unlock()
	r.poke()
}

func (r *Resolver) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run resolves every name when due until ctx ends.
func (r *Resolver) Run(ctx context.Context) error {
	for {
		changed := r.o.DNS.Changed()
		r.publishWithdrawn()
		for _, name := range r.due() {
			r.resolve(ctx, name)
		}
		if ctx.Err() != nil {
			return nil
		}
		var t Timer
		var fired <-chan time.Time
		if next, ok := r.next(); ok {
			t = r.o.Clock.NewTimer(next.Sub(r.o.Clock.Now()))
			fired = t.C()
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-fired:
		case <-changed:
			// New servers may answer what the old ones could not: retry
			// failing names now rather than at the end of their backoff.
			r.retryFailing()
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (r *Resolver) publishWithdrawn() {
	r.mu.Lock()
	w := r.withdrawn
	r.withdrawn = nil
	r.mu.Unlock()
	for _, n := range w {
		r.o.Log.Info("tunnel remote withdrawn", "name", n)
		r.o.Publish(learned.Remote{Name: n})
	}
}

// due returns the names whose resolution is due, in order.
func (r *Resolver) due() []string {
	now := r.o.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n, st := range r.names {
		if !st.due.After(now) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// next is the earliest due time; false when there is no name.
func (r *Resolver) next() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next time.Time
	for _, st := range r.names {
		if next.IsZero() || st.due.Before(next) {
			next = st.due
		}
	}
	return next, len(r.names) > 0
}

func (r *Resolver) retryFailing() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.names {
		if st.stats.FailedInARow > 0 {
			st.due = time.Time{}
		}
	}
}

// resolve looks name up once and publishes a changed answer.
func (r *Resolver) resolve(ctx context.Context, name string) {
	ans, tries, source, err := r.o.DNS.LookupAAAA(ctx, name)
	if ctx.Err() != nil {
		return // stopping: an aborted query is no failure
	}
	now := r.o.Clock.Now()
	var refused []netip.Addr
	if err == nil {
		var ok []netip.Addr
		for _, a := range ans.Addrs {
			if Unusable(a) != "" {
				refused = append(refused, a)
			} else {
				ok = append(ok, a)
			}
		}
		if len(ok) == 0 {
			err = fmt.Errorf("resolve %s: the answer from %s has no address a tunnel can use: %s", name, ans.Server, describeRefused(refused))
		}
		ans.Addrs = ok
	}

	r.mu.Lock()
	st := r.names[name]
	if st == nil { // dropped while the query was out
		r.mu.Unlock()
		return
	}
	s := &st.stats
	for _, t := range tries {
		if t.Reason != ReasonNoServers {
			s.Queries++
		}
		if t.Reason == "" {
			s.Answers++
		} else {
			s.Failures[t.Reason]++
		}
	}
	for _, a := range refused {
		if s.Refused == nil {
			s.Refused = map[string]uint64{}
		}
		s.Refused[Unusable(a)]++
	}
	var publish bool
	if err != nil {
		s.FailedInARow++
		s.LastError = err.Error()
		st.due = now.Add(r.o.Retry.Delay(s.FailedInARow))
		s.Stale = len(s.Addrs) > 0 && !now.Before(s.Until)
	} else {
		refresh := min(max(ans.TTL, r.o.MinRefresh), r.o.MaxRefresh)
		publish = s.Changes == 0 || !slices.Equal(ans.Addrs, s.Addrs)
		s.Addrs, s.Server, s.LastAnswer = ans.Addrs, ans.Server, now
		s.Until = now.Add(refresh)
		s.FailedInARow, s.LastError, s.Stale = 0, "", false
		st.due = s.Until
		if publish {
			s.Changes++
		}
	}
	s.NextRefresh = st.due
	failed, inForce, until := s.FailedInARow, slices.Clone(s.Addrs), s.Until
	r.mu.Unlock()

	if len(refused) > 0 {
		r.o.Log.Warn("tunnel remote: addresses in the DNS answer refused", "name", name, "refused", describeRefused(refused),
			"server", ans.Server, "kept", inForce)
	}
	switch {
	case err != nil && len(inForce) > 0:
		r.o.Log.Warn("tunnel remote: resolution failed, keeping the last answer",
			"name", name, "addrs", inForce, "servers", source, "failed_in_a_row", failed, "err", err)
	case err != nil:
		r.o.Log.Warn("tunnel remote: resolution failed", "name", name, "servers", source, "failed_in_a_row", failed, "err", err)
	case publish:
		r.o.Log.Info("tunnel remote resolved", "name", name, "addrs", inForce, "ttl", ans.TTL, "server", ans.Server, "servers", source)
		r.o.Publish(learned.Remote{Name: name, Addrs: inForce, Until: until})
	}
}

// Stats returns the servers in use and each name's state, by name.
func (r *Resolver) Stats() ResolverStats {
	servers, source := r.o.DNS.Servers()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := ResolverStats{Servers: servers, ServerSource: source}
	for _, n := range slices.Sorted(maps.Keys(r.names)) {
		s := r.names[n].stats
		s.Addrs = slices.Clone(s.Addrs)
		s.Failures = maps.Clone(s.Failures)
		s.Refused = maps.Clone(s.Refused)
		out.Names = append(out.Names, s)
	}
	return out
}

// Why an address in a DNS answer cannot be a tunnel remote, as counted in
// NameStats.Refused; "" when it can.
const (
	RefusedUnspecified = "unspecified" // ::, which the data plane would encapsulate to and decapsulate from
	RefusedLoopback    = "loopback"
	RefusedMulticast   = "multicast"
	RefusedLinkLocal   = "link_local" // on the WAN link this is whoever claims it
	RefusedIPv4Mapped  = "ipv4_mapped"
	RefusedNotIPv6     = "not_ipv6"
)

// Unusable says why a is no tunnel remote anywhere, or "". What depends
// on the router's own addresses and prefixes (its WAN address, a LAN
// host) the reconciler checks.
func Unusable(a netip.Addr) string {
	switch {
	case !a.Is6():
		return RefusedNotIPv6
	case a.Is4In6() || a.Unmap().Is4():
		return RefusedIPv4Mapped
	case a.IsUnspecified():
		return RefusedUnspecified
	case a.IsLoopback():
		return RefusedLoopback
	case a.IsMulticast():
		return RefusedMulticast
	case a.IsLinkLocalUnicast():
		return RefusedLinkLocal
	}
	return ""
}

func describeRefused(as []netip.Addr) string {
	var out []string
	for _, a := range as {
		out = append(out, a.String()+" ("+Unusable(a)+")")
	}
	return strings.Join(out, ", ")
}
