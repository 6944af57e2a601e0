package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/xdprouter/xdprouter/control/config"
)

// ReconcileStats is what the status API and the metrics report about the
// reconciler.
type ReconcileStats struct {
	Generation    uint64        `json:"config_generation"`
	Passes        uint64        `json:"reconciles"`
	Errors        uint64        `json:"reconcile_errors"`
	LastDuration  time.Duration `json:"last_duration_ns"`
	LastPass      time.Time     `json:"last_pass"`
	LastError     string        `json:"last_error,omitempty"`
	LastErrorTime time.Time     `json:"last_error_time,omitzero"`
	// Refused counts learned values that were not taken in, by reason
	// (the Refuse* constants): a tunnel remote's DNS answer naming the
	// router itself or a LAN host, a delegated prefix that is not global
	// unicast or would put the WAN /64 on a LAN. What was in force stays.
	Refused         map[string]uint64 `json:"refused,omitempty"`
	LastRefused     string            `json:"last_refused,omitempty"`
	LastRefusedTime time.Time         `json:"last_refused_time,omitzero"`
	// Waiting is what the last pass left waiting for an input or for an
	// interface ("waiting for interface lan2"), as in its "waiting" steps.
	Waiting []string `json:"waiting,omitempty"`
	// WaitingInterfaces are the interfaces it waited for: named in the
	// config, not there (yet).
	WaitingInterfaces []string `json:"waiting_interfaces,omitempty"`
	// Panics counts passes that panicked (recovered: a failed pass, the
	// previous state in force).
	Panics uint64 `json:"reconcile_panics,omitempty"`
}

// System opens the OS boundaries for one pass and returns them with the
// function that releases them. The daemon opens the pinned state per pass
// rather than holding it: the loader's handle holds a lock on the bpffs
// directory that would block `xdprouter attach` for the daemon's lifetime.
type System func() (Deps, func() error, error)

// Reconciler turns Inputs into data-plane and kernel state, one pass per
// change, through the same per-feature steps as `xdprouter apply`.
type Reconciler struct {
	open    System
	log     *slog.Logger
	changes chan InputChange
	hooks   Hooks
	// steps is one pass's work, ApplyInputs; tests replace it.
	steps func(Inputs, Plan, Deps) ([]Step, error)

	// adopted is the config a previous daemon left in force (Adopt).
	adopted *config.Config

	mu  sync.Mutex
	cur Inputs
	// plan is the Plan put in force with cur: what the kernel holds. The
	// next pass removes what it had and the new one has not; computing
	// it again from cur would not do, since a prefix that became
	// deprecated meanwhile changes the choice.
	plan  Plan
	stats ReconcileStats
}

// Hooks tell the daemon about the reconciler's progress; either may be nil.
type Hooks struct {
	// Ready is called once the initial config is in force.
	Ready func()
	// Pass is told the outcome of every pass (the daemon sends it to
	// systemd as STATUS=).
	Pass func(ReconcileStats)
	// InForce is told the Inputs and their Plan each time a pass puts
	// them in force: the daemon hands the LAN adverts to the RA sender,
	// the learned DNS servers to the resolver, tunnels' local addresses
	// to the provisioner.
	InForce func(Inputs, Plan)
}

// NewReconciler returns a reconciler that will start from cfg.
func NewReconciler(cfg *config.Config, open System, log *slog.Logger, hooks Hooks) *Reconciler {
	if hooks.Ready == nil {
		hooks.Ready = func() {}
	}
	if hooks.Pass == nil {
		hooks.Pass = func(ReconcileStats) {}
	}
	return &Reconciler{
		open:    open,
		log:     log,
		changes: make(chan InputChange),
		hooks:   hooks,
		steps:   ApplyInputs,
		cur:     Inputs{Config: cfg},
	}
}

// Adopt tells the reconciler which config a previous daemon left in force
// on this data plane, so that the first pass also removes what only that
// config had (an interface the new config no longer names), as a reload
// would. Call it before Run.
func (r *Reconciler) Adopt(prev *config.Config) { r.adopted = prev }

// AdoptLearned starts the reconciler from what a previous daemon had
// learned (see the daemon's learned record), so that its first pass keeps
// what depends on it instead of removing it until the tasks learn it
// again. Call it before Run.
func (r *Reconciler) AdoptLearned(l Learned) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur.Learned = l
}

// Update hands a change to the reconciler; it returns once Run took it,
// or with ctx's error.
func (r *Reconciler) Update(ctx context.Context, c InputChange) error {
	select {
	case r.changes <- c:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("reconciler did not take %s: %w", c, ctx.Err())
	}
}

// Run applies the initial config, then every change until ctx ends. A
// failure of the first pass is fatal (there is no previous state to keep);
// later failures are reported and the previous state stays in force.
func (r *Reconciler) Run(ctx context.Context) error {
	first := r.Current()
	first.Generation = 1
	r.mu.Lock()
	// In force before the first pass: what a previous daemon left, if it
	// said, else nothing of ours.
	r.cur = Inputs{Config: r.adopted, Learned: first.Learned}
	r.plan = NewPlan(r.cur, time.Now())
	r.mu.Unlock()
	if err := r.safePass(first, "initial config"); r.Current().Generation != 1 {
		return fmt.Errorf("apply the initial config: %w", err)
	}
	r.hooks.Ready()
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-r.changes:
			var err error
			if c2, ok := r.screen(c); ok {
				err = r.safePass(r.Current().with(c2), c2.String())
			} else {
				err = fmt.Errorf("refused: %s", r.Stats().LastRefused)
			}
			if c.Result != nil {
				c.Result <- err
			}
		}
	}
}

// screen checks a learned change (see screen) and records what it
// refused; ok is false when nothing of it is left and no pass is due.
func (r *Reconciler) screen(c InputChange) (_ InputChange, ok bool) {
	now := time.Now()
	c2, bad, refused := screen(r.Current(), c, now)
	if len(bad) == 0 {
		return c2, true
	}
	msg := joinRefusals(bad)
	r.mu.Lock()
	if r.stats.Refused == nil {
		r.stats.Refused = map[string]uint64{}
	}
	for _, b := range bad {
		r.stats.Refused[b.reason]++
	}
	r.stats.LastRefused, r.stats.LastRefusedTime = msg, now
	r.mu.Unlock()
	if refused {
		r.log.Warn("learned input refused; what was in force stays", "change", c.String(), "why", msg)
		return c, false
	}
	r.log.Warn("learned input partly refused; the rest is used", "change", c2.String(), "refused", msg)
	return c2, true
}

// Current returns the Inputs in force.
func (r *Reconciler) Current() Inputs {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := r.cur
	in.Learned = r.cur.Learned.clone()
	return in
}

// Stats returns the reconciler's counters.
func (r *Reconciler) Stats() ReconcileStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	st.Refused = maps.Clone(st.Refused)
	st.Waiting = slices.Clone(st.Waiting)
	st.WaitingInterfaces = slices.Clone(st.WaitingInterfaces)
	return st
}

// pass makes next the state in force, or leaves the current one.
func (r *Reconciler) pass(next Inputs, why string) error {
	start := time.Now()
	prev := r.Current()
	r.mu.Lock()
	prevPlan := r.plan
	r.mu.Unlock()
	next.Learned.WANPrefix = prevPlan.WANPrefix.Prefix
	next.Learned.Retired = retire(prevPlan, NewPlan(next, start), start)
	nextPlan := NewPlan(next, start)
	steps, inForce, err := r.apply(prev, prevPlan, next, nextPlan)
	took := time.Since(start)

	r.mu.Lock()
	r.stats.Passes++
	r.stats.LastDuration = took
	r.stats.LastPass = start
	if err != nil {
		r.stats.Errors++
		r.stats.LastError = fmt.Sprintf("%s: %v", why, err)
		r.stats.LastErrorTime = start
	}
	if inForce {
		r.cur, r.plan = next, nextPlan
		r.stats.Generation = next.Generation
		r.stats.Waiting, r.stats.WaitingInterfaces = nil, nil
		for _, s := range steps {
			if s.Result == "waiting" {
				r.stats.Waiting = append(r.stats.Waiting, s.What)
				if s.Interface != "" {
					r.stats.WaitingInterfaces = append(r.stats.WaitingInterfaces, s.Interface)
				}
			}
		}
	}
	st := r.stats
	r.mu.Unlock()

	changed := 0
	for _, s := range steps {
		if s.Result != "unchanged" && s.Result != "present" && s.Result != "waiting" {
			changed++
		}
		// Unchanged steps too: after a restart they are the proof that
		// the pinned state was adopted, not rebuilt.
		r.log.Info("reconcile step", "what", s.What, "result", s.Result)
	}
	switch {
	case !inForce:
		r.log.Error("reconcile failed; the previous state stays in force",
			"change", why, "generation", st.Generation, "duration", took, "error", err)
	case err != nil:
		r.log.Error("reconciled, but removing what only the previous state had failed",
			"change", why, "generation", st.Generation, "duration", took, "error", err)
	default:
		r.log.Info("reconciled", "change", why, "generation", st.Generation,
			"steps", len(steps), "changed", changed, "duration", took)
	}
	r.hooks.Pass(st)
	return err
}

// apply runs one pass from prev to next and says whether next is in force.
// Apply undoes what it added when a step fails; what it changed in place
// (an interface's role) is put back by applying prev again. What prev had
// and next has not is removed only after next is fully in force, so a
// failed pass never loses it; if that removal fails, next is in force all
// the same, and the error names what was left behind.
func (r *Reconciler) apply(prev Inputs, prevPlan Plan, next Inputs, nextPlan Plan) ([]Step, bool, error) {
	deps, closeDeps, err := r.open()
	if err != nil {
		return nil, false, fmt.Errorf("open the data plane: %w", err)
	}
	// A panic (see safePass) releases the data plane all the same: the
	// next pass must be able to open it.
	defer func() {
		if p := recover(); p != nil {
			_ = closeDeps()
			panic(p)
		}
	}()
	steps, err := r.steps(next, nextPlan, deps)
	if err != nil {
		if prev.Config != nil {
			if _, rerr := r.steps(prev, prevPlan, deps); rerr != nil {
				err = fmt.Errorf("%w (and restoring the previous state failed: %v)", err, rerr)
			}
		}
		// Addresses are only ever added by a pass: take back those the
		// failed one added.
		if deps.Net6 != nil {
			if _, perr := pruneNet6(nextPlan, prevPlan, deps.Net6); perr != nil {
				err = fmt.Errorf("%w (and removing the addresses it added failed: %v)", err, perr)
			}
		}
		return steps, false, errors.Join(err, closeDeps())
	}
	pruned, err := Prune(prev.Config, next.Config, deps)
	steps = append(steps, pruned...)
	if deps.Net6 != nil {
		s, nerr := pruneNet6(prevPlan, nextPlan, deps.Net6)
		steps = append(steps, s...)
		err = errors.Join(err, nerr)
	}
	if r.hooks.InForce != nil {
		r.hooks.InForce(next, nextPlan)
	}
	return steps, true, errors.Join(err, closeDeps())
}

// Teardown removes what the Inputs in force put on the system, for
// `run --detach-on-exit`.
func (r *Reconciler) Teardown() error {
	in := r.Current()
	if in.Config == nil {
		return nil
	}
	deps, closeDeps, err := r.open()
	if err != nil {
		return fmt.Errorf("open the data plane: %w", err)
	}
	_, err = Prune(in.Config, nil, deps)
	if deps.Net6 != nil {
		r.mu.Lock()
		plan := r.plan
		r.mu.Unlock()
		err = errors.Join(err, teardownNet6(plan, deps.Net6))
	}
	return errors.Join(err, closeDeps())
}
