package daemon

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeSysctls is /proc/sys as a map; a path not in it does not exist.
type fakeSysctls struct {
	mu       sync.Mutex
	v        map[string]string
	readOnly map[string]bool
}

func (f *fakeSysctls) Get(p string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.v[p]
	if !ok {
		return "", fs.ErrNotExist
	}
	return v, nil
}

func (f *fakeSysctls) Set(p, v string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.v[p]; !ok {
		return fs.ErrNotExist
	}
	if f.readOnly[p] {
		return errors.New("read-only file system")
	}
	f.v[p] = v
	if p == "net/ipv6/conf/all/forwarding" { // the kernel copies it to every port
		for k := range f.v {
			if strings.HasSuffix(k, "/forwarding") {
				f.v[k] = v
			}
		}
	}
	return nil
}

func (f *fakeSysctls) snapshot() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, v := range f.v {
		out[k] = v
	}
	return out
}

// A host as it comes: not a router, every port taking RAs; the LAN
// interface l1 has a dot-free name, the WAN w0.
func hostSysctls() *fakeSysctls {
	return &fakeSysctls{v: map[string]string{
		"net/ipv4/ip_forward":              "0",
		"net/ipv6/conf/all/forwarding":     "0",
		"net/ipv6/conf/default/forwarding": "0",
		"net/ipv6/conf/w0/forwarding":      "0",
		"net/ipv6/conf/w0/accept_ra":       "2",
		"net/ipv6/conf/l1/forwarding":      "0",
		"net/ipv6/conf/l1/accept_ra":       "1",
		"net/ipv6/conf/eth9/accept_ra":     "1",
	}, readOnly: map[string]bool{}}
}

func runWithSysctls(t *testing.T, dir string, s *fakeSysctls, detach bool) (*harness, error) {
	t.Helper()
	h := &harness{
		sys:    &fakeSystem{attached: map[string]string{}, addrs: map[string]bool{}},
		sig:    make(chan os.Signal, 1),
		notes:  &notes{ch: make(chan string, 100)},
		cfg:    filepath.Join(dir, "config.yaml"),
		socket: filepath.Join(dir, "run", "xdprouter.sock"),
		done:   make(chan error, 1),
	}
	h.write(t, cfgA)
	o := Options{
		ConfigFile: h.cfg, BPFFS: "/fake", Socket: h.socket, StateFile: filepath.Join(dir, "run", "xdprouter.applied.yaml"),
		DetachOnExit: detach, Signals: h.sig, System: h.sys.open, Notify: h.notes, Log: quietLog,
		Pinned:   func() (Pinned, error) { return h.sys, nil },
		Learning: LearningOptions{Disabled: true}, Sysctls: s,
	}
	go func() { h.done <- Run(context.Background(), o) }()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case err := <-h.done:
			return nil, err
		case n := <-h.notes.ch:
			if strings.HasPrefix(n, "READY=1") {
				return h, nil
			}
		case <-timeout:
			t.Fatal("no READY=1")
		}
	}
}

// Issue 13 item 11: a daemon on a host with forwarding off turns it on
// (and its ports into routers) before it says ready, and --detach-on-exit
// puts back what it found, also when a daemon in between was stopped
// without detaching.
func TestSysctlsSetAndRestored(t *testing.T) {
	s := hostSysctls()
	before := s.snapshot()
	dir := t.TempDir()
	h, err := runWithSysctls(t, dir, s, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"net/ipv4/ip_forward":              "1", // lan[0] has ipv4
		"net/ipv6/conf/all/forwarding":     "1",
		"net/ipv6/conf/default/forwarding": "1",
		"net/ipv6/conf/w0/forwarding":      "1",
		"net/ipv6/conf/w0/accept_ra":       "0", // the daemon reads the WAN's RAs itself
		"net/ipv6/conf/l1/forwarding":      "1",
		"net/ipv6/conf/l1/accept_ra":       "0", // not from its own RAs
		"net/ipv6/conf/eth9/accept_ra":     "1", // not the daemon's
	}
	if got := s.snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("at READY=1:\n got %v\nwant %v", got, want)
	}
	// A plain stop keeps them: the data plane keeps forwarding.
	h.stop(t, syscall.SIGTERM)
	if got := s.snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("after SIGTERM: %v", got)
	}
	// The next daemon finds them set, and still restores the originals.
	h, err = runWithSysctls(t, dir, s, true)
	if err != nil {
		t.Fatal(err)
	}
	h.stop(t, syscall.SIGTERM)
	if got := s.snapshot(); !reflect.DeepEqual(got, before) {
		t.Errorf("after --detach-on-exit:\n got %v\nwant %v", got, before)
	}
	if _, err := os.Stat(filepath.Join(dir, "run", "xdprouter.applied.sysctl.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("sysctl record left after restoring: %v", err)
	}
}

// One that cannot be set stops the start, named as sysctl(8) names it.
func TestSysctlForwardingRefused(t *testing.T) {
	s := hostSysctls()
	s.readOnly["net/ipv6/conf/all/forwarding"] = true
	_, err := runWithSysctls(t, t.TempDir(), s, false)
	if err == nil || !strings.Contains(err.Error(), "net.ipv6.conf.all.forwarding is 0 and could not be set to 1") {
		t.Fatalf("start: %v", err)
	}
}

func TestSysctlName(t *testing.T) {
	if got := sysctlName("net/ipv6/conf/eth0.100/accept_ra"); got != "net.ipv6.conf.eth0/100.accept_ra" {
		t.Errorf("%q", got)
	}
}
