package dhcp6pd_test

import (
	"testing"
	"time"
)

// TestLabLinkUpRestartsSolicit (issue 13 item 12): the client starts
// while the server is down, and its Solicits back off (five by ~15 s, the
// next due ~31 s in). The server comes up and the WAN link goes down and
// up (the HGW's port coming back after a power cut): the client solicits
// at once and is bound within seconds, not at the next backed-off
// Solicit.
func TestLabLinkUpRestartsSolicit(t *testing.T) {
	l := newPDLab(t)
	l.kea.Stop()
	cl := l.start(t, t.TempDir(), false)
	waitFor(t, "five Solicits", 30*time.Second, func() bool { return cl.c.Stats().Sent["solicit"] >= 5 })
	if err := l.kea.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := l.lab.MustExec(l.router, []string{"ip", "link", "set", "wan0", "down"}, []string{"ip", "link", "set", "wan0", "up"}); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	waitFor(t, "a delegation after the link came up", 8*time.Second, func() bool { return len(cl.c.Delegation().Prefixes) == 1 })
	st := cl.c.Stats()
	t.Logf("bound %v after the link came up; %d Solicits, %d restarts", time.Since(up).Round(10*time.Millisecond), st.Sent["solicit"], st.Restarts)
	if st.Restarts < 1 {
		t.Errorf("restarts %d: bound without a restart?", st.Restarts)
	}
}
