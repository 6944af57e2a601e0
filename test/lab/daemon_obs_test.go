package lab

import (
	"context"
	"fmt"
	"github.com/xdprouter/xdprouter/test/netlab"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// metricsAddr is where the lab daemon serves metrics, inside the router
// namespace (its own loopback, so a fixed port cannot collide).
const metricsAddr = "127.0.0.1:9430"

// TestDaemonObservability checks what a running daemon tells: status and
// stats over its socket, Prometheus metrics, and sd_notify messages to a
// NOTIFY_SOCKET as systemd would read them.
func TestDaemonObservability(t *testing.T) {
	topo, cli, ctx := newLab(t)
	notify := listenNotify(t, filepath.Join(topo.Lab.RunDir(), "notify.sock"))
	d, err := cli.StartDaemonEnv(ctx, []string{"NOTIFY_SOCKET=" + notify.addr},
		writeConfig(t, topo, "config.yaml", labConfig), "--metrics-listen", metricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !d.Exited() {
			d.Kill()
		}
		t.Logf("daemon log:\n%s", d.Log())
	})
	// The initial pass reports its STATUS, then the daemon is ready.
	if msg := notify.next(t); !strings.HasPrefix(msg, "STATUS=config generation 1, 1 reconciles, 0 errors") {
		t.Errorf("first sd_notify %q, want the initial pass's STATUS", msg)
	}
	if msg := notify.next(t); !strings.HasPrefix(msg, "READY=1\nSTATUS=config generation 1") {
		t.Errorf("second sd_notify %q, want READY=1 and a STATUS", msg)
	}
	for _, dst := range []string{labkit.HostB4.Addr().String(), labkit.HostB6.Addr().String()} {
		mustRun(t, ctx, cli.Runner, netlab.InNS(topo.HostA, "ping", "-n", "-c", "20", "-i", "0.01", dst)...)
	}
	// ICMP is never carried in XDP (the conntrack gate passes it to the
	// kernel as pass_ct_proto): an established UDP flow over IPv4 makes
	// the fast path's fwd_ipv4 count.
	burst := udpBurst(t, topo, labkit.HostB4.Addr(), 300*time.Millisecond)

	t.Run("status and stats from the daemon", func(t *testing.T) {
		cli := cli.WithLog(t)
		out := mustCLI(t, ctx, cli, "status").Stdout
		for _, want := range []string{fmt.Sprintf("daemon: pid %d", d.PID()), "(generation 1)", "reconcile: 1 passes, 0 errors"} {
			if !strings.Contains(out, want) {
				t.Errorf("status has no %q", want)
			}
		}
		st := mustStatus(t, ctx, cli)
		if st.Daemon == nil || st.Daemon.PID != d.PID() || st.Daemon.Passes != 1 || st.Daemon.LastDurationNS <= 0 {
			t.Errorf("status --json daemon part: %+v", st.Daemon)
		}
		mustCLI(t, ctx, cli, "stats")
		// The socket is the daemon's door: root only.
		ls := mustRun(t, ctx, cli.Runner, "stat", "-c", "%A %U", cli.Socket).Stdout
		if strings.TrimSpace(ls) != "srw------- root" {
			t.Errorf("socket mode %q, want srw------- root", ls)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		counters, err := cli.Counters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		body := scrape(t, topo)
		value := func(series string) float64 {
			t.Helper()
			m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
			if m == nil {
				t.Errorf("no series %s", series)
				return -1
			}
			v, _ := strconv.ParseFloat(m[1], 64)
			return v
		}
		// Every data-plane counter, named as in stats.
		for name := range counters {
			value(fmt.Sprintf(`xdprouter_dataplane_packets_total{counter=%q}`, name))
			value(fmt.Sprintf(`xdprouter_dataplane_bytes_total{counter=%q}`, name))
		}
		// Each datagram of the established flow once, in XDP.
		if v := value(`xdprouter_dataplane_packets_total{counter="fwd_ipv4"}`); v < float64(burst.Received) {
			t.Errorf("fwd_ipv4 = %v, want >= %d (the UDP datagrams)", v, burst.Received)
		}
		// 20 echo requests and 20 replies over IPv4 and IPv6 each, all
		// to the kernel by the gate.
		if v := value(`xdprouter_dataplane_packets_total{counter="pass_ct_proto"}`); v < 80 {
			t.Errorf("pass_ct_proto = %v, want >= 80 (the pings)", v)
		}
		for _, series := range []string{
			`xdprouter_interface_receive_packets_total{interface="to-a",role="wan"}`,
			`xdprouter_interface_transmit_packets_total{interface="to-a",role="wan"}`,
			`xdprouter_interface_receive_bytes_total{interface="to-b",role="lan"}`,
			`xdprouter_interface_transmit_bytes_total{interface="to-b",role="lan"}`,
		} {
			if v := value(series); v <= 0 {
				t.Errorf("%s = %v, want > 0", series, v)
			}
		}
		if v := value("xdprouter_reconcile_total"); v != 1 {
			t.Errorf("reconcile_total %v", v)
		}
		if v := value("xdprouter_reconcile_errors_total"); v != 0 {
			t.Errorf("reconcile_errors_total %v", v)
		}
		if v := value("xdprouter_config_generation"); v != 1 {
			t.Errorf("config_generation %v", v)
		}
		if v := value("xdprouter_reconcile_last_duration_seconds"); v <= 0 {
			t.Errorf("last duration %v", v)
		}
	})

	t.Run("sd_notify on reload and stop", func(t *testing.T) {
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if msg := notify.next(t); msg != "RELOADING=1" {
			t.Errorf("on SIGHUP: %q, want RELOADING=1", msg)
		}
		// The reconcile pass reports its STATUS, then the reload ends.
		if msg := notify.next(t); !strings.HasPrefix(msg, "STATUS=config generation 2") {
			t.Errorf("after the pass: %q", msg)
		}
		if msg := notify.next(t); !strings.HasPrefix(msg, "READY=1\nSTATUS=config generation 2") {
			t.Errorf("after the reload: %q", msg)
		}
		if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if msg := notify.next(t); msg != "STOPPING=1" {
			t.Errorf("on SIGTERM: %q, want STOPPING=1", msg)
		}
	})
}

// scrape fetches /metrics from inside the router namespace.
func scrape(t *testing.T, topo *labkit.Topology) string {
	t.Helper()
	var conn net.Conn
	if err := topo.Lab.Do(topo.Router, func() (err error) {
		conn, err = net.DialTimeout("tcp", metricsAddr, 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connect to the metrics server: %v", err)
	}
	// The connection is in the router's namespace; the client only reuses it.
	used := false
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			if used {
				return nil, fmt.Errorf("one connection only")
			}
			used = true
			return conn, nil
		},
	}}
	resp, err := client.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %v %s\n%s", err, resp.Status, b)
	}
	return string(b)
}

// notifySocket is a stand-in for systemd's NOTIFY_SOCKET.
type notifySocket struct {
	addr string
	conn *net.UnixConn
}

func listenNotify(t *testing.T, path string) *notifySocket {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{addr: path, conn: conn}
}

func (n *notifySocket) next(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = n.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, err := n.conn.Read(buf)
	if err != nil {
		t.Fatalf("no sd_notify message: %v", err)
	}
	msg := string(buf[:k])
	t.Logf("sd_notify: %q", msg)
	return msg
}
