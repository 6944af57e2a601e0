package daemon

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// Issue 13 item 7: the daemon asks for a pass when an interface the
// config names appears, goes or is renamed, and not for anything else
// (flag changes, XDP attached by the pass itself, other interfaces).
func TestLinkWatcher(t *testing.T) {
	var (
		mu    sync.Mutex
		whys  []string
		ch    chan<- LinkEvent
		ready = make(chan struct{})
	)
	w := &linkWatcher{
		log:     slog.New(slog.DiscardHandler),
		retry:   func(why string) { mu.Lock(); whys = append(whys, why); mu.Unlock() },
		waiting: func() []string { return []string{"lan1"} },
		subscribe: func(ctx context.Context, c chan<- LinkEvent) error {
			ch = c
			close(ready)
			<-ctx.Done()
			return nil
		},
		// lan1 appeared between the last pass (which waited for it) and
		// the watcher's start.
		list: func() ([]LinkEvent, error) {
			<-ready
			return []LinkEvent{{Index: 1, Name: "lo"}, {Index: 2, Name: "wan0"}, {Index: 3, Name: "lan1"}}, nil
		},
	}
	w.SetNames([]string{"wan0", "lan1", "lan2"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-ready
	for _, ev := range []LinkEvent{
		{Index: 2, Name: "wan0"},    // a flag change: nothing
		{Index: 9, Name: "docker0"}, // not ours
		{Index: 10, Name: "lan2"},   // appeared
		{Index: 10, Name: "lan2"},   // XDP attached to it: nothing
		{Index: 11, Name: "eth5"},   // a USB NIC, then renamed to what the config names
		{Index: 11, Name: "lan3"},
		{Index: 10, Name: "guest"}, // lan2 renamed away
		{Index: 3, Gone: true},     // lan1 unplugged
		{Index: 9, Gone: true},
	} {
		ch <- ev
	}
	want := []string{"interface lan1 appeared", "interface lan2 appeared", "interface lan2 renamed to guest", "interface lan1 went away"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(whys)
		mu.Unlock()
		if slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("passes asked for %q, want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// lan3 is not in the config: renaming eth5 to it asked for nothing.
	w.SetNames([]string{"wan0", "lan1", "lan2", "lan3"})
	ch <- LinkEvent{Index: 11, Gone: true}
	deadline = time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(whys)
		mu.Unlock()
		if n == len(want)+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lan3 going asked for no pass: %q", whys)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
