// Package metrics exports xdprouter's counters to Prometheus: every
// data-plane counter (names from the BPF enum's BTF), per-interface
// packets and bytes of the attached interfaces (from the kernel's link
// statistics, so the BPF counter map stays as it is), and the
// reconciler's passes, errors, last duration and config generation, and
// the learned prefixes' lifetimes and the default router.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/loader"
)

// LinkStats are one interface's kernel counters.
type LinkStats struct {
	Name                 string
	Role                 string
	RxPackets, RxBytes   uint64
	TxPackets, TxBytes   uint64
	RxDropped, TxDropped uint64
}

// Source is what the collector reads at every scrape.
type Source interface {
	Counters() ([]loader.Counter, error)
	Links() ([]LinkStats, error)
	Reconcile() control.ReconcileStats
	// Plan is what the learned prefixes mean now; Now is the time its
	// lifetimes are counted from.
	Plan() (control.Plan, time.Time)
}

var (
	dpPackets = prometheus.NewDesc("xdprouter_dataplane_packets_total",
		"Packets counted by the XDP data plane, by counter (fwd_*: forwarded in XDP, pass_*: left to the kernel, with the reason).",
		[]string{"counter"}, nil)
	dpBytes = prometheus.NewDesc("xdprouter_dataplane_bytes_total",
		"Bytes counted by the XDP data plane, by counter.", []string{"counter"}, nil)
	ifLabels   = []string{"interface", "role"}
	ifRxPkts   = prometheus.NewDesc("xdprouter_interface_receive_packets_total", "Packets received on an attached interface (kernel link statistics).", ifLabels, nil)
	ifRxBytes  = prometheus.NewDesc("xdprouter_interface_receive_bytes_total", "Bytes received on an attached interface.", ifLabels, nil)
	ifTxPkts   = prometheus.NewDesc("xdprouter_interface_transmit_packets_total", "Packets transmitted on an attached interface, XDP redirects included.", ifLabels, nil)
	ifTxBytes  = prometheus.NewDesc("xdprouter_interface_transmit_bytes_total", "Bytes transmitted on an attached interface.", ifLabels, nil)
	ifRxDrop   = prometheus.NewDesc("xdprouter_interface_receive_dropped_total", "Packets dropped on receive by an attached interface.", ifLabels, nil)
	ifTxDrop   = prometheus.NewDesc("xdprouter_interface_transmit_dropped_total", "Packets dropped on transmit by an attached interface.", ifLabels, nil)
	recPasses  = prometheus.NewDesc("xdprouter_reconcile_total", "Reconcile passes run.", nil, nil)
	recErrors  = prometheus.NewDesc("xdprouter_reconcile_errors_total", "Reconcile passes that failed (the previous state stayed in force).", nil, nil)
	recLast    = prometheus.NewDesc("xdprouter_reconcile_last_duration_seconds", "Duration of the last reconcile pass.", nil, nil)
	recRefused = prometheus.NewDesc("xdprouter_learned_refused_total",
		"Learned values refused (a tunnel remote's DNS answer naming the router or a LAN host, a delegated prefix that cannot be used), by reason; what was in force stayed.", []string{"reason"}, nil)
	recGen    = prometheus.NewDesc("xdprouter_config_generation", "Generation of the config in force: 1 at start, +1 per accepted reload.", nil, nil)
	pfxLabels = []string{"kind", "interface", "prefix"}
	pfxValid  = prometheus.NewDesc("xdprouter_prefix_valid_seconds",
		"Valid lifetime left of a learned prefix, by kind (wan: the RA /64 of the WAN address, delegated, lan, lan_deprecated).", pfxLabels, nil)
	pfxPreferred = prometheus.NewDesc("xdprouter_prefix_preferred_seconds", "Preferred lifetime left of a learned prefix.", pfxLabels, nil)
	defRouter    = prometheus.NewDesc("xdprouter_default_router", "1 for the WAN default router in use.", []string{"interface", "router"}, nil)
	waiting      = prometheus.NewDesc("xdprouter_waiting_inputs", "Parts of the config waiting for something to be learned (see `xdprouter status`).", nil, nil)
)

// Collector is a prometheus.Collector over a Source.
type Collector struct{ src Source }

// NewCollector returns a collector reading src.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dpPackets, dpBytes, ifRxPkts, ifRxBytes, ifTxPkts, ifTxBytes, ifRxDrop, ifTxDrop, recPasses, recErrors, recLast, recGen, recRefused,
		pfxValid, pfxPreferred, defRouter, waiting} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A source that cannot be read
// fails the scrape with the reason instead of reporting zeros.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if cs, err := c.src.Counters(); err != nil {
		ch <- prometheus.NewInvalidMetric(dpPackets, fmt.Errorf("read data-plane counters: %w", err))
	} else {
		for _, v := range cs {
			ch <- prometheus.MustNewConstMetric(dpPackets, prometheus.CounterValue, float64(v.Packets), v.Name)
			ch <- prometheus.MustNewConstMetric(dpBytes, prometheus.CounterValue, float64(v.Bytes), v.Name)
		}
	}
	if ls, err := c.src.Links(); err != nil {
		ch <- prometheus.NewInvalidMetric(ifRxPkts, fmt.Errorf("read link statistics: %w", err))
	} else {
		for _, l := range ls {
			for _, m := range []struct {
				d *prometheus.Desc
				v uint64
			}{{ifRxPkts, l.RxPackets}, {ifRxBytes, l.RxBytes}, {ifTxPkts, l.TxPackets}, {ifTxBytes, l.TxBytes}, {ifRxDrop, l.RxDropped}, {ifTxDrop, l.TxDropped}} {
				ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v), l.Name, l.Role)
			}
		}
	}
	st := c.src.Reconcile()
	ch <- prometheus.MustNewConstMetric(recPasses, prometheus.CounterValue, float64(st.Passes))
	ch <- prometheus.MustNewConstMetric(recErrors, prometheus.CounterValue, float64(st.Errors))
	ch <- prometheus.MustNewConstMetric(recLast, prometheus.GaugeValue, st.LastDuration.Seconds())
	ch <- prometheus.MustNewConstMetric(recGen, prometheus.GaugeValue, float64(st.Generation))
	for reason, n := range st.Refused {
		ch <- prometheus.MustNewConstMetric(recRefused, prometheus.CounterValue, float64(n), reason)
	}
	c.collectPlan(ch)
}

func (c *Collector) collectPlan(ch chan<- prometheus.Metric) {
	p, now := c.src.Plan()
	prefix := func(kind, ifname string, lp learned.Prefix) {
		if !lp.Prefix.IsValid() {
			return
		}
		ch <- prometheus.MustNewConstMetric(pfxValid, prometheus.GaugeValue, learned.Remaining(lp.Valid, now).Seconds(), kind, ifname, lp.Prefix.String())
		ch <- prometheus.MustNewConstMetric(pfxPreferred, prometheus.GaugeValue, learned.Remaining(lp.Preferred, now).Seconds(), kind, ifname, lp.Prefix.String())
	}
	prefix("wan", p.WANInterface, p.WANPrefix)
	for _, d := range p.Delegated {
		prefix("delegated", p.WANInterface, d)
	}
	for _, l := range p.LANs {
		prefix("lan", l.Interface, l.Prefix)
		for _, r := range l.Retired {
			prefix("lan_deprecated", l.Interface, r)
		}
	}
	if p.Gateway.IsValid() {
		ch <- prometheus.MustNewConstMetric(defRouter, prometheus.GaugeValue, 1, p.WANInterface, p.Gateway.String())
	}
	ch <- prometheus.MustNewConstMetric(waiting, prometheus.GaugeValue, float64(len(p.Pending)))
}

// Handler serves src's metrics and the Go runtime's on /metrics.
func Handler(src Source) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{NewCollector(src), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux, nil
}

// Server serves the metrics on an opt-in TCP address.
type Server struct {
	Addr   string
	Source Source
	Log    *slog.Logger
}

// Run listens until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	h, err := Handler(s.Source)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("metrics listen on %s: %w", s.Addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.Log.Info("metrics listening", "address", ln.Addr().String(), "path", "/metrics")
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server on %s: %w", s.Addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("stop metrics server: %w", err)
	}
	return nil
}
