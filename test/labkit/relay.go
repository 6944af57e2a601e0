package labkit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// relay is a lab peer in Python (aftr.py, broker.py) that says "ready" on
// stdout once it listens, writes its counters as JSON to stats on
// SIGUSR1 and stops on SIGTERM.
type relay struct {
	name  string
	cmd   *exec.Cmd
	stats string
}

// start runs cmd and waits for its "ready".
func (r *relay) start(ctx context.Context, cmd *exec.Cmd) error {
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", r.name, err)
	}
	r.cmd = cmd
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("%s said %q", r.name, line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("%s did not start: %w", r.name, err)
		}
	case <-time.After(20 * time.Second):
		return fmt.Errorf("%s not ready after 20s", r.name)
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// readStats asks the relay for its counters and decodes them into v.
func (r *relay) readStats(v any) error {
	if r.cmd == nil {
		return fmt.Errorf("%s not started", r.name)
	}
	_ = os.Remove(r.stats)
	if err := r.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return fmt.Errorf("signal %s: %w", r.name, err)
	}
	for range 50 {
		if data, err := os.ReadFile(r.stats); err == nil {
			return json.Unmarshal(data, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s wrote no stats to %s", r.name, r.stats)
}

// stop ends the relay, killing it after 3 s.
func (r *relay) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
}
