// Package daemon is `xdprouter run`: the control-plane tasks (reconciler,
// signal handler, status API, optional metrics server), each a
// `Run(ctx) error`, under one errgroup. When one fails or a stop signal
// arrives, the others are cancelled.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/api"
	"github.com/xdprouter/xdprouter/control/metrics"
	"github.com/xdprouter/xdprouter/loader"
	"golang.org/x/sync/errgroup"
)

// Options are the daemon's settings and its OS boundaries.
type Options struct {
	ConfigFile string
	BPFFS      string
	Socket     string // status API socket
	// StateFile records the config in force, so that the next daemon
	// (after a crash, kill -9 or an upgrade with a new config) knows what
	// is on the data plane and removes what only the old config had. ""
	// disables it.
	StateFile     string
	MetricsListen string // "" disables the metrics server
	// DetachOnExit removes what the config put on the system when the
	// daemon stops; by default links and maps stay pinned and the data
	// plane keeps forwarding without the daemon.
	DetachOnExit bool

	Signals <-chan os.Signal
	System  control.System // opens the data plane for a reconcile pass
	// Pinned opens the pinned state read-only for the status API and the
	// metrics; nil means the loader's, in BPFFS.
	Pinned func() (Pinned, error)
	// Firewall reads xdprouter's nftables state for the status API
	// (control.ReadFirewall); nil leaves it out.
	Firewall func() *control.FirewallStatus
	Notify   Notifier
	Log      *slog.Logger
	// Learning configures the tasks that learn prefixes, routers and
	// DNS servers from the network.
	Learning LearningOptions
	// Sysctls, when set, are the kernel parameters the daemon sets for
	// forwarding and its ports (see sysctlKeeper) and restores with
	// DetachOnExit; nil leaves them alone (unit tests).
	Sysctls Sysctls
}

// Run runs the daemon until a stop signal, ctx's end or a task's failure.
// A stop signal is a clean exit (nil).
func Run(ctx context.Context, o Options) error {
	log := o.Log
	cfg, raw, err := loadConfig(o.ConfigFile)
	if err != nil {
		return err
	}
	// Listen before touching the data plane: a second daemon must fail
	// here, not after reconciling over the first one's state.
	ln, err := api.Listen(o.Socket)
	if err != nil {
		return err
	}
	var sysk *sysctlKeeper
	if o.Sysctls != nil {
		sysk = newSysctlKeeper(o.Sysctls, o.StateFile, log)
		if err := sysk.ensure(cfg); err != nil {
			ln.Close()
			return err
		}
	}
	var rec *control.Reconciler
	o.Learning.FinalRA = o.DetachOnExit
	learn := newLearning(o.Learning, log)
	recorder := &learnedRecorder{o: o}
	rec = control.NewReconciler(cfg, o.System, log, control.Hooks{
		InForce: func(in control.Inputs, p control.Plan) {
			if sysk != nil {
				if err := sysk.ensure(in.Config); err != nil {
					log.Error("sysctls", "error", err)
				}
			}
			recorder.save(in.Learned)
			learn.inForce(in, p)
		},
		Ready: func() {
			saveState(o, raw)
			o.Notify.Notify("READY=1\nSTATUS=" + statusLine(rec.Stats()))
			log.Info("ready", "config", o.ConfigFile, "generation", rec.Stats().Generation, "pid", os.Getpid())
		},
		Pass: func(st control.ReconcileStats) { o.Notify.Notify("STATUS=" + statusLine(st)) },
	})
	learn.links.waiting = func() []string { return rec.Stats().WaitingInterfaces }
	if prev := loadState(o); prev != nil {
		rec.Adopt(prev)
		rec.AdoptLearned(loadLearned(o))
	}
	pinned := o.Pinned
	if pinned == nil {
		pinned = func() (Pinned, error) { return loader.OpenPinned(o.BPFFS) }
	}
	b := &backend{bpffs: o.BPFFS, pinned: pinned, configFile: o.ConfigFile, started: time.Now(), rec: rec, tasks: learn.stats, firewall: o.Firewall}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rec.Run(gctx) })
	g.Go(func() error { return learn.sup.Run(gctx) })
	g.Go(func() error { return learn.inbox.Run(gctx, rec.Update) })
	sig := &Signals{C: o.Signals, Log: log, Reload: func(ctx context.Context) {
		o.Notify.Notify("RELOADING=1")
		raw, inForce, err := reload(ctx, o, rec)
		if inForce {
			saveState(o, raw)
		}
		b.setReloadError(err)
		st := statusLine(rec.Stats())
		if err != nil {
			st = "reload rejected, previous config in force: " + err.Error() + "; " + st
		}
		o.Notify.Notify("READY=1\nSTATUS=" + st)
	}}
	g.Go(func() error { return sig.Run(gctx) })
	srv := &api.Server{Path: o.Socket, Backend: b, Log: log}
	g.Go(func() error { return srv.Serve(gctx, ln) })
	if o.MetricsListen != "" {
		ms := &metrics.Server{Addr: o.MetricsListen, Source: b, Log: log}
		g.Go(func() error { return ms.Run(gctx) })
	}
	err = g.Wait()
	o.Notify.Notify("STOPPING=1")
	if o.Learning.ReleaseOnExit {
		// The client released the prefix on its way out, after the
		// reconciler had stopped: the next daemon must not start from it.
		l := rec.Current().Learned
		l.PD = nil
		recorder.save(l)
	}
	if stop := (StopSignal{}); errors.As(err, &stop) {
		err = nil
	}
	if o.DetachOnExit {
		if terr := rec.Teardown(); terr != nil {
			err = errors.Join(err, fmt.Errorf("detach on exit: %w", terr))
		} else {
			removeState(o)
			removeLearned(o)
			if sysk != nil {
				if serr := sysk.restore(); serr != nil {
					err = errors.Join(err, fmt.Errorf("detach on exit: %w", serr))
				}
			}
			log.Info("detached: removed what the config put on the system")
		}
	} else if err == nil {
		log.Info("stopped; links and maps stay pinned, the data plane keeps forwarding", "bpffs", o.BPFFS)
	}
	return err
}

// reload reads the config file again and hands it to the reconciler. An
// invalid file is rejected with the validator's field-named error and the
// running config stays in force; so does the old config when applying the
// new one fails (the reconciler logs that and counts it). It returns the
// file's bytes and whether they are in force now.
func reload(ctx context.Context, o Options, rec *control.Reconciler) ([]byte, bool, error) {
	cfg, raw, err := loadConfig(o.ConfigFile)
	if err != nil {
		o.Log.Error("reload rejected; the running config stays in force",
			"generation", rec.Stats().Generation, "error", err)
		return nil, false, err
	}
	gen := rec.Stats().Generation
	res := make(chan error, 1)
	if err := rec.Update(ctx, control.InputChange{Config: cfg, Result: res}); err != nil {
		return nil, false, err
	}
	select {
	case err := <-res:
		inForce := rec.Stats().Generation > gen
		if err != nil && inForce {
			// In force, only the cleanup of the old one failed: that is
			// the reconciler's error to report, not a rejected reload.
			err = nil
		}
		return raw, inForce, err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

func statusLine(st control.ReconcileStats) string {
	s := fmt.Sprintf("config generation %d, %d reconciles, %d errors", st.Generation, st.Passes, st.Errors)
	if st.LastError != "" {
		s += "; last error: " + st.LastError
	}
	return s
}
