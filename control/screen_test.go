package control

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/loader"
)

const namedAFTR = `
wan: {interface: w0, token: "::feed", dhcpv6-pd: {prefix-length-hint: 56}}
lan: [{interface: l1, sla-id: 1, ipv4: 192.168.1.1/24}]
tunnels:
  - {name: dslite, remote: aftr.example.jp, local: auto, routes: [0.0.0.0/0]}
`

// learnedRig is a reconciler over fakes that has learned a WAN /64 (the
// router's address 2001:db8:aaaa:1::feed) and a delegated /56 (LAN
// 2001:db8:100:ab01::/64, the router 2001:db8:100:ab01::1).
type learnedRig struct {
	r  *Reconciler
	ft *fakeTunnels
	n6 *fakeNet6
}

func newLearnedRig(t *testing.T, cfg string) *learnedRig {
	t.Helper()
	g := &learnedRig{ft: newFakeTunnels(), n6: newFakeNet6()}
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	sys := func() (Deps, func() error, error) {
		d := g.ft.deps(dp, addrs)
		d.NPT, d.Net6 = &fakeNPT{}, g.n6
		return d, func() error { return nil }, nil
	}
	g.r = NewReconciler(parse(t, cfg), sys, quietLog, Hooks{})
	startReconciler(t, g.r)
	now := time.Now()
	ra := &learned.RA{Interface: "w0", Prefixes: []learned.Prefix{{Prefix: pfx("2001:db8:aaaa:1::/64"), OnLink: true, Autonomous: true,
		Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour), Routers: []netip.Addr{addr("fe80::1")}}},
		Routers: []learned.Router{{Addr: addr("fe80::1"), Until: now.Add(time.Hour)}}}
	for _, c := range []InputChange{{RA: ra}, {PD: pdOf(now, "2001:db8:100:ab00::/56")}} {
		if err := change(t, g.r, c); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func pdOf(now time.Time, ps ...string) *learned.Delegation {
	d := &learned.Delegation{Interface: "w0"}
	for _, p := range ps {
		d.Prefixes = append(d.Prefixes, learned.Prefix{Prefix: pfx(p), Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour)})
	}
	return d
}

// Issue 13 item 5: an AFTR name that resolves to ::, ff02::1, ::1,
// fe80::1, the router's own address or a LAN host is not used as the
// tunnel remote: the change is refused, counted and said in status, and
// the last good remote stays. A mixed answer uses what is good.
func TestReconcileRefusesBadTunnelRemotes(t *testing.T) {
	g := newLearnedRig(t, namedAFTR)
	remote := func(as ...string) InputChange {
		var addrs []netip.Addr
		for _, a := range as {
			addrs = append(addrs, addr(a))
		}
		return InputChange{Remote: &learned.Remote{Name: "aftr.example.jp", Addrs: addrs, Until: time.Now().Add(time.Minute)}}
	}
	if err := change(t, g.r, remote("2404:8e00::feed:140")); err != nil {
		t.Fatal(err)
	}
	good := addr("2404:8e00::feed:140")
	if tun := g.ft.dp["dslite"]; tun.Remote != good {
		t.Fatalf("tunnel %+v, want remote %s", tun, good)
	}
	for _, tt := range []struct{ addr, reason, says string }{
		{"::", RefuseRemoteUnusable, "unspecified"},
		{"ff02::1", RefuseRemoteUnusable, "multicast"},
		{"::1", RefuseRemoteUnusable, "loopback"},
		{"fe80::1", RefuseRemoteUnusable, "link_local"},
		{"2001:db8:aaaa:1::feed", RefuseRemoteOwn, "own WAN address"},
		{"2001:db8:100:ab01::1", RefuseRemoteOwn, "own address on l1"},
		{"2001:db8:100:ab01::5", RefuseRemoteLAN, "a host on l1"},
		{"2001:db8:100:abff::5", RefuseRemoteLAN, "delegated prefix"},
	} {
		before := g.r.Stats()
		err := change(t, g.r, remote(tt.addr))
		st := g.r.Stats()
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: change result %v, want refused", tt.addr, err)
		}
		if tun := g.ft.dp["dslite"]; tun.Remote != good {
			t.Errorf("%s: tunnel remote %s, want %s kept", tt.addr, tun.Remote, good)
		}
		if st.Refused[tt.reason] != before.Refused[tt.reason]+1 || !strings.Contains(st.LastRefused, tt.addr) ||
			!strings.Contains(st.LastRefused, tt.says) {
			t.Errorf("%s: refused %v, last %q; want %s counted and %q said", tt.addr, st.Refused, st.LastRefused, tt.reason, tt.says)
		}
		if st.Passes != before.Passes || st.Errors != before.Errors {
			t.Errorf("%s: a refused change ran a pass or counted an error: %+v", tt.addr, st)
		}
		if got := g.r.Current().Learned.Remotes["aftr.example.jp"].Addrs; !slices.Equal(got, []netip.Addr{good}) {
			t.Errorf("%s: learned %v, want the last good answer", tt.addr, got)
		}
	}
	if err := change(t, g.r, remote("::", "2404:8e00::feed:141", "fe80::1")); err != nil {
		t.Fatal(err)
	}
	if tun := g.ft.dp["dslite"]; tun.Remote != addr("2404:8e00::feed:141") {
		t.Errorf("mixed answer: tunnel remote %s, want the global one", tun.Remote)
	}
	if st := g.r.Stats(); st.Refused[RefuseRemoteUnusable] != 6 {
		t.Errorf("refused %v after a mixed answer, want remote_unusable 6", st.Refused)
	}
	// A delegation that makes the remote a LAN host after the fact: the
	// tunnel waits, and says why.
	if err := change(t, g.r, InputChange{PD: pdOf(time.Now(), "2404:8e00::/56")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.ft.dp["dslite"]; ok {
		t.Errorf("tunnel to a LAN host programmed: %+v", g.ft.dp["dslite"])
	}
	if w := g.r.Stats().Waiting; !slices.ContainsFunc(w, func(s string) bool {
		return strings.Contains(s, "tunnels[0].remote") && strings.Contains(s, "inside the delegated prefix 2404:8e00::/56")
	}) {
		t.Errorf("waiting %q, want the tunnel's reason", w)
	}
}

// Issue 13 item 5: a delegated fe80::/64, ::1/128, ff00::/8, ::/0, a
// /72, or a delegation whose LAN /64 is the WAN /64 is refused; the LAN
// keeps the last good prefix and its unreachable route stays.
func TestReconcileRefusesBadDelegations(t *testing.T) {
	g := newLearnedRig(t, namedAFTR)
	lan := func() []string {
		var out []string
		for _, a := range g.n6.addrList() {
			if strings.HasPrefix(a, "l1 ") {
				out = append(out, a)
			}
		}
		return out
	}
	wantLAN := []string{"l1 2001:db8:100:ab01::1/64"}
	if !slices.Equal(lan(), wantLAN) {
		t.Fatalf("LAN addresses %v, want %v", lan(), wantLAN)
	}
	for _, tt := range []struct{ pd, reason string }{
		{"fe80::/64", RefusePDNotGlobal},
		{"::1/128", RefusePDNotGlobal},
		{"ff00::/8", RefusePDNotGlobal},
		{"::/0", RefusePDNotGlobal},
		{"::ffff:0:0/96", RefusePDNotGlobal},
		{"2001:db8:5:5::/72", RefusePDLength},
		{"2000::/8", RefusePDLength},
		{"2001:db8:aaaa::/56", RefusePDWAN64}, // sla-id 1 = 2001:db8:aaaa:1::/64, the WAN's
	} {
		before := g.r.Stats()
		err := change(t, g.r, InputChange{PD: pdOf(time.Now(), tt.pd)})
		st := g.r.Stats()
		if err == nil || st.Refused[tt.reason] != before.Refused[tt.reason]+1 || !strings.Contains(st.LastRefused, pfx(tt.pd).String()) {
			t.Errorf("%s: result %v, refused %v, last %q; want %s", tt.pd, err, st.Refused, st.LastRefused, tt.reason)
		}
		if !slices.Equal(lan(), wantLAN) || !slices.Equal(g.n6.unreach, []netip.Prefix{pfx("2001:db8:100:ab00::/56")}) {
			t.Errorf("%s: LAN addresses %v unreachable %v, want the last good delegation's", tt.pd, lan(), g.n6.unreach)
		}
	}
	// A bad prefix next to a good one: the good one is used.
	if err := change(t, g.r, InputChange{PD: pdOf(time.Now(), "fe80::/64", "2001:db8:200:cd00::/56")}); err != nil {
		t.Fatal(err)
	}
	if got := g.r.Current().Learned.PD.Prefixes; len(got) != 1 || got[0].Prefix != pfx("2001:db8:200:cd00::/56") {
		t.Errorf("delegation in force %+v, want only the global /56", got)
	}
	// Losing the binding is no refusal.
	if err := change(t, g.r, InputChange{PD: &learned.Delegation{Interface: "w0"}}); err != nil {
		t.Fatal(err)
	}
}

// The other order: the delegation came first, then an RA whose /64 is a
// LAN's. The LAN does not take it, and the plan says why.
func TestPlanLANIsNotTheWAN64(t *testing.T) {
	in := Inputs{Config: parse(t, ipoe), Learned: Learned{
		RA: &learned.RA{Interface: "w0", Prefixes: []learned.Prefix{slaac("2001:db8:100:ab01::/64", time.Hour, time.Hour)}},
		PD: delegated("2001:db8:100:ab00::/56", time.Hour, time.Hour),
	}}
	p := NewPlan(in, t0)
	if p.WANAddr.Prefix != pfx("2001:db8:100:ab01::feed/64") || p.LANs[0].Prefix.Prefix.IsValid() || p.LANs[1].Prefix.Prefix != pfx("2001:db8:100:abff::/64") {
		t.Errorf("WAN %s, LANs %+v: want lan[0] without the WAN's /64", p.WANAddr.Prefix, p.LANs)
	}
	if !slices.ContainsFunc(p.Pending, func(s string) bool { return strings.Contains(s, "lan[0]: its /64 2001:db8:100:ab01::/64") }) {
		t.Errorf("pending %q", p.Pending)
	}
}
