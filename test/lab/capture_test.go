package lab

import (
	"context"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// startCapture runs tcpdump on dev in ns, keeping what filter (a pcap
// filter expression's words) matches, until the returned stop is called.
func startCapture(t *testing.T, lab *netlab.Lab, ns, dev, file string, filter ...string) func() {
	t.Helper()
	cmd := lab.Command(ns, append([]string{"tcpdump", "-i", dev, "-U", "-n", "-w", file}, filter...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// tcpdump says "listening on" once the capture is open.
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 512)
		var seen strings.Builder
		for {
			n, err := stderr.Read(buf)
			seen.Write(buf[:n])
			if strings.Contains(seen.String(), "listening on") {
				close(ready)
				io.Copy(io.Discard, stderr)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("tcpdump on %s did not start", dev)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		time.Sleep(200 * time.Millisecond) // let the last packets be written
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}
	t.Cleanup(stop)
	return stop
}

// countCaptured is how many packets of the capture file match filter
// (tcpdump -r; no filter: all of them).
func countCaptured(t *testing.T, ctx context.Context, file string, filter ...string) int {
	t.Helper()
	res, err := labkit.Runner{}.Run(ctx, nil, append([]string{"tcpdump", "-n", "-r", file}, filter...)...)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(res.Stdout, "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}
