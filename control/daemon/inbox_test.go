package daemon

import (
	"context"
	"net/netip"
	"testing"

	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/learned"
)

func TestInboxKeepsTheNewestPerKey(t *testing.T) {
	b := newInbox()
	ra := func(mtu int) control.InputChange { return control.InputChange{RA: &learned.RA{MTU: mtu}} }
	b.put("ra", ra(1280))
	b.put("remote gw", control.InputChange{Remote: &learned.Remote{Name: "gw", Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}})
	b.put("ra", ra(1500))
	got := b.take()
	if len(got) != 2 || got[0].RA == nil || got[0].RA.MTU != 1500 || got[1].Remote == nil {
		t.Fatalf("take = %+v", got)
	}
	if len(b.take()) != 0 {
		t.Error("taken twice")
	}

	// Run delivers what is put while it runs, and stops with ctx.
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan control.InputChange, 10)
	done := make(chan error, 1)
	go func() {
		done <- b.Run(ctx, func(_ context.Context, c control.InputChange) error { seen <- c; return nil })
	}()
	b.put("ra", ra(9000))
	if c := <-seen; c.RA.MTU != 9000 {
		t.Errorf("delivered %+v", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
