package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/api"
	"github.com/xdprouter/xdprouter/control/metrics"
	"github.com/xdprouter/xdprouter/loader"
)

// Pinned is the read-only view of the pinned state that the status API
// and the metrics need; *loader.Dataplane from loader.OpenPinned is one.
type Pinned interface {
	Status() (loader.Status, error)
	Counters() ([]loader.Counter, error)
	Close() error
}

// backend answers the status API and the metrics from the pinned state,
// opened read-only per request (it holds no lock, so the reconciler and
// `xdprouter attach` are never blocked by a scrape), and the reconciler.
type backend struct {
	bpffs      string
	pinned     func() (Pinned, error)
	configFile string
	started    time.Time
	rec        *control.Reconciler

	// tasks returns the control-plane tasks' counters, by task name.
	tasks func() map[string]any
	// firewall reads the nftables state; nil leaves it out.
	firewall func() *control.FirewallStatus

	mu          sync.Mutex
	reloadError string
}

func (b *backend) taskStats() map[string]json.RawMessage {
	if b.tasks == nil {
		return nil
	}
	out := map[string]json.RawMessage{}
	for name, st := range b.tasks() {
		js, err := json.Marshal(st)
		if err != nil {
			js, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		out[name] = js
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// setReloadError records the outcome of the last SIGHUP.
func (b *backend) setReloadError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reloadError = ""
	if err != nil {
		b.reloadError = err.Error()
	}
}

func (b *backend) Status() (api.Status, error) {
	// Stats before the maps: a reply that says generation N then shows
	// at least what pass N left, never an older view under a newer number.
	stats, in := b.rec.Stats(), b.rec.Current()
	d, err := b.pinned()
	if err != nil {
		return api.Status{}, err
	}
	defer d.Close()
	st, err := d.Status()
	if err != nil {
		return api.Status{}, err
	}
	plan := control.NewPlan(in, time.Now())
	b.mu.Lock()
	reloadErr := b.reloadError
	b.mu.Unlock()
	var fw *control.FirewallStatus
	if b.firewall != nil {
		fw = b.firewall()
	}
	return api.Status{Status: st, Firewall: fw, Steering: control.ReadSteering(), Daemon: &api.Daemon{
		LastReloadError: reloadErr,
		PID:             os.Getpid(),
		ConfigFile:      b.configFile,
		Started:         b.started,
		ReconcileStats:  stats,
		IPv6:            &plan,
		Learned:         &in.Learned,
		Tasks:           b.taskStats(),
	}}, nil
}

func (b *backend) Counters() ([]loader.Counter, error) {
	d, err := b.pinned()
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Counters()
}

// Links reads the kernel's statistics of every attached interface: they
// count what XDP redirects too, and need no change to the BPF maps.
func (b *backend) Links() ([]metrics.LinkStats, error) {
	d, err := b.pinned()
	if err != nil {
		return nil, err
	}
	defer d.Close()
	st, err := d.Status()
	if err != nil {
		return nil, err
	}
	var out []metrics.LinkStats
	for _, i := range st.Interfaces {
		if !i.Present {
			continue
		}
		l, err := netlink.LinkByIndex(i.Ifindex)
		if err != nil {
			return nil, fmt.Errorf("link statistics of %s: %w", i.Name, err)
		}
		s := l.Attrs().Statistics
		if s == nil {
			continue
		}
		out = append(out, metrics.LinkStats{
			Name: i.Name, Role: i.Role,
			RxPackets: s.RxPackets, RxBytes: s.RxBytes, RxDropped: s.RxDropped,
			TxPackets: s.TxPackets, TxBytes: s.TxBytes, TxDropped: s.TxDropped,
		})
	}
	return out, nil
}

func (b *backend) BPFFS() string { return b.bpffs }

func (b *backend) Reconcile() control.ReconcileStats { return b.rec.Stats() }

func (b *backend) Plan() (control.Plan, time.Time) {
	now := time.Now()
	return control.NewPlan(b.rec.Current(), now), now
}
