package dhcp6pd

import (
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/xdprouter/xdprouter/control/learned"
)

const pfx = "2001:db8:100:200::/56"

func TestFullExchange(t *testing.T) {
	s := newServer(1, pfx)
	r := newRun(t, t.TempDir(), Config{PrefixLengthHint: 56}, s).until(10 * time.Second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	sol := r.f.sentOf(dhcpv6.MessageTypeSolicit)
	req := r.f.sentOf(dhcpv6.MessageTypeRequest)
	if len(sol) != 1 || len(req) != 1 {
		t.Fatalf("sent %d Solicit, %d Request; want 1 each", len(sol), len(req))
	}
	if d := sol[0].at.Sub(t0); d < 0 || d > time.Second {
		t.Errorf("first Solicit delayed %v, want 0-1 s", d)
	}
	m := sol[0].m
	if m.Options.ServerID() != nil {
		t.Error("Solicit carries a Server ID")
	}
	if !m.IsOptionRequested(dhcpv6.OptionDNSRecursiveNameServer) {
		t.Error("Solicit does not request DNS servers (ORO 23)")
	}
	if m.Options.ElapsedTime() != 0 {
		t.Errorf("first Solicit's elapsed time %v", m.Options.ElapsedTime())
	}
	hint := m.Options.OneIAPD().Options.Prefixes()
	if len(hint) != 1 || hint[0].Prefix.String() != "::/56" {
		t.Errorf("Solicit's prefix hint %v, want ::/56", hint)
	}
	// The Advertise is collected for the first RT (more than IRT), then
	// the Request goes to its server for its prefix.
	if d := req[0].at.Sub(sol[0].at); d <= solTimeout || d > solTimeout*11/10 {
		t.Errorf("Request %v after the Solicit, want within (1 s, 1.1 s]", d)
	}
	if !sameDUID(req[0].m.Options.ServerID(), s.duid) {
		t.Errorf("Request's server ID %v, want the advertising server's", req[0].m.Options.ServerID())
	}
	if got := req[0].m.Options.OneIAPD().Options.Prefixes(); len(got) != 1 || got[0].Prefix.String() != pfx {
		t.Errorf("Request asks for %v, want %s", got, pfx)
	}
	if !sameDUID(req[0].m.Options.ClientID(), sol[0].m.Options.ClientID()) || req[0].m.TransactionID == sol[0].m.TransactionID {
		t.Error("Request must keep the client ID and use a new transaction")
	}

	if len(r.published) != 1 {
		t.Fatalf("published %d times, want once (bound): %+v", len(r.published), r.published)
	}
	bound := r.published[0]
	d := bound.d
	if d.Interface != "wan0" || len(d.Prefixes) != 1 || d.Prefixes[0].Prefix != netip.MustParsePrefix(pfx) {
		t.Fatalf("published %+v", d)
	}
	if !d.Prefixes[0].Valid.Equal(bound.at.Add(s.valid)) || !d.Prefixes[0].Preferred.Equal(bound.at.Add(s.preferred)) {
		t.Errorf("lifetimes %v/%v, want received+%v/+%v", d.Prefixes[0].Valid, d.Prefixes[0].Preferred, s.valid, s.preferred)
	}
	if !d.T1.Equal(bound.at.Add(s.t1)) || !d.T2.Equal(bound.at.Add(s.t2)) {
		t.Errorf("T1/T2 %v/%v", d.T1, d.T2)
	}
	if len(d.DNS) != 1 || d.DNS[0] != s.dns[0] {
		t.Errorf("DNS %v, want %v", d.DNS, s.dns)
	}
	if d.ServerID != hex.EncodeToString(s.duid.ToBytes()) {
		t.Errorf("server ID %q", d.ServerID)
	}
	st := r.c.Stats()
	if st.Sent["solicit"] != 1 || st.Sent["request"] != 1 || st.Received["advertise"] != 1 || st.Received["reply"] != 1 || st.Bound != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestBoundStatsAndKeepOnExit(t *testing.T) {
	s := newServer(1, pfx)
	r := newRun(t, t.TempDir(), Config{}, s).until(100 * time.Second)
	// Without ReleaseOnExit the delegation is kept: no Release, no loss.
	if n := len(r.f.sentOf(dhcpv6.MessageTypeRelease)); n != 0 {
		t.Errorf("%d Release sent without ReleaseOnExit", n)
	}
	if len(r.published) != 1 || len(r.last().Prefixes) != 1 {
		t.Errorf("published %+v, want the binding only", r.published)
	}
	st := r.c.Stats()
	if st.Binding == nil || len(st.Binding.Prefixes) != 1 {
		t.Fatalf("stats binding %+v", st.Binding)
	}
	// About 98 s of 4000 have passed.
	if v := st.Binding.Prefixes[0].Valid; v < 3900 || v > 3999 {
		t.Errorf("valid lifetime left %d", v)
	}
	if st.State != StateStopped {
		t.Errorf("state %s after exit", st.State)
	}
}

func TestReleaseOnExit(t *testing.T) {
	s := newServer(1, pfx)
	r := newRun(t, t.TempDir(), Config{ReleaseOnExit: true}, s).until(100 * time.Second)
	rel := r.f.sentOf(dhcpv6.MessageTypeRelease)
	if len(rel) != 1 {
		t.Fatalf("%d Release sent, want 1 (answered at once)", len(rel))
	}
	if !sameDUID(rel[0].m.Options.ServerID(), s.duid) {
		t.Error("Release without the server's ID")
	}
	if p := rel[0].m.Options.OneIAPD().Options.Prefixes(); len(p) != 1 || p[0].Prefix.String() != pfx {
		t.Errorf("Release names %v", p)
	}
	if len(r.last().Prefixes) != 0 {
		t.Errorf("the release is not published: %+v", r.last())
	}
	// A silent server: Release is retransmitted, and exit does not hang.
	s2 := newServer(1, pfx)
	r2 := newRun(t, t.TempDir(), Config{ReleaseOnExit: true}, s2)
	s2.hook = func(now time.Time, m *dhcpv6.Message) {
		s2.silent[dhcpv6.MessageTypeRelease] = true
	}
	r2.until(100 * time.Second)
	if n := len(r2.f.sentOf(dhcpv6.MessageTypeRelease)); n < 2 || n > relMaxRC {
		t.Errorf("%d Release transmissions to a silent server, want 2-%d", n, relMaxRC)
	}
	if r2.f.now.Sub(t0.Add(100*time.Second)) > releaseWait {
		t.Errorf("exit took %v", r2.f.now.Sub(t0.Add(100*time.Second)))
	}
}

func TestRenewAtT1CarriesServerID(t *testing.T) {
	s := newServer(1, pfx)
	r := newRun(t, t.TempDir(), Config{}, s).until(1200 * time.Second)
	bound := r.published[0].at
	ren := r.f.sentOf(dhcpv6.MessageTypeRenew)
	if len(ren) != 1 {
		t.Fatalf("%d Renew, want 1", len(ren))
	}
	if !ren[0].at.Equal(bound.Add(s.t1)) {
		t.Errorf("Renew at %v, want T1 = %v", ren[0].at.Sub(t0), bound.Add(s.t1).Sub(t0))
	}
	if !sameDUID(ren[0].m.Options.ServerID(), s.duid) {
		t.Error("Renew lacks the server's ID")
	}
	if p := ren[0].m.Options.OneIAPD().Options.Prefixes(); len(p) != 1 || p[0].Prefix.String() != pfx {
		t.Errorf("Renew names %v", p)
	}
	if len(r.published) != 2 {
		t.Fatalf("published %d times, want bound and renewed", len(r.published))
	}
	if got := r.published[1].d.Prefixes[0].Valid; !got.Equal(ren[0].at.Add(s.valid)) {
		t.Errorf("renewed valid deadline %v, want %v", got, ren[0].at.Add(s.valid))
	}
	if st := r.c.Stats(); st.Renewed != 1 || st.Sent["renew"] != 1 {
		t.Errorf("stats renewed %d sent %v", st.Renewed, st.Sent)
	}
}

func TestRebindAtT2WhenServerSilent(t *testing.T) {
	s := newServer(1, pfx)
	s.silent[dhcpv6.MessageTypeRenew] = true
	r := newRun(t, t.TempDir(), Config{}, s).until(1700 * time.Second)
	bound := r.published[0].at
	ren := r.f.sentOf(dhcpv6.MessageTypeRenew)
	reb := r.f.sentOf(dhcpv6.MessageTypeRebind)
	// Renew at T1 and every RT (10 s, ~20 s, ~40 s, ...) until T2.
	if len(ren) < 4 || !ren[0].at.Equal(bound.Add(s.t1)) {
		t.Fatalf("Renews at %v", ren)
	}
	for _, m := range ren {
		if !m.at.Before(bound.Add(s.t2)) {
			t.Errorf("Renew at %v, after T2", m.at.Sub(bound))
		}
	}
	if len(reb) != 1 || !reb[0].at.Equal(bound.Add(s.t2)) {
		t.Fatalf("Rebind at %v, want one at T2", reb)
	}
	if reb[0].m.Options.ServerID() != nil {
		t.Error("Rebind carries a Server ID")
	}
	if p := reb[0].m.Options.OneIAPD().Options.Prefixes(); len(p) != 1 || p[0].Prefix.String() != pfx {
		t.Errorf("Rebind names %v", p)
	}
	st := r.c.Stats()
	if st.Rebound != 1 || st.Renewed != 0 || st.Retransmissions < 3 {
		t.Errorf("stats %+v", st)
	}
	if len(r.last().Prefixes) != 1 || !r.last().Prefixes[0].Valid.Equal(reb[0].at.Add(s.valid)) {
		t.Errorf("rebound delegation %+v", r.last())
	}
}

func TestExpiryWithdrawsPrefix(t *testing.T) {
	s := newServer(1, pfx)
	var boundAt time.Time
	s.hook = func(now time.Time, m *dhcpv6.Message) {
		if m.MessageType == dhcpv6.MessageTypeRenew {
			// The ISP goes away once the binding is made.
			for _, typ := range []dhcpv6.MessageType{1, 3, 5, 6} {
				s.silent[typ] = true
			}
		}
	}
	r := newRun(t, t.TempDir(), Config{}, s).until(4100 * time.Second)
	boundAt = r.published[0].at
	if len(r.published) != 2 {
		t.Fatalf("published %+v, want bound then lost", r.published)
	}
	lost := r.published[1]
	if len(lost.d.Prefixes) != 0 || lost.d.Interface != "wan0" {
		t.Errorf("loss published as %+v", lost.d)
	}
	if !lost.at.Equal(boundAt.Add(s.valid)) {
		t.Errorf("loss at %v, want at the valid lifetime %v", lost.at.Sub(boundAt), s.valid)
	}
	reb := r.f.sentOf(dhcpv6.MessageTypeRebind)
	if len(reb) == 0 || reb[len(reb)-1].at.After(lost.at) {
		t.Errorf("Rebinds %v", reb)
	}
	sol := r.f.sentOf(dhcpv6.MessageTypeSolicit)
	if len(sol) < 2 || sol[1].at.Before(lost.at) || sol[1].at.After(lost.at.Add(time.Second)) {
		t.Errorf("no new Solicit within 1 s of the expiry: %v", sol)
	}
	if st := r.c.Stats(); st.Expired != 1 || st.Binding != nil || st.State != StateStopped {
		t.Errorf("stats %+v", st)
	}
}

func TestNoPrefixAvailBackoff(t *testing.T) {
	s := newServer(1, pfx)
	s.noPrefix = true
	s.hook = func(now time.Time, m *dhcpv6.Message) {
		if now.Sub(t0) > 100*time.Second {
			s.noPrefix = false // the pool refilled
		}
	}
	r := newRun(t, t.TempDir(), Config{}, s).until(400 * time.Second)
	sol := r.f.sentOf(dhcpv6.MessageTypeSolicit)
	req := r.f.sentOf(dhcpv6.MessageTypeRequest)
	if len(req) != 1 || req[0].at.Sub(t0) < 100*time.Second {
		t.Fatalf("Requests at %v: none may follow a NoPrefixAvail Advertise", req)
	}
	// Solicits come ever further apart while only NoPrefixAvail comes
	// back: each RT is 2*RT +-10%.
	for i := 2; i < len(sol); i++ {
		prev, cur := sol[i-1].at.Sub(sol[i-2].at), sol[i].at.Sub(sol[i-1].at)
		if cur < prev*19/10 || cur > prev*21/10 {
			t.Errorf("Solicit %d: RT %v after %v, want doubled +-10%%", i, cur, prev)
		}
	}
	if len(sol) < 5 || sol[len(sol)-1].at.Sub(sol[len(sol)-2].at) < 30*time.Second {
		t.Errorf("Solicits at %v", sol)
	}
	st := r.c.Stats()
	if st.StatusCodes[iana.StatusNoPrefixAvail.String()] != uint64(len(sol)-1) || st.Bound != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestNoPrefixAvailInRequestReplyBacksOff(t *testing.T) {
	s := newServer(1, pfx)
	s.iaStatus[dhcpv6.MessageTypeRequest] = iana.StatusNoPrefixAvail
	r := newRun(t, t.TempDir(), Config{}, s).until(60 * time.Second)
	sol := r.f.sentOf(dhcpv6.MessageTypeSolicit)
	// Each failure doubles the wait before the next Solicit.
	var gaps []time.Duration
	req := r.f.sentOf(dhcpv6.MessageTypeRequest)
	for i := 1; i < len(sol); i++ {
		gaps = append(gaps, sol[i].at.Sub(req[i-1].at))
	}
	if len(gaps) < 3 {
		t.Fatalf("only %d retries in 60 s", len(gaps))
	}
	for i := 1; i < len(gaps); i++ {
		if gaps[i] < gaps[i-1]+time.Second {
			t.Errorf("backoff %v after %v does not grow", gaps[i], gaps[i-1])
		}
	}
	if len(r.published) != 0 {
		t.Errorf("published %+v without a binding", r.published)
	}
	if st := r.c.Stats(); st.Backoffs != uint64(len(req)) {
		t.Errorf("backoffs %d for %d failed Requests", st.Backoffs, len(req))
	}
}

func TestRenewNoBindingRequestsAgain(t *testing.T) {
	s := newServer(1, pfx)
	s.iaStatus[dhcpv6.MessageTypeRenew] = iana.StatusNoBinding
	r := newRun(t, t.TempDir(), Config{}, s).until(1100 * time.Second)
	ren := r.f.sentOf(dhcpv6.MessageTypeRenew)
	req := r.f.sentOf(dhcpv6.MessageTypeRequest)
	if len(ren) != 1 || len(req) != 2 || !req[1].at.Equal(ren[0].at) {
		t.Fatalf("Renew %v, Requests %v: want a Request right after the NoBinding", ren, req)
	}
	if p := req[1].m.Options.OneIAPD().Options.Prefixes(); len(p) != 1 || p[0].Prefix.String() != pfx || !sameDUID(req[1].m.Options.ServerID(), s.duid) {
		t.Errorf("Request after NoBinding: %v", req[1].m)
	}
	if len(r.last().Prefixes) != 1 || !r.last().Prefixes[0].Valid.Equal(req[1].at.Add(s.valid)) {
		t.Errorf("delegation %+v", r.last())
	}
}

func TestRenewNoPrefixAvailDropsPrefix(t *testing.T) {
	s := newServer(1, pfx)
	s.iaStatus[dhcpv6.MessageTypeRenew] = iana.StatusNoPrefixAvail
	s.hook = func(now time.Time, m *dhcpv6.Message) {
		if m.MessageType == dhcpv6.MessageTypeRenew {
			s.noPrefix = true
		}
	}
	r := newRun(t, t.TempDir(), Config{}, s).until(1100 * time.Second)
	ren := r.f.sentOf(dhcpv6.MessageTypeRenew)
	if len(ren) != 1 || len(r.published) != 2 || len(r.last().Prefixes) != 0 || !r.published[1].at.Equal(ren[0].at) {
		t.Fatalf("renew %v published %+v: want the prefix dropped at the Reply", ren, r.published)
	}
	if sol := r.f.sentOf(dhcpv6.MessageTypeSolicit); len(sol) < 2 {
		t.Error("no Solicit after the prefix was dropped")
	}
}

func TestZeroT1T2ChosenByClient(t *testing.T) {
	s := newServer(1, pfx)
	s.t1, s.t2 = 0, 0
	r := newRun(t, t.TempDir(), Config{}, s).until(100 * time.Second)
	d := r.published[0]
	if !d.d.T1.Equal(d.at.Add(s.preferred/2)) || !d.d.T2.Equal(d.at.Add(s.preferred*8/10)) {
		t.Errorf("T1/T2 %v/%v after binding, want 0.5/0.8 of %v", d.d.T1.Sub(d.at), d.d.T2.Sub(d.at), s.preferred)
	}
}

func TestInfiniteLifetimesNeverRenew(t *testing.T) {
	s := newServer(1, pfx)
	s.t1, s.t2, s.preferred, s.valid = 0, 0, learned.Infinite, learned.Infinite
	r := newRun(t, t.TempDir(), Config{}, s).until(100 * 24 * time.Hour)
	d := r.last()
	if len(d.Prefixes) != 1 || d.Prefixes[0].Valid != learned.Forever || d.T1 != learned.Forever {
		t.Errorf("delegation %+v", d)
	}
	if n := len(r.f.sentOf(dhcpv6.MessageTypeRenew)); n != 0 {
		t.Errorf("%d Renews for an infinite lease", n)
	}
}

func TestAdvertisePreference(t *testing.T) {
	low, high := newServer(1, "2001:db8:1::/56"), newServer(2, "2001:db8:2::/56")
	low.preference, high.preference = 10, 200
	r := newRun(t, t.TempDir(), Config{}, low, high).until(10 * time.Second)
	req := r.f.sentOf(dhcpv6.MessageTypeRequest)
	if len(req) != 1 || !sameDUID(req[0].m.Options.ServerID(), high.duid) {
		t.Fatalf("Request %v, want one to the preferred server", req)
	}
	if r.last().Prefixes[0].Prefix != high.prefix {
		t.Errorf("bound to %v", r.last().Prefixes)
	}

	// Preference 255 is taken without waiting out the first RT.
	now := newServer(3, "2001:db8:3::/56")
	now.preference = 255
	r = newRun(t, t.TempDir(), Config{}, low, now).until(10 * time.Second)
	sol, req := r.f.sentOf(dhcpv6.MessageTypeSolicit), r.f.sentOf(dhcpv6.MessageTypeRequest)
	if len(req) != 1 || !req[0].at.Equal(sol[0].at) || !sameDUID(req[0].m.Options.ServerID(), now.duid) {
		t.Errorf("Solicit at %v, Request %v", sol[0].at, req)
	}
}

func TestRequestRetransmissionWithinRFCBounds(t *testing.T) {
	s := newServer(1, pfx)
	s.silent[dhcpv6.MessageTypeRequest] = true
	r := newRun(t, t.TempDir(), Config{}, s).until(400 * time.Second)
	req := r.f.sentOf(dhcpv6.MessageTypeRequest)
	if len(req) < reqMaxRC {
		t.Fatalf("%d Requests", len(req))
	}
	first := req[:reqMaxRC]
	var prev time.Duration
	for i := 1; i < len(first); i++ {
		rt := first[i].at.Sub(first[i-1].at)
		lo, hi := reqTimeout*9/10, reqTimeout*11/10
		if i > 1 {
			lo, hi = prev*19/10, prev*21/10
		}
		if hi > reqMaxRT*11/10 {
			lo, hi = min(lo, reqMaxRT*9/10), reqMaxRT*11/10
		}
		if rt < lo || rt > hi {
			t.Errorf("Request %d: RT %v outside [%v, %v]", i, rt, lo, hi)
		}
		prev = rt
		if got := first[i].m.Options.ElapsedTime(); (got - first[i].at.Sub(first[0].at)).Abs() > 10*time.Millisecond {
			t.Errorf("Request %d: elapsed time %v, want %v", i, got, first[i].at.Sub(first[0].at))
		}
		if first[i].m.TransactionID != first[0].m.TransactionID {
			t.Error("a retransmission changed the transaction ID")
		}
	}
	// After REQ_MAX_RC transmissions and the last RT, back to Solicit.
	sol := r.f.sentOf(dhcpv6.MessageTypeSolicit)
	if len(sol) < 2 || sol[1].at.Before(first[reqMaxRC-1].at) {
		t.Errorf("Solicits %v after the failed Request", sol)
	}
	if st := r.c.Stats(); st.Retransmissions == 0 || st.Sent["request"] != uint64(len(req)) {
		t.Errorf("stats %+v", st)
	}
}

func TestRetransmissionFormula(t *testing.T) {
	c, _ := New(Config{Interface: "x", StateDir: "x"})
	for seed := 0; seed < 200; seed++ {
		e := newExchange(dhcpv6.MessageTypeSolicit, dhcpv6.TransactionID{}, params{IRT: solTimeout, MRT: 120 * time.Second}, t0, time.Time{})
		now := t0
		var prev time.Duration
		for i := 0; i < 12; i++ {
			e.sent(now, c.jitter)
			rt := e.next.Sub(now)
			switch {
			case i == 0 && (rt <= solTimeout || rt > solTimeout*11/10):
				t.Fatalf("first Solicit RT %v, want (IRT, 1.1 IRT]", rt)
			case i > 0 && rt > 120*time.Second*11/10:
				t.Fatalf("RT %v beyond MRT+10%%", rt)
			case i > 0 && prev*19/10 < 120*time.Second*9/10 && (rt < prev*19/10 || rt > prev*21/10):
				t.Fatalf("RT %v after %v", rt, prev)
			}
			prev, now = rt, e.next
		}
		if prev < 120*time.Second*9/10 {
			t.Fatalf("RT never reached MRT: %v", prev)
		}
	}
	// MRD ends the exchange at its deadline.
	e := newExchange(dhcpv6.MessageTypeRenew, dhcpv6.TransactionID{}, params{IRT: renTimeout, MRT: renMaxRT}, t0, t0.Add(25*time.Second))
	e.sent(t0, c.jitter)
	if e.exhausted(t0.Add(24*time.Second)) || !e.exhausted(t0.Add(25*time.Second)) {
		t.Error("MRD deadline")
	}
	if w := e.wake(); w.After(t0.Add(25 * time.Second)) {
		t.Errorf("wake %v after the MRD deadline", w)
	}
}

func TestDUIDPersistsAcrossClients(t *testing.T) {
	dir := t.TempDir()
	s := newServer(1, pfx)
	r1 := newRun(t, dir, Config{}, s).until(10 * time.Second)
	// The second client sees another MAC: the stored DUID still wins.
	r2 := newRun(t, dir, Config{MAC: []byte{2, 0xbb, 0, 0, 0, 2}}, s).until(10 * time.Second)
	id1 := r1.f.sent[0].m.Options.ClientID()
	id2 := r2.f.sent[0].m.Options.ClientID()
	if !sameDUID(id1, id2) {
		t.Errorf("client IDs %v and %v differ across runs", id1, id2)
	}
	if id1.DUIDType() != dhcpv6.DUID_LLT {
		t.Errorf("DUID type %v, want LLT from the MAC", id1.DUIDType())
	}
	if r1.f.sent[0].m.Options.OneIAPD().IaId != r2.f.sent[0].m.Options.OneIAPD().IaId {
		t.Error("IAID changed across runs")
	}
	fi, err := os.Stat(filepath.Join(dir, DUIDFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("DUID file: %v, %v", fi, err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, DUIDFile))
	if got := string(raw); got != hex.EncodeToString(id1.ToBytes())+"\n" {
		t.Errorf("DUID file holds %q", got)
	}
	if r2.c.Stats().DUID != hex.EncodeToString(id1.ToBytes()) {
		t.Error("Stats.DUID")
	}
	// Another state directory is another client.
	r3 := newRun(t, t.TempDir(), Config{MAC: []byte{2, 0xcc, 0, 0, 0, 3}}, s).until(10 * time.Second)
	if sameDUID(id1, r3.f.sent[0].m.Options.ClientID()) {
		t.Error("a fresh state directory reused the DUID")
	}
	// A corrupt DUID file is an error, not a silent new identity.
	os.WriteFile(filepath.Join(dir, DUIDFile), []byte("zz\n"), 0o600)
	if r := newRun(t, dir, Config{}, s).until(time.Second); r.err == nil {
		t.Error("Run accepted a corrupt DUID file")
	}
}

func TestIgnoresOtherClientsAndTransactions(t *testing.T) {
	s := newServer(1, pfx)
	r := newRun(t, t.TempDir(), Config{}, s)
	s.hook = func(now time.Time, m *dhcpv6.Message) {
		if m.MessageType != dhcpv6.MessageTypeSolicit {
			return
		}
		// Before the real answer: one for another transaction, one for
		// another client, one truncated.
		other := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeAdvertise, TransactionID: dhcpv6.TransactionID{9, 9, 9}}
		other.AddOption(dhcpv6.OptClientID(m.Options.ClientID()))
		other.AddOption(dhcpv6.OptServerID(s.duid))
		stranger := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeAdvertise, TransactionID: m.TransactionID}
		stranger.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: []byte{1, 2, 3, 4, 5, 6}}))
		stranger.AddOption(dhcpv6.OptServerID(s.duid))
		r.f.inbox = append(r.f.inbox, other.ToBytes(), stranger.ToBytes(), []byte{2, 1})
	}
	r.until(10 * time.Second)
	if st := r.c.Stats(); st.Ignored != 3 || st.Bound != 1 {
		t.Errorf("ignored %d bound %d", st.Ignored, st.Bound)
	}
}
