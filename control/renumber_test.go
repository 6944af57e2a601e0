package control

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/loader"
)

// from is an autonomous /64 advertised by the given routers, valid and
// preferred for the given times from t0.
func from(p string, valid, preferred time.Duration, routers ...string) learned.Prefix {
	lp := slaac(p, valid, preferred)
	for _, r := range routers {
		lp.Routers = append(lp.Routers, addr(r))
	}
	return lp
}

func raOf(routers []string, ps ...learned.Prefix) *learned.RA {
	ra := &learned.RA{Interface: "w0", Prefixes: ps}
	for _, r := range routers {
		ra.Routers = append(ra.Routers, learned.Router{Addr: addr(r), Until: t0.Add(30 * time.Minute)})
	}
	return ra
}

// Issue 13 item 6: the WAN /64 is the default router's, whatever other
// hosts on the shared WAN link advertise, preferred over deprecated, and
// kept while it is as good as any other.
func TestPlanWANPrefixChoice(t *testing.T) {
	cfg := parse(t, ipoe)
	const h = time.Hour
	for _, tt := range []struct {
		name  string
		ra    *learned.RA
		inUse string
		want  string
	}{
		{"another host's prefix that sorts first", raOf([]string{"fe80::1"},
			from("2001:db8:1::/64", 30*h, 30*h, "fe80::bad"), from("2001:db8:9::/64", 30*h, 7*h, "fe80::1")),
			"", "2001:db8:9::/64"},
		{"another host's prefix, the one in use a router's", raOf([]string{"fe80::1"},
			from("2001:db8:1::/64", 30*h, 30*h, "fe80::bad"), from("2001:db8:9::/64", 30*h, 7*h, "fe80::1")),
			"2001:db8:9::/64", "2001:db8:9::/64"},
		{"the default router advertises none: the in-use prefix's router", raOf([]string{"fe80::1"},
			from("2001:db8:1::/64", 30*h, 30*h, "fe80::bad"), from("2001:db8:9::/64", 30*h, 0, "fe80::2")),
			"2001:db8:9::/64", "2001:db8:9::/64"},
		{"flash renumbering: the old one deprecated", raOf([]string{"fe80::1"},
			from("2001:db8:1::/64", 30*h, 0, "fe80::1"), from("2001:db8:9::/64", 30*h, 7*h, "fe80::1")),
			"2001:db8:1::/64", "2001:db8:9::/64"},
		{"both preferred: the one in use stays", raOf([]string{"fe80::1"},
			from("2001:db8:1::/64", 30*h, 7*h, "fe80::1"), from("2001:db8:9::/64", 30*h, 7*h, "fe80::1")),
			"2001:db8:9::/64", "2001:db8:9::/64"},
		{"the default router's deprecated one over another's preferred one", raOf([]string{"fe80::1"},
			from("2001:db8:1::/64", 30*h, 7*h, "fe80::2"), from("2001:db8:9::/64", 30*h, 0, "fe80::1")),
			"", "2001:db8:9::/64"},
		{"no default router: preferred first", raOf(nil,
			from("2001:db8:1::/64", 30*h, 0, "fe80::1"), from("2001:db8:9::/64", 30*h, 7*h, "fe80::2")),
			"", "2001:db8:9::/64"},
		{"the one in use expired", raOf([]string{"fe80::1"},
			from("2001:db8:1::/64", 0, 0, "fe80::1"), from("2001:db8:9::/64", 30*h, 7*h, "fe80::1")),
			"2001:db8:1::/64", "2001:db8:9::/64"},
		{"unknown routers (a record from an older daemon): the first preferred", raOf([]string{"fe80::1"},
			slaac("2001:db8:1::/64", 30*h, 0), slaac("2001:db8:2::/64", 30*h, 7*h), slaac("2001:db8:3::/64", 30*h, 7*h)),
			"", "2001:db8:2::/64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := Inputs{Config: cfg, Learned: Learned{RA: tt.ra}}
			if tt.inUse != "" {
				in.Learned.WANPrefix = pfx(tt.inUse)
			}
			if got := NewPlan(in, t0).WANPrefix.Prefix; got != pfx(tt.want) {
				t.Errorf("WAN prefix %s, want %s", got, tt.want)
			}
		})
	}
}

// Through the reconciler: two prefixes of the default router, both
// preferred, advertised in turn: the WAN address and the tunnel's local
// address stay on the first one taken. Then the router renumbers (the
// tracker deprecates the old prefix): both move in the same pass.
func TestReconcileKeepsWANPrefixThenFollowsRenumbering(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	ft := newFakeTunnels()
	n6 := newFakeNet6()
	sys := func() (Deps, func() error, error) {
		d := ft.deps(dp, addrs)
		d.NPT, d.Net6 = &fakeNPT{}, n6
		return d, func() error { return nil }, nil
	}
	r := NewReconciler(parse(t, fullIPoE), sys, quietLog, Hooks{})
	startReconciler(t, r)
	now := time.Now()
	ra := func(ps ...learned.Prefix) *learned.RA {
		return &learned.RA{Interface: "w0", Prefixes: ps,
			Routers: []learned.Router{{Addr: addr("fe80::1"), Until: now.Add(time.Hour)}}}
	}
	p := func(s string, preferred time.Duration, routers ...string) learned.Prefix {
		lp := learned.Prefix{Prefix: pfx(s), OnLink: true, Autonomous: true, Valid: now.Add(2 * time.Hour), Preferred: now.Add(preferred)}
		for _, r := range routers {
			lp.Routers = append(lp.Routers, addr(r))
		}
		return lp
	}
	local := func(want string) {
		t.Helper()
		if tun := ft.dp["dslite"]; tun.Local != addr(want) {
			t.Errorf("tunnel local %s, want %s", tun.Local, want)
		}
		if _, ok := n6.addrs[Addr6Key{"w0", netip.PrefixFrom(addr(want), 64)}]; !ok || len(n6.addrList()) != 1 {
			t.Errorf("addresses %v, want only %s/64 on w0", n6.addrList(), want)
		}
	}
	for _, c := range []*learned.RA{
		ra(p("2001:db8:9::/64", time.Hour, "fe80::1")),
		ra(p("2001:db8:1::/64", time.Hour, "fe80::1"), p("2001:db8:9::/64", time.Hour, "fe80::1")),
		ra(p("2001:db8:1::/64", time.Hour, "fe80::1", "fe80::bad"), p("2001:db8:9::/64", time.Hour, "fe80::1")),
	} {
		if err := change(t, r, InputChange{RA: c}); err != nil {
			t.Fatal(err)
		}
		local("2001:db8:9::feed")
	}
	// The router restarted on 2001:db8:5::/64 and stopped advertising
	// 2001:db8:9::/64, which the tracker deprecated.
	if err := change(t, r, InputChange{RA: ra(p("2001:db8:5::/64", time.Hour, "fe80::1"), p("2001:db8:9::/64", 0, "fe80::1"))}); err != nil {
		t.Fatal(err)
	}
	local("2001:db8:5::feed")
}
