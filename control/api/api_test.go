package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/loader"
)

type fakeBackend struct {
	err error
}

func (f fakeBackend) Status() (Status, error) {
	return Status{
		Status: loader.Status{BPFFS: "/x", Interfaces: []loader.InterfaceStatus{{Name: "eth0", Role: "wan"}}},
		Daemon: &Daemon{PID: 42, ConfigFile: "c.yaml", ReconcileStats: control.ReconcileStats{Generation: 3, Passes: 5, Errors: 1, LastError: "lan[0].ipv4: nope"}},
	}, f.err
}

func (fakeBackend) BPFFS() string { return "/x" }

func (f fakeBackend) Counters() ([]loader.Counter, error) {
	return []loader.Counter{{Name: "fwd_ipv4", Packets: 7, Bytes: 700}}, f.err
}

func serve(t *testing.T, path string, b Backend) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Path: path, Backend: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("socket %s left behind after the server stopped", path)
		}
	})
	// Dial, not stat: a stale file exists before the server replaced it.
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("server did not listen on %s", path)
}

func TestClientServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "x.sock")
	serve(t, path, fakeBackend{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v, want a 0600 socket", fi.Mode())
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v, want 0700", di.Mode().Perm())
	}
	c := NewClient(path, "")
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BPFFS != "/x" || len(st.Interfaces) != 1 || st.Daemon == nil || st.Daemon.Generation != 3 ||
		st.Daemon.LastError != "lan[0].ipv4: nope" || st.Daemon.PID != 42 {
		t.Errorf("status %+v daemon %+v", st, st.Daemon)
	}
	cs, err := c.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0] != (loader.Counter{Name: "fwd_ipv4", Packets: 7, Bytes: 700}) {
		t.Errorf("counters %+v", cs)
	}
	// Asking about the directory the daemon manages is fine, about another
	// one is "no daemon" (for that directory).
	if _, err := NewClient(path, "/x/").Status(ctx); err != nil {
		t.Errorf("same bpffs: %v", err)
	}
	if _, err := NewClient(path, "/y").Counters(ctx); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("other bpffs: %v, want ErrNoDaemon", err)
	}
	// A second daemon must not take the socket of a running one.
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "another xdprouter daemon") {
		t.Errorf("second Listen: %v", err)
	}
}

func TestBackendErrorReachesClient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sock")
	serve(t, path, fakeBackend{err: errors.New("maps are gone")})
	_, err := NewClient(path, "").Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "maps are gone") {
		t.Errorf("error %v", err)
	}
}

func TestNoDaemon(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	if _, err := NewClient(missing, "").Status(context.Background()); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("missing socket: %v, want ErrNoDaemon", err)
	}
	// What kill -9 leaves: the file, nobody listening.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := NewClient(stale, "").Counters(context.Background()); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("stale socket: %v, want ErrNoDaemon", err)
	}
	// and a new daemon replaces it.
	serve(t, stale, fakeBackend{})
	if _, err := NewClient(stale, "").Counters(context.Background()); err != nil {
		t.Errorf("after restart: %v", err)
	}
}
