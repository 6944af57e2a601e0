package endpoint

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/xdprouter/xdprouter/control/learned"
)

type resolverRig struct {
	r     *Resolver
	dns   *DNS
	clock *fakeClock
	pub   chan learned.Remote
}

// startResolver runs a resolver on a fake clock whose DNS asks servers on
// port; resolvConf is the fallback file.
func startResolver(t *testing.T, port uint16, resolvConf string) *resolverRig {
	t.Helper()
	if resolvConf == "" {
		resolvConf = filepath.Join(t.TempDir(), "missing-resolv.conf")
	}
	rig := &resolverRig{clock: newFakeClock(), pub: make(chan learned.Remote, 16)}
	rig.dns = NewDNS(DNSOptions{ResolvConf: resolvConf, Port: port, Timeout: 300 * time.Millisecond})
	rig.r = NewResolver(ResolverOptions{
		DNS:     rig.dns,
		Publish: func(r learned.Remote) { rig.pub <- r },
		Retry:   Backoff{Initial: time.Second, Max: 8 * time.Second},
		Clock:   rig.clock,
	})
	runTask(t, rig.r.Run)
	return rig
}

// runTask runs a task until the test ends, then checks it stops cleanly.
func runTask(t *testing.T, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

func (rig *resolverRig) published(t *testing.T) learned.Remote {
	t.Helper()
	select {
	case r := <-rig.pub:
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("nothing published in 20 s; stats %+v", rig.r.Stats())
		return learned.Remote{}
	}
}

// idle waits until Run waits for its next deadline, and checks that
// nothing was published meanwhile.
func (rig *resolverRig) idle(t *testing.T) time.Time {
	t.Helper()
	next := rig.clock.waitTimers(t, 1)
	select {
	case r := <-rig.pub:
		t.Fatalf("unexpected publication %+v", r)
	default:
	}
	return next
}

func (rig *resolverRig) name(t *testing.T, name string) NameStats {
	t.Helper()
	for _, n := range rig.r.Stats().Names {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no stats for %s in %+v", name, rig.r.Stats())
	return NameStats{}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20 s: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestResolverFollowsTTL(t *testing.T) {
	srv, err := startDNS(t, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.set("aftr.example.jp", record{addrs: []string{"2404:8e00::feed:140"}, ttl: 300})
	rig := startResolver(t, srv.Addr.Port(), "")
	rig.dns.SetServers([]netip.Addr{srv.Addr.Addr()})
	start := rig.clock.Now()
	rig.r.SetNames([]string{"aftr.example.jp"})

	got := rig.published(t)
	want := learned.Remote{Name: "aftr.example.jp", Addrs: addrs("2404:8e00::feed:140"), Until: start.Add(300 * time.Second)}
	if got.Name != want.Name || !slices.Equal(got.Addrs, want.Addrs) || !got.Until.Equal(want.Until) {
		t.Fatalf("published %+v, want %+v", got, want)
	}
	if next := rig.idle(t); !next.Equal(start.Add(300 * time.Second)) {
		t.Fatalf("next resolution at %v, want at the TTL's end %v", next, start.Add(300*time.Second))
	}
	st := rig.r.Stats()
	if st.ServerSource != SourceLearned || len(st.Servers) != 1 || st.Servers[0] != srv.Addr {
		t.Errorf("servers %v from %q, want [%v] learned", st.Servers, st.ServerSource, srv.Addr)
	}
	n := st.Names[0]
	if n.Queries != 1 || n.Answers != 1 || n.Changes != 1 || !n.NextRefresh.Equal(start.Add(300*time.Second)) || n.Server != srv.Addr {
		t.Errorf("stats %+v", n)
	}

	// The AFTR moves: nothing is asked before the TTL runs out...
	srv.set("aftr.example.jp", record{addrs: []string{"2404:8e00::feed:141", "2404:8e00::feed:142"}, ttl: 120})
	rig.clock.Advance(299 * time.Second)
	rig.idle(t)
	if q := srv.queries.Load(); q != 1 {
		t.Fatalf("%d queries before the TTL ran out, want 1", q)
	}
	// ...and the new addresses are published once it has.
	rig.clock.Advance(time.Second)
	got = rig.published(t)
	if !slices.Equal(got.Addrs, addrs("2404:8e00::feed:141", "2404:8e00::feed:142")) || !got.Until.Equal(start.Add(420*time.Second)) {
		t.Fatalf("published %+v after the TTL", got)
	}

	// The same answer again is a refresh, not a change.
	rig.idle(t)
	rig.clock.Advance(120 * time.Second)
	eventually(t, "third answer", func() bool { return rig.name(t, "aftr.example.jp").Answers == 3 })
	rig.idle(t)
	if n := rig.name(t, "aftr.example.jp"); n.Changes != 2 || n.Queries != 3 || !n.NextRefresh.Equal(start.Add(540*time.Second)) {
		t.Errorf("after an unchanged refresh: %+v", n)
	}
}

func TestResolverBoundsTTL(t *testing.T) {
	srv, err := startDNS(t, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.set("short.example", record{addrs: []string{"2001:db8::1"}, ttl: 0})
	srv.set("long.example", record{addrs: []string{"2001:db8::2"}, ttl: 7 * 86400})
	rig := startResolver(t, srv.Addr.Port(), "")
	rig.dns.SetServers([]netip.Addr{srv.Addr.Addr()})
	start := rig.clock.Now()
	rig.r.SetNames([]string{"short.example", "long.example"})
	seen := map[string]time.Time{}
	for range 2 {
		r := rig.published(t)
		seen[r.Name] = r.Until
	}
	if !seen["short.example"].Equal(start.Add(30*time.Second)) || !seen["long.example"].Equal(start.Add(time.Hour)) {
		t.Fatalf("TTL 0 and one week refresh at %v, want 30 s and 1 h from %v", seen, start)
	}
}

func TestResolverKeepsLastAnswerThroughFailures(t *testing.T) {
	srv, err := startDNS(t, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	const name = "gw.transix.jp"
	srv.set(name, record{addrs: []string{"2404:8e00::feed:140"}, ttl: 60})
	rig := startResolver(t, srv.Addr.Port(), "")
	rig.dns.SetServers([]netip.Addr{srv.Addr.Addr()})
	rig.r.SetNames([]string{name})
	rig.published(t)
	rig.idle(t)

	// Each kind of failure, one after the other: nothing is published,
	// the answer stays, retries back off 1 s, 2 s, 4 s, 8 s, 8 s.
	steps := []struct {
		rec    record
		reason string
		delay  time.Duration
	}{
		{record{rcode: dns.RcodeServerFailure}, ReasonServFail, time.Second},
		{record{}, ReasonNXDomain, 2 * time.Second}, // no record: NXDOMAIN
		{record{noAAAA: true}, ReasonNoAAAA, 4 * time.Second},
		{record{silent: true}, ReasonTimeout, 8 * time.Second},
		{record{rcode: dns.RcodeRefused}, ReasonRefused, 8 * time.Second},
	}
	wait := 60 * time.Second
	for i, s := range steps {
		if s.reason == ReasonNXDomain {
			srv.mu.Lock()
			delete(srv.records, dns.Fqdn(name))
			srv.mu.Unlock()
		} else {
			srv.set(name, s.rec)
		}
		rig.clock.Advance(wait)
		eventually(t, s.reason+" counted", func() bool { return rig.name(t, name).Failures[s.reason] == 1 })
		next := rig.idle(t)
		n := rig.name(t, name)
		if !slices.Equal(n.Addrs, addrs("2404:8e00::feed:140")) || !n.Stale || n.FailedInARow != i+1 || n.LastError == "" {
			t.Fatalf("after %s: %+v", s.reason, n)
		}
		if d := next.Sub(rig.clock.Now()); d != s.delay {
			t.Fatalf("after failure %d (%s) retry in %v, want %v", i+1, s.reason, d, s.delay)
		}
		wait = s.delay
	}

	srv.set(name, record{addrs: []string{"2404:8e00::feed:150"}, ttl: 60})
	rig.clock.Advance(wait)
	if got := rig.published(t); !slices.Equal(got.Addrs, addrs("2404:8e00::feed:150")) {
		t.Fatalf("after recovery published %+v", got)
	}
	n := rig.name(t, name)
	if n.Stale || n.FailedInARow != 0 || n.LastError != "" || n.Queries != 7 || n.Answers != 2 {
		t.Errorf("after recovery: %+v", n)
	}
}

func TestResolverTriesNextServer(t *testing.T) {
	a, b := startDNSPair(t)
	a.set("aftr.example", record{rcode: dns.RcodeServerFailure})
	b.set("aftr.example", record{addrs: []string{"2001:db8::aa"}, ttl: 60})
	a.set("other.example", record{silent: true})
	b.set("other.example", record{addrs: []string{"2001:db8::bb"}, ttl: 60})
	rig := startResolver(t, a.Addr.Port(), "")
	rig.dns.SetServers([]netip.Addr{a.Addr.Addr(), b.Addr.Addr()})
	rig.r.SetNames([]string{"aftr.example", "other.example"})
	got := map[string][]netip.Addr{}
	for range 2 {
		r := rig.published(t)
		got[r.Name] = r.Addrs
	}
	if !slices.Equal(got["aftr.example"], addrs("2001:db8::aa")) || !slices.Equal(got["other.example"], addrs("2001:db8::bb")) {
		t.Fatalf("published %v", got)
	}
	for name, reason := range map[string]string{"aftr.example": ReasonServFail, "other.example": ReasonTimeout} {
		n := rig.name(t, name)
		if n.Queries != 2 || n.Answers != 1 || n.Failures[reason] != 1 || n.Server != b.Addr || n.FailedInARow != 0 {
			t.Errorf("%s: %+v, want a %s from %v then the answer from %v", name, n, reason, a.Addr, b.Addr)
		}
	}
}

func TestResolverServersSetAtRunTime(t *testing.T) {
	sys, learnedSrv := startDNSPair(t)
	// The system's resolver does not know the ISP's AFTR name; the
	// servers learned from the WAN do.
	learnedSrv.set("dslite.example", record{addrs: []string{"2001:db8:f::1"}, ttl: 60})
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver "+sys.Addr.Addr().String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rig := startResolver(t, sys.Addr.Port(), conf)
	rig.r.SetNames([]string{"dslite.example"})
	eventually(t, "NXDOMAIN from the system's server", func() bool {
		return rig.name(t, "dslite.example").Failures[ReasonNXDomain] == 1
	})
	rig.idle(t)
	if st := rig.r.Stats(); st.ServerSource != SourceResolvConf || !slices.Equal(st.Servers, []netip.AddrPort{sys.Addr}) {
		t.Fatalf("before any server is learned: servers %v from %q, want %v from resolv.conf", st.Servers, st.ServerSource, sys.Addr)
	}
	// Learning servers retries at once, without waiting for the backoff.
	rig.dns.SetServers([]netip.Addr{learnedSrv.Addr.Addr()})
	if got := rig.published(t); !slices.Equal(got.Addrs, addrs("2001:db8:f::1")) {
		t.Fatalf("published %+v", got)
	}
	if st := rig.r.Stats(); st.ServerSource != SourceLearned || sys.queries.Load() != 1 || learnedSrv.queries.Load() != 1 {
		t.Errorf("source %q, %d queries to the system's server, %d to the learned one", st.ServerSource, sys.queries.Load(), learnedSrv.queries.Load())
	}
	// Forgetting them falls back to resolv.conf again.
	rig.dns.SetServers(nil)
	if st := rig.r.Stats(); st.ServerSource != SourceResolvConf {
		t.Errorf("after the learned servers are gone: source %q", st.ServerSource)
	}
}

func TestResolverNoServers(t *testing.T) {
	rig := startResolver(t, 53, "")
	rig.r.SetNames([]string{"aftr.example"})
	eventually(t, "no_servers counted", func() bool { return rig.name(t, "aftr.example").Failures[ReasonNoServers] == 1 })
	st := rig.r.Stats()
	if st.ServerSource != SourceNone || st.Names[0].Queries != 0 || st.Names[0].LastError == "" {
		t.Errorf("stats %+v", st)
	}
}

func TestResolverSetNames(t *testing.T) {
	srv, err := startDNS(t, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.set("a.example", record{addrs: []string{"2001:db8::a"}, ttl: 60})
	srv.set("b.example", record{addrs: []string{"2001:db8::b"}, ttl: 60})
	rig := startResolver(t, srv.Addr.Port(), "")
	rig.dns.SetServers([]netip.Addr{srv.Addr.Addr()})
	rig.r.SetNames([]string{"a.example"})
	if got := rig.published(t); got.Name != "a.example" {
		t.Fatalf("published %+v", got)
	}
	// A reload replaces a.example by b.example: a's withdrawal, b's answer.
	rig.r.SetNames([]string{"b.example"})
	if got := rig.published(t); got.Name != "a.example" || len(got.Addrs) != 0 {
		t.Fatalf("published %+v, want a.example withdrawn", got)
	}
	if got := rig.published(t); got.Name != "b.example" || !slices.Equal(got.Addrs, addrs("2001:db8::b")) {
		t.Fatalf("published %+v", got)
	}
	rig.idle(t)
	if st := rig.r.Stats(); len(st.Names) != 1 || st.Names[0].Name != "b.example" {
		t.Errorf("names %+v", st.Names)
	}
}

func TestLookupRetriesTruncatedOverTCP(t *testing.T) {
	srv, err := startDNS(t, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.serveTCP(t)
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("2001:db8::%x", i+1))
	}
	srv.set("many.example", record{addrs: many, ttl: 60, truncated: true})
	d := NewDNS(DNSOptions{ResolvConf: filepath.Join(t.TempDir(), "none"), Port: srv.Addr.Port(), Timeout: 2 * time.Second})
	d.SetServers([]netip.Addr{srv.Addr.Addr()})
	ans, tries, source, err := d.LookupAAAA(context.Background(), "many.example")
	if err != nil || len(ans.Addrs) != 40 || source != SourceLearned || len(tries) != 1 || srv.queries.Load() != 2 {
		t.Fatalf("got %d addresses, tries %+v, source %q, %d queries (want UDP then TCP), err %v", len(ans.Addrs), tries, source, srv.queries.Load(), err)
	}
}

func TestAAAAAnswerFollowsCNAME(t *testing.T) {
	m := new(dns.Msg)
	hdr := func(name string, typ uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: ttl}
	}
	m.Answer = []dns.RR{
		&dns.AAAA{Hdr: hdr("gw.example.", dns.TypeAAAA, 600), AAAA: netip.MustParseAddr("2001:db8::9").AsSlice()},
		&dns.CNAME{Hdr: hdr("AFTR.example.", dns.TypeCNAME, 90), Target: "gw.example."},
		&dns.AAAA{Hdr: hdr("gw.example.", dns.TypeAAAA, 300), AAAA: netip.MustParseAddr("2001:db8::1").AsSlice()},
		&dns.AAAA{Hdr: hdr("gw.example.", dns.TypeAAAA, 300), AAAA: netip.MustParseAddr("2001:db8::1").AsSlice()},
		&dns.AAAA{Hdr: hdr("unrelated.example.", dns.TypeAAAA, 5), AAAA: netip.MustParseAddr("2001:db8::666").AsSlice()},
	}
	got, ttl := aaaaAnswer(m, "aftr.example.")
	if !slices.Equal(got, addrs("2001:db8::1", "2001:db8::9")) || ttl != 90*time.Second {
		t.Errorf("got %v ttl %v, want [2001:db8::1 2001:db8::9] (sorted, deduplicated, not the unrelated record) ttl 90s (the CNAME's)", got, ttl)
	}
	// A CNAME loop ends without an answer.
	m.Answer = []dns.RR{
		&dns.CNAME{Hdr: hdr("a.example.", dns.TypeCNAME, 60), Target: "b.example."},
		&dns.CNAME{Hdr: hdr("b.example.", dns.TypeCNAME, 60), Target: "a.example."},
	}
	if got, _ := aaaaAnswer(m, "a.example."); len(got) != 0 {
		t.Errorf("CNAME loop gave %v", got)
	}
}
