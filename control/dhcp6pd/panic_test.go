package dhcp6pd

import (
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
)

// A panic while handling a message (a parser bug) leaves the client
// unlocked and its socket closed, so the supervisor can start it again.
func TestPanicLeavesClientUsable(t *testing.T) {
	s := newServer(1, pfx)
	r := newRun(t, t.TempDir(), Config{}, s)
	panicked := false
	pub := r.c.cfg.Publish
	r.c.cfg.Publish = func(d learned.Delegation) {
		if !panicked {
			panicked = true
			panic("bug")
		}
		pub(d)
	}
	func() {
		defer func() {
			if p := recover(); p == nil {
				t.Error("no panic")
			}
		}()
		r.until(100 * time.Second)
	}()
	done := make(chan Stats, 1)
	go func() { done <- r.c.Stats() }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Stats blocks after a panic: the client's lock was left held")
	}
}
