package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"syscall"
)

// StopSignal is how the signal task ends the daemon: as an error, so the
// errgroup cancels every other task, and Run reports it as a clean stop.
type StopSignal struct{ Signal os.Signal }

func (s StopSignal) Error() string { return fmt.Sprintf("stopped by %s", s.Signal) }

// Signals turns signals into actions: SIGHUP reloads, SIGTERM and SIGINT
// stop. The channel is injected so tests can send signals without
// signalling the test process.
type Signals struct {
	C      <-chan os.Signal
	Reload func(ctx context.Context)
	Log    *slog.Logger
}

// Run handles signals until ctx ends or a stop signal arrives.
func (s *Signals) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case sig := <-s.C:
			switch sig {
			case syscall.SIGHUP:
				s.Log.Info("reloading the config", "signal", sig.String())
				s.Reload(ctx)
			case syscall.SIGTERM, syscall.SIGINT:
				s.Log.Info("stopping", "signal", sig.String())
				return StopSignal{Signal: sig}
			default:
				s.Log.Warn("ignoring signal", "signal", sig.String())
			}
		}
	}
}
