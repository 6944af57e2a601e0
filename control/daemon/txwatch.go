package daemon

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/xdprouter/xdprouter/loader/vethnapi"
)

// txWatcher asks for a reconcile pass when the kernel announces that a port
// the config names starts or stops taking frames from XDP: the ndo-xmit bit
// of its xdp-features, which for a veth says whether its peer has NAPI. The
// peer's side may turn GRO on or off, or attach or remove an XDP program,
// at any time; the pass attaches the port again, which moves it to the
// transmit path the peer now calls for (loader.TXPath). Without it, a peer
// that lost NAPI would lose everything XDP sends there until the next pass.
type txWatcher struct {
	log *slog.Logger
	// retry asks the reconciler for a pass, saying why.
	retry func(why string)
	// watch delivers the kernel's announcements until ctx ends, name
	// names an ifindex; nil: vethnapi.Watch and netlink.
	watch func(ctx context.Context, changed func(vethnapi.Change)) error
	name  func(ifindex int) (string, bool)

	mu     sync.Mutex
	wanted []string
	xmit   map[int]bool // ifindex -> ndo-xmit as last announced
}

// SetNames makes names the ports whose changes matter.
func (w *txWatcher) SetNames(names []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wanted = slices.Clone(names)
}

// Run watches until ctx ends. On a kernel without the announcements
// (before 6.3) it says so and waits: each pass still looks again.
func (w *txWatcher) Run(ctx context.Context) error {
	watch := w.watch
	if watch == nil {
		watch = vethnapi.Watch
	}
	w.mu.Lock()
	w.xmit = map[int]bool{}
	w.mu.Unlock()
	err := watch(ctx, func(c vethnapi.Change) {
		if why := w.handle(c); why != "" {
			w.log.Info("transmit path change, reconciling", "why", why)
			w.retry(why)
		}
	})
	if errors.Is(err, vethnapi.ErrNoXDPFeatures) {
		w.log.Info("the kernel does not announce xdp-features: a veth peer gaining or losing NAPI is seen at the next pass", "reason", err)
		<-ctx.Done()
		return nil
	}
	return err
}

// handle records c and says why a pass is due, or "".
func (w *txWatcher) handle(c vethnapi.Change) string {
	name, ok := w.nameOf(c.Ifindex)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !c.Known {
		delete(w.xmit, c.Ifindex)
		return ""
	}
	if !ok || !slices.Contains(w.wanted, name) {
		return ""
	}
	xmit := c.XDPFeatures&vethnapi.NDOXmit != 0
	prev, seen := w.xmit[c.Ifindex]
	w.xmit[c.Ifindex] = xmit
	switch {
	case seen && prev == xmit:
		return ""
	case xmit:
		return name + " takes frames from XDP (a veth whose peer has GRO or an XDP program)"
	}
	return name + " takes no frames from XDP (a veth whose peer has neither GRO nor an XDP program)"
}

func (w *txWatcher) nameOf(ifindex int) (string, bool) {
	if w.name != nil {
		return w.name(ifindex)
	}
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return "", false
	}
	return l.Attrs().Name, true
}
