package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkEvent is one netlink link message, as the watcher needs it.
type LinkEvent struct {
	Index int
	Name  string
	Gone  bool // RTM_DELLINK
}

// linkWatcher follows the kernel's network interfaces and asks for a
// reconcile pass when one the config names appears, goes, or is renamed
// to or from such a name: a LAN interface that did not exist when the
// daemon started (a late USB NIC, a VLAN made later) is attached within
// moments of appearing, instead of at the next unrelated change.
type linkWatcher struct {
	log *slog.Logger
	// retry asks the reconciler for a pass, saying why.
	retry func(why string)
	// waiting are the interfaces the last pass waited for.
	waiting func() []string
	// subscribe delivers link events until ctx ends (existing links
	// first, as list does not); list returns the links there are now.
	// nil: netlink's.
	subscribe func(ctx context.Context, ch chan<- LinkEvent) error
	list      func() ([]LinkEvent, error)

	mu     sync.Mutex
	wanted []string
	names  map[int]string // ifindex -> name, as last heard
}

// SetNames makes names the interfaces whose comings and goings matter.
func (w *linkWatcher) SetNames(names []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wanted = slices.Clone(names)
}

// Run watches until ctx ends; a failed subscription is the task's error
// (the supervisor starts it again).
func (w *linkWatcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, list := w.subscribe, w.list
	if sub == nil {
		sub, list = netlinkSubscribe, netlinkList
	}
	ch := make(chan LinkEvent, 64)
	errc := make(chan error, 1)
	// Subscribed before listing: a link made in between is in both, and
	// an event for a name already known changes nothing.
	go func() { errc <- sub(ctx, ch) }()
	now, err := list()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	w.mu.Lock()
	w.names = map[int]string{}
	for _, l := range now {
		w.names[l.Index] = l.Name
	}
	w.mu.Unlock()
	// One that appeared between the last pass and the list above.
	for _, name := range w.waiting() {
		if slices.ContainsFunc(now, func(l LinkEvent) bool { return l.Name == name }) {
			w.log.Info("interface change, reconciling", "why", "interface "+name+" appeared")
			w.retry("interface " + name + " appeared")
			break
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("link updates: %w", err)
		case ev := <-ch:
			if why := w.handle(ev); why != "" {
				w.log.Info("interface change, reconciling", "why", why)
				w.retry(why)
			}
		}
	}
}

// handle records ev and says why a pass is due, or "".
func (w *linkWatcher) handle(ev LinkEvent) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	old, known := w.names[ev.Index]
	if ev.Gone {
		delete(w.names, ev.Index)
		if known && slices.Contains(w.wanted, old) {
			return "interface " + old + " went away"
		}
		return ""
	}
	w.names[ev.Index] = ev.Name
	switch {
	case known && old == ev.Name:
		return "" // flags, addresses of the link, XDP: not ours to follow
	case slices.Contains(w.wanted, ev.Name):
		return "interface " + ev.Name + " appeared"
	case known && slices.Contains(w.wanted, old):
		return "interface " + old + " renamed to " + ev.Name
	}
	return ""
}

func netlinkList() ([]LinkEvent, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var out []LinkEvent
	for _, l := range ls {
		out = append(out, LinkEvent{Index: l.Attrs().Index, Name: l.Attrs().Name})
	}
	return out, nil
}

func netlinkSubscribe(ctx context.Context, ch chan<- LinkEvent) error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	errc := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case u, ok := <-updates:
			if !ok {
				return fmt.Errorf("netlink closed the subscription")
			}
			ev := LinkEvent{Index: int(u.Index), Name: u.Attrs().Name, Gone: u.Header.Type == unix.RTM_DELLINK}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return nil
			}
		}
	}
}
