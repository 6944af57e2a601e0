package labkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Daemon is an `xdprouter run` in the router namespace.
type Daemon struct {
	cmd     *exec.Cmd
	Cmdline string
	Socket  string
	log     *syncBuffer
	exited  chan struct{}
	waitErr error
}

// syncBuffer collects the daemon's log while tests read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WithSocket returns c talking to the daemon on socket.
func (c CLI) WithSocket(socket string) CLI {
	c.Socket = socket
	return c
}

// StartDaemon starts `xdprouter run --config config args...` and waits until
// its status API reports the initial config in force. `ip netns exec` and
// xdprouter's own re-exec (nsenter) replace the process image, so the
// process started here is the daemon: its pid is what kill -9 hits.
func (c CLI) StartDaemon(ctx context.Context, config string, args ...string) (*Daemon, error) {
	return c.StartDaemonEnv(ctx, nil, config, args...)
}

// StartDaemonEnv is StartDaemon with extra environment variables.
func (c CLI) StartDaemonEnv(ctx context.Context, env []string, config string, args ...string) (*Daemon, error) {
	argv := c.Argv(append([]string{"run", "--config", config}, args...)...)
	d := &Daemon{Cmdline: Cmdline(env, argv), Socket: c.Socket, log: &syncBuffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	c.logger().Logf("$ %s &", d.Cmdline)
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Cmdline, err)
	}
	go func() { d.waitErr = d.cmd.Wait(); close(d.exited) }()
	// The first pass loads and verifies every program variant: seconds
	// here, over 20 s in a 6.1 guest under TCG (the kernel matrix).
	const readyWithin = 90 * time.Second
	deadline := time.Now().Add(readyWithin)
	for {
		st, err := c.quiet().Status(ctx)
		if err == nil && st.Daemon != nil && st.Daemon.PID == d.cmd.Process.Pid && st.Daemon.Generation >= 1 {
			return d, nil
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("%s exited before it was ready: %v\n%s", d.Cmdline, d.waitErr, d.Log())
		case <-ctx.Done():
			d.Kill()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.Kill()
			return nil, fmt.Errorf("%s: not ready after %v (last status error: %v)\n%s", d.Cmdline, readyWithin, err, d.Log())
		}
	}
}

// PID is the daemon's process id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Log is what the daemon wrote so far.
func (d *Daemon) Log() string { return d.log.String() }

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig syscall.Signal) error {
	return d.cmd.Process.Signal(sig)
}

// Kill is kill -9, and waits until the process is gone.
func (d *Daemon) Kill() {
	_ = d.cmd.Process.Kill()
	<-d.exited
}

// Stop sends sig and waits for the daemon to exit; a non-zero exit is an
// error carrying the daemon's log.
func (d *Daemon) Stop(sig syscall.Signal, timeout time.Duration) error {
	if err := d.cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-d.exited:
	case <-time.After(timeout):
		d.Kill()
		return fmt.Errorf("daemon did not exit within %v of %v", timeout, sig)
	}
	if d.waitErr != nil {
		return fmt.Errorf("daemon exited after %v: %v\n%s", sig, d.waitErr, d.Log())
	}
	return nil
}

// Exited reports whether the process has ended.
func (d *Daemon) Exited() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// WaitLog waits until the daemon's log contains s.
func (d *Daemon) WaitLog(ctx context.Context, s string) error {
	for !strings.Contains(d.Log(), s) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("daemon log has no %q: %w\n%s", s, ctx.Err(), d.Log())
		case <-d.exited:
			return fmt.Errorf("daemon exited (%v) without logging %q\n%s", d.waitErr, s, d.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// DaemonStatus is the "daemon" object of `status --json` while a daemon
// runs, declared here for the same reason as Status.
type DaemonStatus struct {
	PID             int                        `json:"pid"`
	ConfigFile      string                     `json:"config_file"`
	Generation      uint64                     `json:"config_generation"`
	Passes          uint64                     `json:"reconciles"`
	Errors          uint64                     `json:"reconcile_errors"`
	LastDurationNS  int64                      `json:"last_duration_ns"`
	LastError       string                     `json:"last_error"`
	LastReloadError string                     `json:"last_reload_error"`
	IPv6            *IPv6Status                `json:"ipv6"`
	Tasks           map[string]json.RawMessage `json:"tasks"`
}

// IPv6Status is what the daemon made of the learned prefixes.
type IPv6Status struct {
	WANAddress struct {
		Address string `json:"address"`
	} `json:"wan_address"`
	Gateway   string `json:"gateway"`
	Delegated []struct {
		Prefix string `json:"prefix"`
	} `json:"delegated"`
	LANs []struct {
		Interface string `json:"interface"`
		Prefix    struct {
			Prefix string `json:"prefix"`
		} `json:"prefix"`
		Address struct {
			Address string `json:"address"`
		} `json:"address"`
		Retired []struct {
			Prefix string `json:"prefix"`
		} `json:"retired"`
		Fixed []struct {
			Tunnel  string `json:"tunnel"`
			Prefix  string `json:"prefix"`
			Address struct {
				Address string `json:"address"`
			} `json:"address"`
		} `json:"fixed_prefixes"`
	} `json:"lans"`
	DNS []struct {
		Addr string `json:"addr"`
	} `json:"dns"`
	Pending []string `json:"pending"`
}
