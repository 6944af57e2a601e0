package endpoint

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Provisioning states, for status.
const (
	StateWaitingForLocal = "waiting-for-local" // no local address yet
	StateRequesting      = "requesting"        // a request is out
	StateRetrying        = "retrying"          // the last attempt failed; waiting for the next
	StateDone            = "done"              // succeeded for the local address in force
)

// ProvisionStats is one tunnel's provisioning as status shows it. No
// field ever holds the username or the password.
type ProvisionStats struct {
	Tunnel string `json:"tunnel"`
	// URL is the request's URL with the credentials replaced by REDACTED.
	URL          string     `json:"url"`
	State        string     `json:"state"`
	Local        netip.Addr `json:"local,omitzero"`
	Attempts     uint64     `json:"attempts"`
	Failures     uint64     `json:"failures"`
	Successes    uint64     `json:"successes"`
	FailedInARow int        `json:"failed_in_a_row"`
	LastAttempt  time.Time  `json:"last_attempt,omitzero"`
	NextAttempt  time.Time  `json:"next_attempt,omitzero"`
	HTTPStatus   int        `json:"http_status,omitempty"` // of the last attempt; 0 if it got no response
	Body         string     `json:"body,omitempty"`        // the last response's first line (200 bytes at most)
	LastError    string     `json:"last_error,omitempty"`
	// SucceededFor is the local address of the last success, which may
	// be an earlier one than Local while a new request is under way.
	SucceededFor netip.Addr `json:"succeeded_for,omitzero"`
	SucceededAt  time.Time  `json:"succeeded_at,omitzero"`
}

// ProvisionerOptions configure a Provisioner; zero fields take defaults.
type ProvisionerOptions struct {
	// DNS resolves the URL's host: the resolver's, so both use the
	// servers learned from the WAN.
	DNS *DNS
	// Retry is the schedule after failed attempts; default 2 s doubling
	// to 5 min, 20% jitter.
	Retry Backoff
	// Timeout bounds one attempt; default 30 s.
	Timeout time.Duration
	Clock   Clock
	Log     *slog.Logger
}

// Provisioner makes each tunnel's provisioning request once its local
// address is known and again after every change of it, retrying with
// backoff until the ISP answers 2xx.
type Provisioner struct {
	o       ProvisionerOptions
	wake    chan struct{}
	workers sync.WaitGroup

	mu      sync.Mutex
	tunnels map[string]*provision
	locals  map[string]netip.Addr
}

// job is what one run of requests is for; a change of either starts over.
type job struct {
	cfg   Provisioning
	local netip.Addr
}

type provision struct {
	cfg   Provisioning
	stats ProvisionStats
	// The worker in charge, if any, and what it works for; gen tells a
	// superseded worker's late updates apart.
	cancel  context.CancelFunc
	running job
	gen     uint64
	done    *job // the job that last succeeded
}

// NewProvisioner returns a Provisioner with no tunnels; Run does the work.
func NewProvisioner(o ProvisionerOptions) *Provisioner {
	if o.DNS == nil {
		o.DNS = NewDNS(DNSOptions{})
	}
	if o.Retry.Initial == 0 {
		o.Retry = Backoff{Initial: 2 * time.Second, Max: 5 * time.Minute, Jitter: 0.2}
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Provisioner{o: o, wake: make(chan struct{}, 1), tunnels: map[string]*provision{}, locals: map[string]netip.Addr{}}
}

// SetConfig makes tunnels (by tunnel name, validated configs) the set to
// provision; a tunnel whose config changed is requested again.
func (p *Provisioner) SetConfig(tunnels map[string]Provisioning) {
	p.mu.Lock()
	for name, st := range p.tunnels {
		if _, ok := tunnels[name]; !ok {
			if st.cancel != nil {
				st.cancel()
			}
			delete(p.tunnels, name)
		}
	}
	for name, cfg := range tunnels {
		st := p.tunnels[name]
		if st == nil {
			st = &provision{stats: ProvisionStats{Tunnel: name, State: StateWaitingForLocal}}
			p.tunnels[name] = st
		}
		st.cfg = cfg
		st.stats.URL = safeURL(cfg)
	}
	p.mu.Unlock()
	p.poke()
}

// SetLocal tells the tunnel's local address; an invalid one means it has
// none (the WAN prefix is gone). It may come before the tunnel's config.
func (p *Provisioner) SetLocal(tunnel string, local netip.Addr) {
	p.mu.Lock()
	if local.IsValid() {
		p.locals[tunnel] = local
	} else {
		delete(p.locals, tunnel)
	}
	p.mu.Unlock()
	p.poke()
}

func (p *Provisioner) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run starts and stops the tunnels' requests as configs and addresses
// change, until ctx ends.
func (p *Provisioner) Run(ctx context.Context) error {
	defer p.workers.Wait()
	for {
		p.schedule(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		}
	}
}

// schedule starts a worker for each tunnel whose job is neither running
// nor done, cancelling the one it replaces.
func (p *Provisioner) schedule(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, st := range p.tunnels {
		want := job{cfg: st.cfg, local: p.locals[name]}
		switch {
		case !want.local.IsValid():
			if st.cancel != nil {
				st.cancel()
				st.cancel = nil
			}
			// The address coming back is a change too: the ISP may have
			// dropped the line's state meanwhile.
			st.gen++
			st.done = nil
			st.stats.State, st.stats.Local, st.stats.NextAttempt = StateWaitingForLocal, netip.Addr{}, time.Time{}
			continue
		case st.cancel != nil && st.running == want:
			continue
		case st.cancel == nil && st.done != nil && *st.done == want:
			continue
		}
		if st.cancel != nil {
			st.cancel()
		}
		wctx, cancel := context.WithCancel(ctx)
		st.gen++
		st.cancel, st.running = cancel, want
		st.stats.Local, st.stats.State, st.stats.FailedInARow = want.local, StateRequesting, 0
		p.workers.Add(1)
		go p.work(wctx, name, st.gen, want)
	}
}

// work requests until a success or its ctx ends.
func (p *Provisioner) work(ctx context.Context, tunnel string, gen uint64, j job) {
	defer p.workers.Done()
	log := p.o.Log.With("tunnel", tunnel, "local", j.local, "url", safeURL(j.cfg))
	for n := 1; ; n++ {
		if !p.update(tunnel, gen, func(st *provision) {
			st.stats.State, st.stats.LastAttempt, st.stats.NextAttempt = StateRequesting, p.o.Clock.Now(), time.Time{}
			st.stats.Attempts++
		}) {
			return
		}
		resp, err := p.attempt(ctx, j.cfg, j.local)
		if ctx.Err() != nil {
			return // superseded or stopping: the outcome no longer matters
		}
		now := p.o.Clock.Now()
		if err == nil {
			p.update(tunnel, gen, func(st *provision) {
				s := &st.stats
				s.State, s.HTTPStatus, s.Body, s.LastError = StateDone, resp.status, resp.body, ""
				s.Successes++
				s.FailedInARow, s.SucceededFor, s.SucceededAt = 0, j.local, now
				st.cancel()
				st.cancel, st.done = nil, &j
			})
			log.Info("provisioning request succeeded", "status", resp.status, "body", resp.body, "attempts", n)
			return
		}
		delay := p.o.Retry.Delay(n)
		p.update(tunnel, gen, func(st *provision) {
			s := &st.stats
			s.State, s.HTTPStatus, s.Body, s.LastError = StateRetrying, resp.status, resp.body, err.Error()
			s.Failures++
			s.FailedInARow, s.NextAttempt = n, now.Add(delay)
		})
		log.Warn("provisioning request failed", "err", err, "failed_in_a_row", n, "retry_in", delay)
		t := p.o.Clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// update applies f to the tunnel's state if the worker gen is still in
// charge of it.
func (p *Provisioner) update(tunnel string, gen uint64, f func(*provision)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.tunnels[tunnel]
	if st == nil || st.gen != gen {
		return false
	}
	f(st)
	return true
}

// Stats returns each tunnel's provisioning, by tunnel name.
func (p *Provisioner) Stats() []ProvisionStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ProvisionStats
	for _, name := range slices.Sorted(maps.Keys(p.tunnels)) {
		out = append(out, p.tunnels[name].stats)
	}
	return out
}
