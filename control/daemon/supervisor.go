package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// task is a control-plane task that learns from the network (RA tracker,
// DHCPv6-PD client, LAN RA sender, resolver, provisioner).
type task interface {
	Run(ctx context.Context) error
}

// taskSpec names a task and the config it was made from: a reload that
// changes key restarts the task with the new settings; one that keeps it
// leaves the running task alone (a DHCPv6 binding is not dropped because
// an unrelated key changed).
type taskSpec struct {
	name string
	key  string
	new  func() task
}

// supervisor runs the tasks the config asks for. A task that fails (its
// interface not there yet, a socket error) is logged and started again
// after a growing delay: the router keeps forwarding with what it has,
// and status shows the error, rather than the whole daemon stopping. A
// task that panics (a parser meeting input nobody foresaw) is treated the
// same way: the panic is recovered, logged with its stack, counted, and
// the task started again after the delay.
type supervisor struct {
	log *slog.Logger
	// minBackoff and maxBackoff bound the restart delay.
	minBackoff, maxBackoff time.Duration

	mu      sync.Mutex
	ctx     context.Context
	running map[string]*runningTask
	wg      sync.WaitGroup
}

type runningTask struct {
	spec   taskSpec
	task   task
	cancel context.CancelFunc
	done   chan struct{}
	// lastErr has its own lock: the task's goroutine sets it while Sync
	// may hold the supervisor's, waiting for that goroutine to end.
	mu      sync.Mutex
	lastErr string
	panics  uint64
}

func newSupervisor(log *slog.Logger) *supervisor {
	return &supervisor{log: log, minBackoff: time.Second, maxBackoff: time.Minute, running: map[string]*runningTask{}}
}

// Run keeps the tasks until ctx ends, then stops them and waits for them.
func (s *supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	for _, rt := range s.running {
		s.start(rt)
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.wg.Wait()
	return nil
}

// Sync makes the running tasks those of specs: new ones start, ones whose
// key changed restart, ones no longer wanted stop (and are waited for, so
// a task's final act, such as a DHCPv6 Release or an RA with lifetime 0,
// happens before its replacement starts).
func (s *supervisor) Sync(specs []taskSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]taskSpec{}
	for _, sp := range specs {
		want[sp.name] = sp
	}
	for name, rt := range s.running {
		if sp, ok := want[name]; ok && sp.key == rt.spec.key {
			continue
		}
		if rt.cancel != nil {
			rt.cancel()
			<-rt.done
		}
		delete(s.running, name)
		s.log.Info("task stopped", "task", name)
	}
	for _, sp := range specs {
		if _, ok := s.running[sp.name]; ok {
			continue
		}
		rt := &runningTask{spec: sp, task: sp.new()}
		s.running[sp.name] = rt
		if s.ctx != nil {
			s.start(rt)
		}
	}
}

// Task returns the running task called name, or nil.
func (s *supervisor) Task(name string) task {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt, ok := s.running[name]; ok {
		return rt.task
	}
	return nil
}

// Errors returns the last error of each task that failed since it started.
func (s *supervisor) Errors() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for name, rt := range s.running {
		rt.mu.Lock()
		if rt.lastErr != "" {
			out[name] = rt.lastErr
		}
		rt.mu.Unlock()
	}
	return out
}

// Panics returns how many times each task panicked since it started.
func (s *supervisor) Panics() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]uint64{}
	for name, rt := range s.running {
		rt.mu.Lock()
		if rt.panics > 0 {
			out[name] = rt.panics
		}
		rt.mu.Unlock()
	}
	return out
}

// runOnce runs the task once, turning a panic into an error: one task's
// bug must not take down the daemon and every other task with it.
func (s *supervisor) runOnce(ctx context.Context, rt *runningTask) (err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		rt.mu.Lock()
		rt.panics++
		rt.mu.Unlock()
		s.log.Error("task panicked; recovered", "task", rt.spec.name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		err = fmt.Errorf("panic: %v", p)
	}()
	return rt.task.Run(ctx)
}

func (s *supervisor) start(rt *runningTask) {
	ctx, cancel := context.WithCancel(s.ctx)
	rt.cancel, rt.done = cancel, make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(rt.done)
		backoff := s.minBackoff
		for {
			s.log.Info("task started", "task", rt.spec.name)
			start := time.Now()
			err := s.runOnce(ctx, rt)
			if ctx.Err() != nil {
				return
			}
			if time.Since(start) > s.maxBackoff {
				backoff = s.minBackoff // it ran fine for a while
			}
			msg := "exited without an error"
			if err != nil {
				msg = err.Error()
			}
			rt.mu.Lock()
			rt.lastErr = msg
			rt.mu.Unlock()
			s.log.Error("task failed; starting it again", "task", rt.spec.name, "error", msg, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, s.maxBackoff)
		}
	}()
}
