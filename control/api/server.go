package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Server serves a Backend on a unix socket.
type Server struct {
	Path    string
	Backend Backend
	Log     *slog.Logger
}

// Run listens until ctx ends, then removes the socket.
func (s *Server) Run(ctx context.Context) error {
	ln, err := Listen(s.Path)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln (from Listen) until ctx ends, then closes it, which
// removes the socket file.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		if s.otherInstance(w, r) {
			return
		}
		st, err := s.Backend.Status()
		s.reply(w, r, st, err)
	})
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		if s.otherInstance(w, r) {
			return
		}
		cs, err := s.Backend.Counters()
		s.reply(w, r, cs, err)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.Log.Info("status API listening", "socket", s.Path)
	select {
	case err := <-errc:
		return fmt.Errorf("status API on %s: %w", s.Path, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Shutdown closes the listener, which unlinks the socket file; but a
	// stop that comes before the serving goroutine has even started finds
	// no listener to close, and Serve closes it only once it runs. Wait
	// for it, so that the socket is gone when the daemon is: the next one
	// would otherwise find it still answering.
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("stop status API: %w", err)
	}
	return nil
}

// otherInstance answers 409 when the client asks about another --bpffs
// than this daemon's: several instances can share a machine, and a
// client must not show one instance's state as another's.
func (s *Server) otherInstance(w http.ResponseWriter, r *http.Request) bool {
	want := r.URL.Query().Get("bpffs")
	if want == "" || filepath.Clean(want) == filepath.Clean(s.Backend.BPFFS()) {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusConflict)
	_ = json.NewEncoder(w).Encode(errorBody{Error: "this daemon manages " + s.Backend.BPFFS()})
	return true
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		s.Log.Warn("status API request failed", "path", r.URL.Path, "error", err)
		w.WriteHeader(http.StatusInternalServerError)
		v = errorBody{Error: err.Error()}
	}
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.Log.Warn("status API reply", "path", r.URL.Path, "error", err)
	}
}

// Listen opens the socket at path, readable and writable by root only
// (the API shows the whole configuration state). A socket file left by a
// daemon that was killed is replaced; one that answers belongs to a
// running daemon, and then Listen fails rather than steal it.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another xdprouter daemon is listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	// The umask makes the file 0600 from the start: a chmod afterwards
	// would leave a moment in which anyone could connect.
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return ln, nil
}

// ErrNoDaemon means nothing listens on the socket.
var ErrNoDaemon = errors.New("no xdprouter daemon is running")
