package endpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testUser     = "fixip-user@example"
	testPassword = "s3cret&pw/+x y"
)

var loopback6 = netip.MustParseAddr("::1")

// seen is one request as the ISP's server saw it.
type seen struct {
	path, rawQuery     string
	username, password string
	from               netip.Addr
}

// ispServer plays update.transix.jp on [::1].
type ispServer struct {
	srv  *httptest.Server
	port uint16

	mu      sync.Mutex
	reqs    []seen
	replies []func(w http.ResponseWriter) // in order; the last one repeats
}

func startISP(t *testing.T) *ispServer {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	s := &ispServer{port: uint16(ln.Addr().(*net.TCPAddr).Port)}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _ := netip.ParseAddrPort(r.RemoteAddr)
		s.mu.Lock()
		s.reqs = append(s.reqs, seen{
			path: r.URL.Path, rawQuery: r.URL.RawQuery,
			username: r.URL.Query().Get("username"), password: r.URL.Query().Get("password"),
			from: from.Addr(),
		})
		reply := func(w http.ResponseWriter) { fmt.Fprintln(w, "OK") }
		if n := len(s.replies); n > 0 {
			reply = s.replies[min(len(s.reqs)-1, n-1)]
		}
		s.mu.Unlock()
		reply(w)
	}))
	s.srv.Listener = ln
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *ispServer) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

func status(code int, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type provRig struct {
	p     *Provisioner
	clock *fakeClock
	log   *syncBuffer
	dns   *testDNS
	pwd   string // password file
	cfg   Provisioning
}

// startProvisioner runs a provisioner whose URL names the ISP's server
// by a name only the learned DNS server knows.
func startProvisioner(t *testing.T, isp *ispServer, timeout time.Duration) *provRig {
	t.Helper()
	d, err := startDNS(t, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	d.set("update.example.test", record{addrs: []string{"::1"}, ttl: 60})
	rig := &provRig{clock: newFakeClock(), log: &syncBuffer{}, dns: d, pwd: filepath.Join(t.TempDir(), "transix.password")}
	writePassword(t, rig.pwd, testPassword+"\n", 0o600)
	rig.cfg = Provisioning{
		URL:          "http://update.example.test:" + strconv.Itoa(int(isp.port)) + "/request?v=1",
		Username:     testUser,
		PasswordFile: rig.pwd,
	}
	if err := rig.cfg.Validate("tunnels[0].provisioning"); err != nil {
		t.Fatal(err)
	}
	resolver := NewDNS(DNSOptions{ResolvConf: filepath.Join(t.TempDir(), "none"), Port: d.Addr.Port(), Timeout: time.Second})
	resolver.SetServers([]netip.Addr{d.Addr.Addr()})
	rig.p = NewProvisioner(ProvisionerOptions{
		DNS:     resolver,
		Retry:   Backoff{Initial: 2 * time.Second, Max: 5 * time.Minute},
		Timeout: timeout,
		Clock:   rig.clock,
		Log:     slog.New(slog.NewTextHandler(rig.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	runTask(t, rig.p.Run)
	return rig
}

func writePassword(t *testing.T, file, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(file, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil { // WriteFile keeps an existing file's mode
		t.Fatal(err)
	}
}

func (rig *provRig) stats(t *testing.T) ProvisionStats {
	t.Helper()
	st := rig.p.Stats()
	if len(st) != 1 {
		t.Fatalf("stats %+v, want one tunnel", st)
	}
	return st[0]
}

func (rig *provRig) waitFor(t *testing.T, what string, cond func(ProvisionStats) bool) ProvisionStats {
	t.Helper()
	var st ProvisionStats
	eventually(t, what, func() bool { st = rig.stats(t); return cond(st) })
	return st
}

func TestProvisionerRequestsFromLocal(t *testing.T) {
	isp := startISP(t)
	rig := startProvisioner(t, isp, 10*time.Second)
	rig.p.SetConfig(map[string]Provisioning{"transix": rig.cfg})
	st := rig.waitFor(t, "config taken", func(s ProvisionStats) bool { return s.Tunnel == "transix" })
	if st.State != StateWaitingForLocal || st.Attempts != 0 {
		t.Fatalf("before a local address: %+v", st)
	}

	rig.p.SetLocal("transix", loopback6)
	st = rig.waitFor(t, "done", func(s ProvisionStats) bool { return s.State == StateDone })
	reqs := isp.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	wantQuery := "v=1&username=" + url.QueryEscape(testUser) + "&password=" + url.QueryEscape(testPassword)
	if r.path != "/request" || r.rawQuery != wantQuery || r.username != testUser || r.password != testPassword || r.from != loopback6 {
		t.Errorf("server saw %+v, want /request?%s from ::1", r, wantQuery)
	}
	if q := rig.dns.queries.Load(); q != 1 {
		t.Errorf("%d DNS queries for the URL's host to the learned server, want 1", q)
	}
	if st.Attempts != 1 || st.Successes != 1 || st.Failures != 0 || st.HTTPStatus != 200 || st.Body != "OK" ||
		st.SucceededFor != loopback6 || st.Local != loopback6 || st.LastError != "" || st.LastAttempt.IsZero() {
		t.Errorf("stats %+v", st)
	}
	if want := "http://update.example.test:" + strconv.Itoa(int(isp.port)) + "/request?v=1&username=REDACTED&password=REDACTED"; st.URL != want {
		t.Errorf("status URL %q, want %q", st.URL, want)
	}

	// The same address again is no change; a new config is.
	rig.p.SetLocal("transix", loopback6)
	time.Sleep(100 * time.Millisecond)
	if n := len(isp.requests()); n != 1 {
		t.Fatalf("%d requests after the same local address was set again, want 1", n)
	}
	cfg := rig.cfg
	cfg.URL += "&line=2"
	rig.p.SetConfig(map[string]Provisioning{"transix": cfg})
	rig.waitFor(t, "second success", func(s ProvisionStats) bool { return s.Successes == 2 })
	if reqs := isp.requests(); len(reqs) != 2 || !strings.HasPrefix(reqs[1].rawQuery, "v=1&line=2&username=") {
		t.Fatalf("after a config change: requests %+v", reqs)
	}
	rig.p.SetConfig(nil)
	eventually(t, "tunnel dropped", func() bool { return len(rig.p.Stats()) == 0 })
}

func TestProvisionerRetriesWithBackoff(t *testing.T) {
	isp := startISP(t)
	long := strings.Repeat("é", 150) // 300 bytes
	isp.replies = []func(http.ResponseWriter){
		status(500, "internal error\nstack trace line"),
		status(503, long),
		status(200, "OK\n"),
	}
	rig := startProvisioner(t, isp, 10*time.Second)
	rig.p.SetConfig(map[string]Provisioning{"transix": rig.cfg})
	rig.p.SetLocal("transix", loopback6)

	st := rig.waitFor(t, "first failure", func(s ProvisionStats) bool { return s.Failures == 1 })
	next := rig.clock.waitTimers(t, 1)
	if st.State != StateRetrying || st.HTTPStatus != 500 || st.Body != "internal error" ||
		!strings.Contains(st.LastError, "HTTP 500") || next.Sub(rig.clock.Now()) != 2*time.Second || !st.NextAttempt.Equal(next) {
		t.Fatalf("after a 500: %+v, next attempt in %v (want 2s)", st, next.Sub(rig.clock.Now()))
	}
	// The password file is read at each attempt.
	writePassword(t, rig.pwd, "new-password\n", 0o600)
	rig.clock.Advance(2 * time.Second)
	st = rig.waitFor(t, "second failure", func(s ProvisionStats) bool { return s.Failures == 2 })
	next = rig.clock.waitTimers(t, 1)
	if st.HTTPStatus != 503 || len(st.Body) != 200 || st.Body != long[:200] || next.Sub(rig.clock.Now()) != 4*time.Second {
		t.Fatalf("after a 503: %+v, next attempt in %v (want 4s)", st, next.Sub(rig.clock.Now()))
	}
	rig.clock.Advance(4 * time.Second)
	st = rig.waitFor(t, "success", func(s ProvisionStats) bool { return s.State == StateDone })
	if st.Attempts != 3 || st.Failures != 2 || st.Successes != 1 || st.FailedInARow != 0 || st.LastError != "" || st.HTTPStatus != 200 {
		t.Errorf("after the success: %+v", st)
	}
	reqs := isp.requests()
	if len(reqs) != 3 || reqs[0].password != testPassword || reqs[1].password != "new-password" || reqs[2].password != "new-password" {
		t.Errorf("requests %+v", reqs)
	}
}

func TestProvisionerAgainAfterLocalChange(t *testing.T) {
	isp := startISP(t)
	rig := startProvisioner(t, isp, 10*time.Second)
	rig.p.SetLocal("transix", loopback6) // before the config: order does not matter
	rig.p.SetConfig(map[string]Provisioning{"transix": rig.cfg})
	rig.waitFor(t, "first success", func(s ProvisionStats) bool { return s.Successes == 1 })

	// Renumbering: the request must leave from the new address. This
	// host does not own it, so binding to it fails, which shows the
	// request is sourced from the tunnel's local address.
	renumbered := netip.MustParseAddr("2001:db8:1:2::feed")
	rig.p.SetLocal("transix", renumbered)
	st := rig.waitFor(t, "attempt from the new address", func(s ProvisionStats) bool { return s.Failures == 1 })
	if st.State != StateRetrying || st.Local != renumbered || st.SucceededFor != loopback6 ||
		!strings.Contains(st.LastError, "bind") || !strings.Contains(st.LastError, renumbered.String()) {
		t.Fatalf("after renumbering: %+v", st)
	}
	if n := len(isp.requests()); n != 1 {
		t.Fatalf("the server got %d requests, want only the first", n)
	}

	// The address goes, then comes back: requested again.
	rig.p.SetLocal("transix", netip.Addr{})
	rig.waitFor(t, "waiting for local", func(s ProvisionStats) bool { return s.State == StateWaitingForLocal })
	rig.p.SetLocal("transix", loopback6)
	st = rig.waitFor(t, "second success", func(s ProvisionStats) bool { return s.Successes == 2 })
	if n := len(isp.requests()); n != 2 || st.SucceededFor != loopback6 || st.State != StateDone {
		t.Errorf("%d requests, stats %+v", n, st)
	}
}

func TestProvisionerRefusesOpenPasswordFile(t *testing.T) {
	isp := startISP(t)
	rig := startProvisioner(t, isp, 10*time.Second)
	writePassword(t, rig.pwd, testPassword+"\n", 0o644)
	rig.p.SetConfig(map[string]Provisioning{"transix": rig.cfg})
	rig.p.SetLocal("transix", loopback6)
	st := rig.waitFor(t, "refusal", func(s ProvisionStats) bool { return s.Failures == 1 })
	for _, want := range []string{"provisioning.password-file", rig.pwd, "group or others", "0644", "chmod 600"} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("error %q does not say %q", st.LastError, want)
		}
	}
	if n := len(isp.requests()); n != 0 {
		t.Fatalf("%d requests with an unsafe password file", n)
	}
	rig.clock.waitTimers(t, 1)
	writePassword(t, rig.pwd, testPassword+"\n", 0o600)
	rig.clock.Advance(2 * time.Second)
	rig.waitFor(t, "success once fixed", func(s ProvisionStats) bool { return s.State == StateDone })
}

// TestProvisionerNeverShowsCredentials drives every way an attempt can
// fail and checks logs, status and errors for the credentials.
func TestProvisionerNeverShowsCredentials(t *testing.T) {
	isp := startISP(t)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	isp.replies = []func(http.ResponseWriter){
		// An ISP that echoes what it got.
		status(403, "bad credentials: username="+testUser+" password="+testPassword+" ("+url.QueryEscape(testPassword)+")"),
		// One that never answers: net/http's timeout error quotes the URL.
		func(http.ResponseWriter) { <-hang },
		status(200, "OK for "+testUser),
	}
	rig := startProvisioner(t, isp, 300*time.Millisecond)
	rig.p.SetConfig(map[string]Provisioning{"transix": rig.cfg})
	rig.p.SetLocal("transix", loopback6)

	var shown []string
	st := rig.waitFor(t, "403", func(s ProvisionStats) bool { return s.Failures == 1 })
	if st.HTTPStatus != 403 || !strings.Contains(st.Body, "password="+Redacted) {
		t.Errorf("after the 403: %+v", st)
	}
	shown = append(shown, st.Body, st.LastError, st.URL)
	rig.clock.waitTimers(t, 1)
	rig.clock.Advance(2 * time.Second)
	st = rig.waitFor(t, "timeout", func(s ProvisionStats) bool { return s.Failures == 2 })
	if !strings.Contains(st.LastError, "Client.Timeout") || !strings.Contains(st.LastError, "password="+Redacted) {
		t.Errorf("after the timeout: error %q, want net/http's timeout with the redacted URL", st.LastError)
	}
	shown = append(shown, st.LastError)
	// The ISP's server goes away: connection refused, from a transport
	// that also quotes the URL.
	rig.clock.waitTimers(t, 1)
	isp.srv.Listener.Close()
	rig.clock.Advance(4 * time.Second)
	st = rig.waitFor(t, "refused", func(s ProvisionStats) bool { return s.Failures == 3 })
	if !strings.Contains(st.LastError, "refused") {
		t.Errorf("after the server went away: %q", st.LastError)
	}
	shown = append(shown, st.LastError)

	js, err := json.Marshal(rig.p.Stats())
	if err != nil {
		t.Fatal(err)
	}
	shown = append(shown, string(js), rig.log.String())
	if !strings.Contains(rig.log.String(), "provisioning request failed") {
		t.Fatalf("no failure logged: %s", rig.log.String())
	}
	for _, s := range shown {
		for _, secret := range []string{testPassword, url.QueryEscape(testPassword), testUser, url.QueryEscape(testUser)} {
			if strings.Contains(s, secret) {
				t.Errorf("%q shows a credential (%q)", s, secret)
			}
		}
	}
}

func TestRedactErrFlattensWhatStillCarriesASecret(t *testing.T) {
	sec := newSecrets("pw&1", "user")
	const safe = "http://h/?username=REDACTED&password=REDACTED"
	for _, err := range []error{
		// The URL alone carries the secrets: replaced, the cause kept.
		&url.Error{Op: "Get", URL: "http://h/?username=user&password=pw%261", Err: os.ErrDeadlineExceeded},
		// The cause carries one too: flattened to text.
		&url.Error{Op: "Get", URL: "http://h/?username=user&password=pw%261", Err: fmt.Errorf("proxy said: GET /?password=%s", url.QueryEscape("pw&1"))},
	} {
		got := sec.redactErr(err, safe)
		if !strings.Contains(got.Error(), safe) {
			t.Errorf("%q does not show the redacted URL", got)
		}
		// Nothing along the chain may still hold a secret.
		for e := got; e != nil; e = errors.Unwrap(e) {
			if m := e.Error(); strings.Contains(m, "pw") || strings.Contains(m, "user=u") || strings.Contains(m, "=user") {
				t.Errorf("%q (in the chain of %q) shows a credential", m, got)
			}
		}
	}
	if got := sec.redactErr(&url.Error{Op: "Get", URL: "x", Err: os.ErrDeadlineExceeded}, safe); !errors.Is(got, os.ErrDeadlineExceeded) {
		t.Errorf("redaction lost the cause of %v", got)
	}
}
