// Package tasktest runs a control-plane task (a Run(ctx) error method, the
// shape every task under the daemon's supervisor has) inside a test.
package tasktest

import (
	"context"
	"sync"
	"testing"
)

// Start runs run in a goroutine until the returned stop is called, or the
// test ends. stop cancels run's context, waits for it to return and reports
// an error it returned; calls after the first do nothing.
func Start(t testing.TB, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
