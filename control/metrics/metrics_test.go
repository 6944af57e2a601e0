package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/xdprouter/xdprouter/control"
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
`
	err := testutil.CollectAndCompare(NewCollector(fakeSource{}), strings.NewReader(want),
		"xdprouter_config_generation", "xdprouter_dataplane_packets_total", "xdprouter_interface_transmit_bytes_total",
		"xdprouter_reconcile_errors_total", "xdprouter_reconcile_last_duration_seconds", "xdprouter_reconcile_total")
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
