package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/api"
	"github.com/xdprouter/xdprouter/loader"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeSystem stands for the data plane and the kernel's addresses.
type fakeSystem struct {
	mu       sync.Mutex
	attached map[string]string // ifname -> role
	addrs    map[string]bool
}

func (f *fakeSystem) Attach(ifname string, role loader.Role, mode loader.Mode, gate loader.CTGate) (loader.AttachResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	action := "attached"
	if r, ok := f.attached[ifname]; ok {
		action = "unchanged"
		if r != role.String() {
			action = "updated role"
		}
	}
	f.attached[ifname] = role.String()
	return loader.AttachResult{Interface: ifname, Role: role, Action: action}, nil
}

func (f *fakeSystem) Detach(ifname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.attached, ifname)
	return nil
}

func (f *fakeSystem) Ensure(ifname string, p netip.Prefix) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := ifname + " " + p.String()
	if f.addrs[k] {
		return false, nil
	}
	f.addrs[k] = true
	return true, nil
}

func (f *fakeSystem) Remove(ifname string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.addrs, ifname+" "+p.String())
	return nil
}

func (f *fakeSystem) open() (control.Deps, func() error, error) {
	return control.Deps{DP: f, Addrs: f}, func() error { return nil }, nil
}

func (f *fakeSystem) snapshot() (map[string]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	att := map[string]string{}
	for k, v := range f.attached {
		att[k] = v
	}
	var addrs []string
	for k := range f.addrs {
		addrs = append(addrs, k)
	}
	sort.Strings(addrs)
	return att, addrs
}

// Status and Counters of the pinned state, as far as the API needs them.
func (f *fakeSystem) Status() (loader.Status, error) {
	att, _ := f.snapshot()
	st := loader.Status{BPFFS: "/fake"}
	for name, role := range att {
		st.Interfaces = append(st.Interfaces, loader.InterfaceStatus{Name: name, Role: role, Present: true})
	}
	return st, nil
}
func (f *fakeSystem) Counters() ([]loader.Counter, error) {
	return []loader.Counter{{Name: "fwd_ipv6", Packets: 1}}, nil
}
func (f *fakeSystem) Close() error { return nil }

// notes records sd_notify messages and lets a test wait for one.
type notes struct {
	mu  sync.Mutex
	all []string
	ch  chan string
}

func (n *notes) Notify(s string) {
	n.mu.Lock()
	n.all = append(n.all, s)
	n.mu.Unlock()
	n.ch <- s
}

func (n *notes) waitFor(t *testing.T, prefix string) string {
	t.Helper()
	return n.waitOrExit(t, prefix, nil)
}

// waitOrExit waits for a notification starting with prefix, failing with
// Run's error if the daemon exits first.
func (n *notes) waitOrExit(t *testing.T, prefix string, done <-chan error) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case s := <-n.ch:
			if strings.HasPrefix(s, prefix) {
				return s
			}
		case err := <-done:
			t.Fatalf("the daemon exited before sd_notify %q: %v", prefix, err)
		case <-timeout:
			n.mu.Lock()
			defer n.mu.Unlock()
			t.Fatalf("no sd_notify %q within 20 s; got %q", prefix, n.all)
		}
	}
}

// testLog sends the daemon's log to the test's, for a failure to explain.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type harness struct {
	sys    *fakeSystem
	sig    chan os.Signal
	notes  *notes
	cfg    string
	socket string
	done   chan error
}

func start(t *testing.T, cfg string, detach bool) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{
		sys:    &fakeSystem{attached: map[string]string{}, addrs: map[string]bool{}},
		sig:    make(chan os.Signal, 1),
		notes:  &notes{ch: make(chan string, 100)},
		cfg:    filepath.Join(dir, "config.yaml"),
		socket: filepath.Join(dir, "run", "xdprouter.sock"),
		done:   make(chan error, 1),
	}
	h.write(t, cfg)
	o := Options{
		ConfigFile: h.cfg, BPFFS: "/fake", Socket: h.socket, DetachOnExit: detach,
		Signals: h.sig, System: h.sys.open, Notify: h.notes, Log: quietLog,
		Pinned:   func() (Pinned, error) { return h.sys, nil },
		Learning: LearningOptions{Disabled: true},
	}
	go func() { h.done <- Run(context.Background(), o) }()
	h.notes.waitFor(t, "READY=1")
	return h
}

func (h *harness) write(t *testing.T, cfg string) {
	t.Helper()
	if err := os.WriteFile(h.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) status(t *testing.T) api.Status {
	t.Helper()
	st, err := api.NewClient(h.socket, "/fake").Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// reload sends SIGHUP and waits for the READY=1 that ends the reload.
func (h *harness) reload(t *testing.T) string {
	t.Helper()
	h.sig <- syscall.SIGHUP
	h.notes.waitFor(t, "RELOADING=1")
	return h.notes.waitFor(t, "READY=1")
}

func (h *harness) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	h.sig <- sig
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatalf("Run after %v: %v", sig, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("daemon did not stop on %v", sig)
	}
}

const cfgA = `
wan: {interface: w0}
lan: [{interface: l1, sla-id: 1, ipv4: 192.168.1.1/24}]
`

func TestReloadAndStop(t *testing.T) {
	h := start(t, cfgA, false)
	st := h.status(t)
	if st.Daemon == nil || st.Daemon.Generation != 1 || st.Daemon.Passes != 1 || st.Daemon.ConfigFile != h.cfg {
		t.Fatalf("status after start: %+v", st.Daemon)
	}
	if fi, err := os.Stat(h.socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v %v", fi, err)
	}

	// An invalid file is rejected, by field, and changes nothing.
	before, beforeAddrs := h.sys.snapshot()
	h.write(t, "wan: {interface: w0}\nlan: [{interface: l1, sla-id: 99999}]\n")
	if note := h.reload(t); !strings.Contains(note, "lan[0].sla-id: 99999 is out of range") {
		t.Errorf("STATUS after a rejected reload does not name the field: %q", note)
	}
	st = h.status(t)
	if st.Daemon.Generation != 1 || !strings.Contains(st.Daemon.LastReloadError, "lan[0].sla-id") {
		t.Errorf("status after a rejected reload: %+v", st.Daemon)
	}
	if now, nowAddrs := h.sys.snapshot(); !reflect.DeepEqual(now, before) || !reflect.DeepEqual(nowAddrs, beforeAddrs) {
		t.Errorf("a rejected reload changed the system: %v %v -> %v %v", before, beforeAddrs, now, nowAddrs)
	}

	// A valid one swaps roles and drops the address.
	h.write(t, "wan: {interface: l1}\nlan: [{interface: w0, sla-id: 2}]\n")
	h.reload(t)
	st = h.status(t)
	if st.Daemon.Generation != 2 || st.Daemon.LastReloadError != "" || st.Daemon.Errors != 0 {
		t.Errorf("status after a good reload: %+v", st.Daemon)
	}
	att, addrs := h.sys.snapshot()
	if want := map[string]string{"w0": "lan", "l1": "wan"}; !reflect.DeepEqual(att, want) || len(addrs) != 0 {
		t.Errorf("after reload: %v %v", att, addrs)
	}

	// SIGTERM stops cleanly and leaves the data plane as it is.
	h.stop(t, syscall.SIGTERM)
	if now, _ := h.sys.snapshot(); !reflect.DeepEqual(now, att) {
		t.Errorf("SIGTERM changed the data plane: %v -> %v", att, now)
	}
	if _, err := os.Stat(h.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after stop: %v", err)
	}
	h.notes.mu.Lock()
	defer h.notes.mu.Unlock()
	if last := h.notes.all[len(h.notes.all)-1]; last != "STOPPING=1" {
		t.Errorf("last sd_notify %q, want STOPPING=1", last)
	}
}

func TestDetachOnExit(t *testing.T) {
	h := start(t, cfgA, true)
	if att, addrs := h.sys.snapshot(); len(att) != 2 || len(addrs) != 1 {
		t.Fatalf("after start: %v %v", att, addrs)
	}
	h.stop(t, syscall.SIGINT)
	if att, addrs := h.sys.snapshot(); len(att) != 0 || len(addrs) != 0 {
		t.Errorf("--detach-on-exit left %v %v", att, addrs)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	h := start(t, cfgA, false)
	defer h.stop(t, syscall.SIGTERM)
	o := Options{ConfigFile: h.cfg, Socket: h.socket, Signals: make(chan os.Signal), System: h.sys.open, Notify: &notes{ch: make(chan string, 10)}, Log: quietLog}
	err := Run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "another xdprouter daemon") {
		t.Errorf("second daemon: %v", err)
	}
}

func TestSignals(t *testing.T) {
	ch := make(chan os.Signal, 1)
	reloads := 0
	s := &Signals{C: ch, Log: quietLog, Reload: func(context.Context) { reloads++ }}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	ch <- syscall.SIGHUP
	ch <- syscall.SIGUSR1 // ignored
	ch <- syscall.SIGHUP
	ch <- syscall.SIGTERM
	err := <-done
	var stop StopSignal
	if !errors.As(err, &stop) || stop.Signal != syscall.SIGTERM || reloads != 2 {
		t.Errorf("err %v, reloads %d", err, reloads)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}

// A daemon records the config in force; the next one (after kill -9, or
// an upgrade with a new config) removes what only the old config had.
func TestStateFileAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	sys := &fakeSystem{attached: map[string]string{}, addrs: map[string]bool{}}
	state := filepath.Join(dir, "applied.yaml")
	run := func(cfg string, detach bool) (chan os.Signal, chan error) {
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		sig, done, n := make(chan os.Signal, 1), make(chan error, 1), &notes{ch: make(chan string, 100)}
		o := Options{ConfigFile: path, Socket: filepath.Join(dir, "s.sock"), StateFile: state, DetachOnExit: detach,
			Signals: sig, System: sys.open, Notify: n, Log: slog.New(slog.NewTextHandler(testLog{t}, nil)),
			Pinned: func() (Pinned, error) { return sys, nil }, Learning: LearningOptions{Disabled: true}}
		go func() { done <- Run(context.Background(), o) }()
		n.waitOrExit(t, "READY=1", done)
		return sig, done
	}
	stop := func(sig chan os.Signal, done chan error) {
		sig <- syscall.SIGTERM
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}

	sig, done := run(cfgA, false)
	if got, _ := os.ReadFile(state); string(got) != cfgA {
		t.Errorf("state file %q, want the config in force", got)
	}
	stop(sig, done)

	// The next daemon's config no longer has l1 (nor its address).
	sig, done = run("wan: {interface: w0}\n", true)
	if att, addrs := sys.snapshot(); !reflect.DeepEqual(att, map[string]string{"w0": "wan"}) || len(addrs) != 0 {
		t.Errorf("after a restart with a smaller config: %v %v", att, addrs)
	}
	stop(sig, done)
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--detach-on-exit left the state file: %v", err)
	}
}
