package daemon

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// panicTask panics in its first panics runs, then runs until stopped.
type panicTask struct {
	mu     sync.Mutex
	runs   int
	panics int
}

func (p *panicTask) Run(ctx context.Context) error {
	p.mu.Lock()
	p.runs++
	boom := p.runs <= p.panics
	p.mu.Unlock()
	if boom {
		var m map[string]int
		m["x"]++ // a nil map write: a real runtime panic
	}
	<-ctx.Done()
	return nil
}

func (p *panicTask) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runs
}

// Issue 13 item 14: a task that panics is recovered, logged, counted and
// started again after the backoff; the daemon and the other tasks go on.
func TestSupervisorRecoversPanics(t *testing.T) {
	s := newSupervisor(quietLog)
	s.minBackoff, s.maxBackoff = time.Millisecond, 10*time.Millisecond
	bad := &panicTask{panics: 3}
	good := &recTask{name: "lan-ra"}
	s.Sync([]taskSpec{
		{name: "wan-ra", key: "wan0", new: func() task { return bad }},
		{name: "lan-ra", key: "lan-ra", new: func() task { return good }},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	eventually(t, "the panicking task to run a fourth time", func() bool { return bad.count() == 4 })
	if n := s.Panics()["wan-ra"]; n != 3 {
		t.Errorf("panics %v, want wan-ra: 3", s.Panics())
	}
	if e := s.Errors()["wan-ra"]; !strings.HasPrefix(e, "panic: ") || !strings.Contains(e, "nil map") {
		t.Errorf("last error %q, want the panic", e)
	}
	if runs, stopped := good.counts(); runs != 1 || stopped != 0 {
		t.Errorf("the other task ran %d times, stopped %d: it must not notice", runs, stopped)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
