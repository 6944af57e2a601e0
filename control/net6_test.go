package control

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/loader"
)

// fakeNet6 is the kernel's IPv6 addresses and xdprouter's routes.
type fakeNet6 struct {
	mu      sync.Mutex
	addrs   map[Addr6Key]Addr6
	gw      map[string]netip.Addr
	unreach []netip.Prefix
}

func newFakeNet6() *fakeNet6 {
	return &fakeNet6{addrs: map[Addr6Key]Addr6{}, gw: map[string]netip.Addr{}}
}

func (f *fakeNet6) EnsureAddr(a Addr6, now time.Time) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, had := f.addrs[a.key()]
	f.addrs[a.key()] = a
	if had {
		return "refreshed", nil
	}
	return "added", nil
}

func (f *fakeNet6) RemoveAddr(ifname string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := Addr6Key{ifname, p}
	if _, ok := f.addrs[k]; !ok {
		return fmt.Errorf("%s has no address %s", ifname, p)
	}
	delete(f.addrs, k)
	return nil
}

func (f *fakeNet6) SetDefault(ifname string, gw netip.Addr) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !gw.IsValid() {
		if _, ok := f.gw[ifname]; !ok {
			return "unchanged", nil
		}
		delete(f.gw, ifname)
		return "removed", nil
	}
	f.gw[ifname] = gw
	return "set", nil
}

func (f *fakeNet6) SyncUnreachable(want []netip.Prefix) ([]Step, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unreach = slices.Clone(want)
	return nil, nil
}

func (f *fakeNet6) addrList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.addrs {
		out = append(out, k.Interface+" "+k.Prefix.String())
	}
	slices.Sort(out)
	return out
}

const fullIPoE = `
wan: {interface: w0, token: "::feed", dhcpv6-pd: {prefix-length-hint: 56}}
lan: [{interface: l1, sla-id: 1, ipv4: 192.168.1.1/24}]
tunnels:
  - {name: dslite, remote: "2404:8e00::feed:140", local: auto, routes: [0.0.0.0/0]}
npt: [{interface: w0, inside: "fd00:1::/64", outside: auto}]
ndp-proxy: [{interface: w0, prefixes: [auto]}]
`

// One pass carries a renumbering to every dependent piece: the WAN
// address, the tunnel's local address, NPT's outside prefix, the NDP
// proxy, the LAN address and what the LAN advertises (old prefix
// deprecated), the unreachable route over the delegated prefix.
func TestReconcileRenumbering(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	ft := newFakeTunnels()
	tr := &fakeNPT{}
	n6 := newFakeNet6()
	var (
		mu      sync.Mutex
		adverts []Advert
	)
	sys := func() (Deps, func() error, error) {
		d := ft.deps(dp, addrs)
		d.NPT, d.Net6 = tr, n6
		return d, func() error { return nil }, nil
	}
	r := NewReconciler(parse(t, fullIPoE), sys, quietLog, Hooks{InForce: func(_ Inputs, p Plan) {
		mu.Lock()
		adverts = p.Adverts()
		mu.Unlock()
	}})
	startReconciler(t, r)
	if len(ft.dp) != 0 || len(tr.rules) != 0 || len(n6.addrList()) != 0 {
		t.Fatalf("before anything is learned: tunnels %v npt %v addrs %v", ft.dp, tr.rules, n6.addrList())
	}

	now := time.Now()
	ra := func(p string) *learned.RA {
		return &learned.RA{Interface: "w0", Prefixes: []learned.Prefix{{Prefix: pfx(p), OnLink: true, Autonomous: true,
			Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour)}},
			Routers: []learned.Router{{Addr: addr("fe80::1"), Until: now.Add(time.Hour)}}}
	}
	pd := func(p string) *learned.Delegation {
		return &learned.Delegation{Interface: "w0", Prefixes: []learned.Prefix{{Prefix: pfx(p), Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour)}}}
	}
	check := func(when, wanPrefix, wanAddr, lanAddr, delegated string, retired int, oldLAN ...string) {
		t.Helper()
		want := []string{"l1 " + lanAddr, "w0 " + wanAddr}
		for _, a := range oldLAN {
			want = append(want, "l1 "+a)
		}
		slices.Sort(want)
		if got := n6.addrList(); !slices.Equal(got, want) {
			t.Errorf("%s: addresses %v, want %v", when, got, want)
		}
		tun, ok := ft.dp["dslite"]
		if !ok || tun.Local != pfx(wanAddr).Addr() {
			t.Errorf("%s: tunnel %+v, want local %s", when, tun, pfx(wanAddr).Addr())
		}
		if len(tr.rules) != 1 || tr.rules[0].Outside != pfx(wanPrefix) || tr.rules[0].Exclude != pfx(wanAddr).Addr() ||
			len(tr.proxy) != 1 || tr.proxy[0].Prefix != pfx(wanPrefix) {
			t.Errorf("%s: npt %+v proxy %+v, want outside %s", when, tr.rules, tr.proxy, wanPrefix)
		}
		if n6.gw["w0"] != addr("fe80::1") || !slices.Equal(n6.unreach, []netip.Prefix{pfx(delegated)}) {
			t.Errorf("%s: gateway %v unreachable %v", when, n6.gw, n6.unreach)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(adverts) != 1 || len(adverts[0].Prefixes) != 1+retired || adverts[0].Prefixes[0].Prefix != pfx(lanAddr).Masked() {
			t.Errorf("%s: adverts %+v", when, adverts)
		}
	}

	if err := change(t, r, InputChange{RA: ra("2001:db8:aaaa:1::/64")}); err != nil {
		t.Fatal(err)
	}
	if err := change(t, r, InputChange{PD: pd("2001:db8:100:ab00::/56")}); err != nil {
		t.Fatal(err)
	}
	check("learned", "2001:db8:aaaa:1::/64", "2001:db8:aaaa:1::feed/64", "2001:db8:100:ab01::1/64", "2001:db8:100:ab00::/56", 0)

	start := r.Stats().Passes
	if err := change(t, r, InputChange{RA: ra("2001:db8:bbbb:1::/64")}); err != nil {
		t.Fatal(err)
	}
	if err := change(t, r, InputChange{PD: pd("2001:db8:200:cd00::/56")}); err != nil {
		t.Fatal(err)
	}
	// The old LAN address stays (deprecated) while the old prefix is
	// advertised, so hosts' connections from old addresses keep a route.
	check("renumbered", "2001:db8:bbbb:1::/64", "2001:db8:bbbb:1::feed/64", "2001:db8:200:cd01::1/64", "2001:db8:200:cd00::/56", 1,
		"2001:db8:100:ab01::1/64")
	if got := r.Stats().Passes - start; got != 2 {
		t.Errorf("%d passes for two changes", got)
	}
	mu.Lock()
	if old := adverts[0].Prefixes[1]; old.Prefix != pfx("2001:db8:100:ab01::/64") || old.Preferred.After(time.Now()) {
		t.Errorf("old LAN prefix %+v: want it advertised deprecated", old)
	}
	mu.Unlock()

	// The router's lifetime ends: the default route goes, the rest stays.
	noRouter := ra("2001:db8:bbbb:1::/64")
	noRouter.Routers = nil
	if err := change(t, r, InputChange{RA: noRouter}); err != nil {
		t.Fatal(err)
	}
	if _, ok := n6.gw["w0"]; ok {
		t.Errorf("default route kept after the router left: %v", n6.gw)
	}
	if err := r.Teardown(); err != nil {
		t.Fatal(err)
	}
	if got := n6.addrList(); len(got) != 0 || len(n6.unreach) != 0 {
		t.Errorf("after teardown: addresses %v unreachable %v", got, n6.unreach)
	}
}

// failingNet6 refuses to install one address.
type failingNet6 struct {
	*fakeNet6
	refuse netip.Prefix
}

func (f failingNet6) EnsureAddr(a Addr6, now time.Time) (string, error) {
	if a.Prefix == f.refuse {
		return "", fmt.Errorf("refused")
	}
	return f.fakeNet6.EnsureAddr(a, now)
}

// A pass that fails half way takes back the addresses it added; the next
// pass removes what the plan in force had, even if that prefix would not
// be chosen any more (it went deprecated meanwhile).
func TestReconcileNet6RollbackAndPrune(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	n6 := newFakeNet6()
	net := failingNet6{fakeNet6: n6, refuse: pfx("2001:db8:bad:2::1/64")}
	sys := func() (Deps, func() error, error) {
		return Deps{DP: dp, Addrs: &fakeAddrs{have: map[string]bool{}}, Net6: net}, func() error { return nil }, nil
	}
	r := NewReconciler(parse(t, `
wan: {interface: w0, token: "::feed", dhcpv6-pd: {}}
lan: [{interface: l1, sla-id: 1}, {interface: l2, sla-id: 2}]
`), sys, quietLog, Hooks{})
	startReconciler(t, r)
	now := time.Now()
	ra := func(prefixes ...learned.Prefix) InputChange {
		return InputChange{RA: &learned.RA{Interface: "w0", Prefixes: prefixes}}
	}
	lease := func(p string) InputChange {
		return InputChange{PD: &learned.Delegation{Interface: "w0", Prefixes: []learned.Prefix{{Prefix: pfx(p), Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour)}}}}
	}
	a := learned.Prefix{Prefix: pfx("2001:db8:aaaa:1::/64"), Autonomous: true, Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour)}
	if err := change(t, r, ra(a)); err != nil {
		t.Fatal(err)
	}
	// l2's address in this lease is refused: the pass fails, and l1's,
	// which it had installed just before, is not left behind.
	if err := change(t, r, lease("2001:db8:bad::/56")); err == nil {
		t.Fatal("the pass did not fail")
	}
	if got := n6.addrList(); !slices.Equal(got, []string{"w0 2001:db8:aaaa:1::feed/64"}) {
		t.Errorf("after the failed pass: %v", got)
	}
	// A goes deprecated and B arrives: B is chosen, and A's address,
	// which the plan in force holds, is removed.
	a.Preferred = now
	b := learned.Prefix{Prefix: pfx("2001:db8:aaaa:2::/64"), Autonomous: true, Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour)}
	if err := change(t, r, ra(a, b)); err != nil {
		t.Fatal(err)
	}
	if got := n6.addrList(); !slices.Equal(got, []string{"w0 2001:db8:aaaa:2::feed/64"}) {
		t.Errorf("after the new prefix: %v", got)
	}
}
