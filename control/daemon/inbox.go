package daemon

import (
	"context"
	"sync"

	"github.com/xdprouter/xdprouter/control"
)

// inbox carries what tasks publish to the reconciler. A task never waits
// for a reconcile pass (the pass may itself be waiting for that task, e.g.
// to stop it on a reload), and values superseded before the reconciler
// got to them are dropped: each key (the RA snapshot, the PD binding, one
// remote's name) keeps only its newest value.
type inbox struct {
	mu      sync.Mutex
	pending map[string]control.InputChange
	order   []string
	wake    chan struct{}
}

func newInbox() *inbox {
	return &inbox{pending: map[string]control.InputChange{}, wake: make(chan struct{}, 1)}
}

// put records c as key's newest value.
func (b *inbox) put(key string, c control.InputChange) {
	b.mu.Lock()
	if _, ok := b.pending[key]; !ok {
		b.order = append(b.order, key)
	}
	b.pending[key] = c
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// take returns the pending changes in the order their keys first arrived.
func (b *inbox) take() []control.InputChange {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]control.InputChange, 0, len(b.order))
	for _, k := range b.order {
		out = append(out, b.pending[k])
	}
	b.order = b.order[:0]
	clear(b.pending)
	return out
}

// Run hands the changes to update until ctx ends.
func (b *inbox) Run(ctx context.Context, update func(context.Context, control.InputChange) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.wake:
		}
		for _, c := range b.take() {
			if err := update(ctx, c); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}
