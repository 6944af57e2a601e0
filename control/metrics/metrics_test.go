package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/loader"
)

type fakeSource struct{ linkErr error }

func (fakeSource) Counters() ([]loader.Counter, error) {
	return []loader.Counter{{Name: "fwd_ipv4", Packets: 10, Bytes: 1000}, {Name: "pass_no_neigh", Packets: 1, Bytes: 60}}, nil
}

func (f fakeSource) Links() ([]LinkStats, error) {
	return []LinkStats{{Name: "eth0", Role: "wan", RxPackets: 5, RxBytes: 500, TxPackets: 6, TxBytes: 600}}, f.linkErr
}

func (fakeSource) Reconcile() control.ReconcileStats {
	return control.ReconcileStats{Generation: 2, Passes: 4, Errors: 1, LastDuration: 1500 * time.Millisecond}
}

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func (fakeSource) Plan() (control.Plan, time.Time) {
	lp := func(p string, valid, preferred time.Duration) learned.Prefix {
		return learned.Prefix{Prefix: netip.MustParsePrefix(p), Valid: now.Add(valid), Preferred: now.Add(preferred)}
	}
	return control.Plan{WANInterface: "wan0", WANPrefix: lp("2001:db8:1::/64", 2*time.Hour, time.Hour),
		Gateway:   netip.MustParseAddr("fe80::1"),
		Delegated: []learned.Prefix{lp("2001:db8:100::/56", time.Minute, 30*time.Second)},
		LANs: []control.LANPlan{{Interface: "lan0", Prefix: lp("2001:db8:100:1::/64", time.Minute, 30*time.Second),
			Retired: []learned.Prefix{lp("2001:db8:200:1::/64", 10*time.Second, -time.Second)}}},
		Pending: []string{"tunnels[0].remote: aftr.example has not resolved"}}, now
}

func TestCollector(t *testing.T) {
	want := `
# HELP xdprouter_config_generation Generation of the config in force: 1 at start, +1 per accepted reload.
# TYPE xdprouter_config_generation gauge
xdprouter_config_generation 2
# HELP xdprouter_dataplane_packets_total Packets counted by the XDP data plane, by counter (fwd_*: forwarded in XDP, pass_*: left to the kernel, with the reason).
# TYPE xdprouter_dataplane_packets_total counter
xdprouter_dataplane_packets_total{counter="fwd_ipv4"} 10
xdprouter_dataplane_packets_total{counter="pass_no_neigh"} 1
# HELP xdprouter_interface_transmit_bytes_total Bytes transmitted on an attached interface.
# TYPE xdprouter_interface_transmit_bytes_total counter
xdprouter_interface_transmit_bytes_total{interface="eth0",role="wan"} 600
# HELP xdprouter_reconcile_errors_total Reconcile passes that failed (the previous state stayed in force).
# TYPE xdprouter_reconcile_errors_total counter
xdprouter_reconcile_errors_total 1
# HELP xdprouter_reconcile_last_duration_seconds Duration of the last reconcile pass.
# TYPE xdprouter_reconcile_last_duration_seconds gauge
xdprouter_reconcile_last_duration_seconds 1.5
# HELP xdprouter_reconcile_total Reconcile passes run.
# TYPE xdprouter_reconcile_total counter
xdprouter_reconcile_total 4
# HELP xdprouter_prefix_valid_seconds Valid lifetime left of a learned prefix, by kind (wan: the RA /64 of the WAN address, delegated, lan, lan_deprecated).
# TYPE xdprouter_prefix_valid_seconds gauge
xdprouter_prefix_valid_seconds{interface="lan0",kind="lan",prefix="2001:db8:100:1::/64"} 60
xdprouter_prefix_valid_seconds{interface="lan0",kind="lan_deprecated",prefix="2001:db8:200:1::/64"} 10
xdprouter_prefix_valid_seconds{interface="wan0",kind="delegated",prefix="2001:db8:100::/56"} 60
xdprouter_prefix_valid_seconds{interface="wan0",kind="wan",prefix="2001:db8:1::/64"} 7200
# HELP xdprouter_prefix_preferred_seconds Preferred lifetime left of a learned prefix.
# TYPE xdprouter_prefix_preferred_seconds gauge
xdprouter_prefix_preferred_seconds{interface="lan0",kind="lan",prefix="2001:db8:100:1::/64"} 30
xdprouter_prefix_preferred_seconds{interface="lan0",kind="lan_deprecated",prefix="2001:db8:200:1::/64"} 0
xdprouter_prefix_preferred_seconds{interface="wan0",kind="delegated",prefix="2001:db8:100::/56"} 30
xdprouter_prefix_preferred_seconds{interface="wan0",kind="wan",prefix="2001:db8:1::/64"} 3600
# HELP xdprouter_default_router 1 for the WAN default router in use.
# TYPE xdprouter_default_router gauge
xdprouter_default_router{interface="wan0",router="fe80::1"} 1
# HELP xdprouter_waiting_inputs Parts of the config waiting for something to be learned (see ` + "`xdprouter status`" + `).
# TYPE xdprouter_waiting_inputs gauge
xdprouter_waiting_inputs 1
`
	err := testutil.CollectAndCompare(NewCollector(fakeSource{}), strings.NewReader(want),
		"xdprouter_config_generation", "xdprouter_dataplane_packets_total", "xdprouter_interface_transmit_bytes_total",
		"xdprouter_reconcile_errors_total", "xdprouter_reconcile_last_duration_seconds", "xdprouter_reconcile_total",
		"xdprouter_prefix_valid_seconds", "xdprouter_prefix_preferred_seconds", "xdprouter_default_router", "xdprouter_waiting_inputs")
	if err != nil {
		t.Error(err)
	}
}

func TestHandlerFailsScrapeOnSourceError(t *testing.T) {
	h, err := Handler(fakeSource{linkErr: errors.New("netlink down")})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 500 || !strings.Contains(string(body), "netlink down") {
		t.Errorf("status %d body %.300s", rec.Code, body)
	}
}
