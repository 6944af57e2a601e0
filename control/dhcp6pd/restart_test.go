package dhcp6pd

import (
	"context"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// lateServer is a home gateway whose DHCPv6 server starts at t0+up: it
// answers nothing before.
func lateServer(f *fakeNet, s *fakeServer, up time.Duration) {
	s.silent[dhcpv6.MessageTypeSolicit] = true
	f.at(up, func() { s.silent[dhcpv6.MessageTypeSolicit] = false })
}

func boundAt(t *testing.T, r *run) time.Duration {
	t.Helper()
	for _, p := range r.published {
		if len(p.d.Prefixes) > 0 {
			return p.at.Sub(t0)
		}
	}
	t.Fatalf("never bound; sent %d Solicits", len(r.f.sentOf(dhcpv6.MessageTypeSolicit)))
	return 0
}

// Issue 13 item 12: the server comes up 40 s after the client started.
// Without a restart the client's Solicit has backed off (1, 2, 4, 8, 16,
// 32 s: the next one ~63 s after the first); when the HGW's RA with the
// M flag appears, a Restart solicits at once and the prefix is bound
// within about two seconds.
func TestLateServerBoundAfterBackoffWithoutRestart(t *testing.T) {
	s := newServer(1, pfx)
	r := newRun(t, t.TempDir(), Config{}, s)
	lateServer(r.f, s, 40*time.Second)
	r.until(200 * time.Second)
	if at := boundAt(t, r); at < 55*time.Second {
		t.Fatalf("bound at %v: the fake does not model the backoff this test is about", at)
	}
}

func TestRestartOnManagedRASolicitsAtOnce(t *testing.T) {
	s := newServer(1, pfx)
	r := newRun(t, t.TempDir(), Config{}, s)
	lateServer(r.f, s, 40*time.Second)
	r.f.at(40*time.Second, func() { r.c.Restart("RA with M flag from fe80::1") })
	r.until(200 * time.Second)
	if at := boundAt(t, r); at > 43*time.Second {
		t.Errorf("bound at %v, want within 3 s of the RA at 40 s", at)
	}
	st := r.c.Stats()
	if st.Restarts != 1 {
		t.Errorf("restarts %d, want 1", st.Restarts)
	}
	// The restarted exchange is a new one: a new transaction, elapsed
	// time from 0.
	sol := r.f.sentOf(dhcpv6.MessageTypeSolicit)
	var after []sentMsg
	for _, m := range sol {
		if !m.at.Before(t0.Add(40 * time.Second)) {
			after = append(after, m)
		}
	}
	if len(after) != 1 || after[0].m.TransactionID == sol[0].m.TransactionID || after[0].m.Options.ElapsedTime() != 0 {
		t.Errorf("Solicits after the restart: %d; want one new transaction starting at elapsed 0", len(after))
	}
}

func TestRestartOnLinkUp(t *testing.T) {
	s := newServer(1, pfx)
	ups := make(chan func(), 1)
	cfg := Config{WatchLink: func(ctx context.Context, ifname string, up func()) error {
		if ifname != "wan0" {
			t.Errorf("watching %q", ifname)
		}
		ups <- up
		<-ctx.Done()
		return nil
	}}
	r := newRun(t, t.TempDir(), cfg, s)
	lateServer(r.f, s, 30*time.Second)
	r.f.at(30*time.Second, func() { (<-ups)() })
	r.until(200 * time.Second)
	if at := boundAt(t, r); at > 33*time.Second {
		t.Errorf("bound at %v, want within 3 s of the link coming up at 30 s", at)
	}
	if st := r.c.Stats(); st.Restarts != 1 {
		t.Errorf("restarts %d, want 1", st.Restarts)
	}
}

// Restarts are bounded: not while a Solicit is due soon, not more than
// one per MinRestartGap, never once bound.
func TestRestartBounded(t *testing.T) {
	s := newServer(1, pfx)
	s.silent[dhcpv6.MessageTypeSolicit] = true
	r := newRun(t, t.TempDir(), Config{}, s)
	restart := func() { r.c.Restart("test") }
	r.f.at(20*time.Second, restart) // acts
	r.f.at(20*time.Second, restart) // the restarted Solicit is due within 1 s: nothing to gain
	for d := 25 * time.Second; d < 30*time.Second; d += time.Second {
		r.f.at(d, restart) // within the gap: skipped (or due soon)
	}
	r.f.at(40*time.Second, func() { s.silent[dhcpv6.MessageTypeSolicit] = false; restart() })
	r.f.at(100*time.Second, restart) // bound: left alone
	r.until(200 * time.Second)
	st := r.c.Stats()
	if st.Restarts != 2 || st.RestartsSkipped < 1 {
		t.Errorf("restarts %d, skipped %d; want 2 and at least 1", st.Restarts, st.RestartsSkipped)
	}
	if st.State != StateStopped || st.Binding == nil {
		t.Errorf("state %s, binding %+v: want bound until the end", st.State, st.Binding)
	}
	if n := len(r.f.sentOf(dhcpv6.MessageTypeRequest)); n != 1 {
		t.Errorf("%d Requests, want 1: a restart while bound must change nothing", n)
	}
}
