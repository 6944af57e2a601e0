package dhcp6pd_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/dhcp6pd"
	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// pdLab is kea-dhcp6-server in an isp namespace and the client in a
// router namespace, joined by a veth.
type pdLab struct {
	lab    *netlab.Lab
	router string
	kea    *labkit.Kea
}

func newPDLab(t *testing.T) *pdLab {
	if os.Geteuid() != 0 {
		t.Skip("the DHCPv6-PD lab needs root: it creates network namespaces")
	}
	if _, err := os.Stat("/usr/sbin/kea-dhcp6"); err != nil {
		t.Skipf("needs kea-dhcp6-server (make test installs it): %v", err)
	}
	lab, isp, router := labkit.PairLab(t, labkit.End{NS: "isp", If: "to-router", Forwarding: true}, labkit.End{NS: "router", If: "wan0"})
	kea, err := labkit.StartKea(labkit.KeaConfig{
		Namespace: isp, Interface: "to-router",
		// Kea 2.2 does not choose among pools by the length hint (it
		// takes the first pool whatever the hint), so the pool delegates
		// the hinted length; the unit tests check the hint on the wire.
		Pools: []labkit.KeaPool{{Prefix: netip.MustParsePrefix("2001:db8:100::/48"), DelegatedLen: 60}},
		DNS:   []netip.Addr{netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("2001:db8::54")},
		Dir:   filepath.Join(lab.RunDir(), "kea"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kea.Stop()
		if t.Failed() {
			t.Logf("kea log:\n%s", kea.Log())
		}
	})
	return &pdLab{lab: lab, router: router, kea: kea}
}

// client is one Run of the client with what it published.
type client struct {
	c      *dhcp6pd.Client
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	mu     sync.Mutex
	pubs   []learned.Delegation
}

func (l *pdLab) start(t *testing.T, stateDir string, release bool) *client {
	mac, err := l.lab.MAC(l.router, "wan0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{done: make(chan error, 1)}
	c, err := dhcp6pd.New(dhcp6pd.Config{
		Interface: "wan0", PrefixLengthHint: 60, StateDir: stateDir, ReleaseOnExit: release, MAC: mac,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Publish: func(d learned.Delegation) {
			cl.mu.Lock()
			cl.pubs = append(cl.pubs, d)
			cl.mu.Unlock()
		},
		WatchLink: func(ctx context.Context, ifname string, up func()) error {
			return l.lab.Do(l.router, func() error { return dhcp6pd.NetlinkWatchLink(ctx, ifname, up) })
		},
		Listen: func(ifname string) (conn dhcp6pd.Conn, err error) {
			// The socket is opened inside the router namespace and stays there.
			if derr := l.lab.Do(l.router, func() error { conn, err = dhcp6pd.ListenUDP(ifname); return nil }); derr != nil {
				return nil, derr
			}
			return conn, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl.c = c
	ctx, cancel := context.WithCancel(context.Background())
	cl.cancel = cancel
	go func() { cl.done <- c.Run(ctx) }()
	t.Cleanup(func() { cl.stop(t) })
	return cl
}

func (cl *client) stop(t *testing.T) {
	cl.once.Do(func() {
		cl.cancel()
		select {
		case err := <-cl.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s of cancel")
		}
	})
}

func (cl *client) published() []learned.Delegation {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return slices.Clone(cl.pubs)
}

// waitFor polls the client until cond holds.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func TestLabKeaDelegation(t *testing.T) {
	l := newPDLab(t)
	state := t.TempDir()
	cl := l.start(t, state, false)

	// Bound: a /60 from the pool, with kea's DNS servers.
	waitFor(t, "a delegation", 30*time.Second, func() bool { return len(cl.c.Delegation().Prefixes) == 1 })
	d := cl.c.Delegation()
	got := d.Prefixes[0].Prefix
	t.Logf("delegated %s, DNS %v, server %s", got, d.DNS, d.ServerID)
	if got.Bits() != 60 || !netip.MustParsePrefix("2001:db8:100::/48").Contains(got.Addr()) {
		t.Errorf("delegated %s, want a /60 from 2001:db8:100::/48", got)
	}
	if !slices.Equal(d.DNS, []netip.Addr{netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("2001:db8::54")}) {
		t.Errorf("DNS %v", d.DNS)
	}
	if rem := learned.Remaining(d.Prefixes[0].Valid, time.Now()); rem < 25*time.Second || rem > 30*time.Second {
		t.Errorf("valid lifetime left %v, want about kea's 30 s", rem)
	}

	// Renew at T1 (4 s) refreshes the lease.
	firstValid := d.Prefixes[0].Valid
	waitFor(t, "a Renew", 15*time.Second, func() bool { return cl.c.Stats().Renewed >= 1 })
	d = cl.c.Delegation()
	if len(d.Prefixes) != 1 || d.Prefixes[0].Prefix != got || !d.Prefixes[0].Valid.After(firstValid.Add(3*time.Second)) {
		t.Errorf("after Renew: %+v (valid was until %v)", d, firstValid)
	}
	st := cl.c.Stats()
	t.Logf("stats after renew: state %s sent %v received %v", st.State, st.Sent, st.Received)
	if st.Sent["renew"] < 1 || st.Received["reply"] < 2 {
		t.Errorf("stats %+v", st)
	}

	// Kill kea right after a renewal: the next Renew (T1) and Rebind (T2)
	// go unanswered, the Rebind retransmission after the restart succeeds
	// long before the 30 s valid lifetime ends.
	renewed := st.Renewed
	waitFor(t, "the next Renew", 15*time.Second, func() bool { return cl.c.Stats().Renewed > renewed })
	l.kea.Kill()
	killedAt := time.Now()
	before := cl.c.Stats()
	time.Sleep(7 * time.Second)
	if err := l.kea.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("kea down for %v", time.Since(killedAt).Round(time.Millisecond))
	waitFor(t, "Renew or Rebind answered by the restarted kea", 40*time.Second, func() bool {
		s := cl.c.Stats()
		return s.Renewed+s.Rebound > before.Renewed+before.Rebound
	})
	after := cl.c.Stats()
	t.Logf("after restart: renewed %d rebound %d retransmissions %d, sent %v", after.Renewed, after.Rebound, after.Retransmissions, after.Sent)
	if after.Sent["rebind"] == 0 {
		t.Errorf("no Rebind while kea was down: %v", after.Sent)
	}
	for i, p := range cl.published() {
		if len(p.Prefixes) != 1 || p.Prefixes[0].Prefix != got {
			t.Errorf("publication %d: %+v: the prefix was lost or changed", i, p)
		}
	}
	if after.Expired != 0 {
		t.Errorf("%d expiries", after.Expired)
	}
	cl.stop(t)

	// Same state directory, same DUID and IAID: kea hands the prefix back
	// (also to the run that will release it at exit).
	for _, release := range []bool{false, true} {
		cl2 := l.start(t, state, release)
		waitFor(t, "the next run's delegation", 30*time.Second, func() bool { return len(cl2.c.Delegation().Prefixes) == 1 })
		if p := cl2.c.Delegation().Prefixes[0].Prefix; p != got {
			t.Errorf("next run got %s, first %s", p, got)
		}
		if cl2.c.Stats().DUID != after.DUID {
			t.Error("DUID changed between runs")
		}
		cl2.stop(t)
		if !release {
			// A fresh state directory is another customer: kea, still
			// holding the first prefix for the stored DUID, delegates a
			// different one.
			cl3 := l.start(t, t.TempDir(), false)
			waitFor(t, "a fresh client's delegation", 30*time.Second, func() bool { return len(cl3.c.Delegation().Prefixes) == 1 })
			if p := cl3.c.Delegation().Prefixes[0].Prefix; p == got {
				t.Errorf("a client with a new DUID got the same prefix %s", p)
			}
			cl3.stop(t)
			continue
		}
		// ReleaseOnExit: kea acknowledges the Release and the loss is
		// published.
		if st := cl2.c.Stats(); st.Sent["release"] == 0 || st.Received["reply"] < 2 {
			t.Errorf("release stats %+v", st)
		}
		if pubs := cl2.published(); len(pubs[len(pubs)-1].Prefixes) != 0 {
			t.Errorf("last publication %+v, want the release", pubs[len(pubs)-1])
		}
	}
	waitFor(t, "kea logging the release", 5*time.Second, func() bool {
		return strings.Contains(l.kea.Log(), "RELEASE_PD")
	})
}
