package daemon

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/loader/vethnapi"
)

// Issue 13 item 8: the daemon asks for a pass when a configured port's
// ndo-xmit (a veth peer's NAPI) changes, once per change, and not for other
// interfaces, repeats or removed devices.
func TestTxWatcher(t *testing.T) {
	var (
		mu    sync.Mutex
		whys  []string
		send  func(vethnapi.Change)
		ready = make(chan struct{})
	)
	names := map[int]string{2: "wan0", 3: "lan0", 9: "docker0"}
	w := &txWatcher{
		log:   slog.New(slog.DiscardHandler),
		retry: func(why string) { mu.Lock(); whys = append(whys, why); mu.Unlock() },
		watch: func(ctx context.Context, changed func(vethnapi.Change)) error {
			send = changed
			close(ready)
			<-ctx.Done()
			return nil
		},
		name: func(i int) (string, bool) { n, ok := names[i]; return n, ok },
	}
	w.SetNames([]string{"wan0", "lan0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-ready
	const base = 0b100011 // basic, redirect, rx-sg
	for _, c := range []vethnapi.Change{
		{Ifindex: 3, XDPFeatures: base | vethnapi.NDOXmit, Known: true}, // first word of lan0: a pass
		{Ifindex: 3, XDPFeatures: base | vethnapi.NDOXmit, Known: true}, // the same again: nothing
		{Ifindex: 9, XDPFeatures: base, Known: true},                    // not a port of the config
		{Ifindex: 3, XDPFeatures: base, Known: true},                    // the peer lost NAPI
		{Ifindex: 2, Known: false},                                      // removed: nothing
		{Ifindex: 3, XDPFeatures: base | vethnapi.NDOXmit, Known: true}, // and got it back
	} {
		send(c)
	}
	want := []string{
		"lan0 takes frames from XDP (a veth whose peer has GRO or an XDP program)",
		"lan0 takes no frames from XDP (a veth whose peer has neither GRO nor an XDP program)",
		"lan0 takes frames from XDP (a veth whose peer has GRO or an XDP program)",
	}
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
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// On a kernel without xdp-features announcements the task waits quietly
// instead of failing (and being restarted over and over).
func TestTxWatcherOldKernel(t *testing.T) {
	w := &txWatcher{
		log:   slog.New(slog.DiscardHandler),
		retry: func(string) { t.Error("pass asked for") },
		watch: func(context.Context, func(vethnapi.Change)) error { return vethnapi.ErrNoXDPFeatures },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
