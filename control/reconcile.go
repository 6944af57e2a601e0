package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"time"

	"github.com/xdprouter/xdprouter/control/config"
)

// Inputs is everything the desired state is computed from: the config in
// force and what control-plane tasks have learned (a delegated prefix, a
// tunnel's local address). The reconciler owns the current Inputs; tasks
// change them only by sending an InputChange.
type Inputs struct {
	Config *config.Config
	// Generation counts the configs put in force by this process, 1 for
	// the one it started with; a rejected config does not count.
	Generation uint64
	// Learned holds prefixes that tasks report, by name (e.g. "wan-pd").
	Learned map[string]netip.Prefix
}

// InputChange is one change to the Inputs. Exactly one of Config or Learn
// is set.
type InputChange struct {
	Config *config.Config // a new config (from a reload)
	Learn  string         // name of a learned prefix that changed...
	Prefix netip.Prefix   // ...and its new value; invalid withdraws it
	// Result, when set, receives the outcome of the pass that applied
	// this change (nil when it is in force).
	Result chan<- error
}

func (c InputChange) String() string {
	if c.Config != nil {
		return "new config"
	}
	if !c.Prefix.IsValid() {
		return fmt.Sprintf("learned %s withdrawn", c.Learn)
	}
	return fmt.Sprintf("learned %s = %s", c.Learn, c.Prefix)
}

func (in Inputs) with(c InputChange) Inputs {
	out := in
	out.Learned = maps.Clone(in.Learned)
	if out.Learned == nil {
		out.Learned = map[string]netip.Prefix{}
	}
	switch {
	case c.Config != nil:
		out.Config = c.Config
		out.Generation++
	case c.Prefix.IsValid():
		out.Learned[c.Learn] = c.Prefix
	default:
		delete(out.Learned, c.Learn)
	}
	return out
}

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
	steps func(Inputs, Deps) ([]Step, error)

	// adopted is the config a previous daemon left in force (Adopt).
	adopted *config.Config

	mu    sync.Mutex
	cur   Inputs
	stats ReconcileStats
}

// Hooks tell the daemon about the reconciler's progress; either may be nil.
type Hooks struct {
	// Ready is called once the initial config is in force.
	Ready func()
	// Pass is told the outcome of every pass (the daemon sends it to
	// systemd as STATUS=).
	Pass func(ReconcileStats)
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
		cur:     Inputs{Config: cfg, Learned: map[string]netip.Prefix{}},
	}
}

// Adopt tells the reconciler which config a previous daemon left in force
// on this data plane, so that the first pass also removes what only that
// config had (an interface the new config no longer names), as a reload
// would. Call it before Run.
func (r *Reconciler) Adopt(prev *config.Config) { r.adopted = prev }

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
	r.mu.Unlock()
	if err := r.pass(first, "initial config"); r.Current().Generation != 1 {
		return fmt.Errorf("apply the initial config: %w", err)
	}
	r.hooks.Ready()
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-r.changes:
			err := r.pass(r.Current().with(c), c.String())
			if c.Result != nil {
				c.Result <- err
			}
		}
	}
}

// Current returns the Inputs in force.
func (r *Reconciler) Current() Inputs {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := r.cur
	in.Learned = maps.Clone(r.cur.Learned)
	return in
}

// Stats returns the reconciler's counters.
func (r *Reconciler) Stats() ReconcileStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// pass makes next the state in force, or leaves the current one.
func (r *Reconciler) pass(next Inputs, why string) error {
	start := time.Now()
	prev := r.Current()
	steps, inForce, err := r.apply(prev, next)
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
		r.cur = next
		r.stats.Generation = next.Generation
	}
	st := r.stats
	r.mu.Unlock()

	changed := 0
	for _, s := range steps {
		if s.Result != "unchanged" && s.Result != "present" {
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
func (r *Reconciler) apply(prev, next Inputs) ([]Step, bool, error) {
	deps, closeDeps, err := r.open()
	if err != nil {
		return nil, false, fmt.Errorf("open the data plane: %w", err)
	}
	steps, err := r.steps(next, deps)
	if err != nil {
		if prev.Config != nil {
			if _, rerr := r.steps(prev, deps); rerr != nil {
				err = fmt.Errorf("%w (and restoring the previous state failed: %v)", err, rerr)
			}
		}
		return steps, false, errors.Join(err, closeDeps())
	}
	pruned, err := Prune(prev.Config, next.Config, deps)
	steps = append(steps, pruned...)
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
	return errors.Join(err, closeDeps())
}
