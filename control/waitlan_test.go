package control

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/loader"
)

// fakeLinks says which interfaces exist.
type fakeLinks struct {
	mu      sync.Mutex
	missing map[string]bool
}

func (f *fakeLinks) Exists(ifname string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.missing[ifname], nil
}

func (f *fakeLinks) set(ifname string, missing bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.missing[ifname] = missing
}

// linkedNet6 fails like the kernel for an interface that does not exist.
type linkedNet6 struct {
	*fakeNet6
	links *fakeLinks
}

func (n linkedNet6) EnsureAddr(a Addr6, now time.Time) (string, error) {
	if ok, _ := n.links.Exists(a.Interface); !ok {
		return "", errors.New("interface " + a.Interface + ": Link not found")
	}
	return n.fakeNet6.EnsureAddr(a, now)
}

const twoLANsPD = `
wan: {interface: w0, token: "::feed", dhcpv6-pd: {prefix-length-hint: 56}}
lan:
  - {interface: l1, sla-id: 1, ipv4: 192.168.1.1/24}
  - {interface: l2, sla-id: 2, ipv4: 192.168.2.1/24}
`

// Issue 13 item 7: a LAN interface that does not exist does not stop the
// daemon's first pass nor any later one (the WAN follows its RAs, the
// other LAN its prefix); the pass says it waits for the interface, and
// the pass after it appears attaches it and gives it its addresses.
func TestReconcileWaitsForMissingLAN(t *testing.T) {
	links := &fakeLinks{missing: map[string]bool{"l2": true}}
	dp := &fakeDP{attached: map[string]loader.Role{}, failOn: "l2"}
	addrs := &fakeAddrs{have: map[string]bool{}, failOn: "l2"}
	n6 := newFakeNet6()
	sys := func() (Deps, func() error, error) {
		return Deps{DP: dp, Addrs: addrs, Net6: linkedNet6{n6, links}, Links: links}, func() error { return nil }, nil
	}
	r := NewReconciler(parse(t, twoLANsPD), sys, quietLog, Hooks{})
	startReconciler(t, r) // fails the test if the first pass fails
	waitsFor := func(want ...string) {
		t.Helper()
		st := r.Stats()
		if !slices.Equal(st.WaitingInterfaces, want) {
			t.Errorf("waiting for interfaces %v, want %v", st.WaitingInterfaces, want)
		}
		said := slices.ContainsFunc(st.Waiting, func(s string) bool { return strings.Contains(s, "waiting for interface l2") })
		if said != (len(want) > 0) {
			t.Errorf("waiting %q", st.Waiting)
		}
	}
	waitsFor("l2")
	if _, ok := dp.attached["l1"]; !ok {
		t.Errorf("attached %v, want l1 attached while l2 is missing", dp.attached)
	}
	now := time.Now()
	ra := &learned.RA{Interface: "w0", Prefixes: []learned.Prefix{{Prefix: pfx("2001:db8:aaaa:1::/64"), OnLink: true, Autonomous: true,
		Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour)}},
		Routers: []learned.Router{{Addr: addr("fe80::1"), Until: now.Add(time.Hour)}}}
	for _, c := range []InputChange{{RA: ra}, {PD: pdOf(now, "2001:db8:100:ab00::/56")}} {
		if err := change(t, r, c); err != nil {
			t.Fatalf("%s with l2 missing: %v", c, err)
		}
	}
	want := []string{"l1 2001:db8:100:ab01::1/64", "w0 2001:db8:aaaa:1::feed/64"}
	if got := n6.addrList(); !slices.Equal(got, want) {
		t.Errorf("addresses %v, want %v", got, want)
	}
	waitsFor("l2")
	// The WAN renumbers while l2 is still missing: applied.
	ra2 := *ra
	ra2.Prefixes = []learned.Prefix{{Prefix: pfx("2001:db8:bbbb:1::/64"), OnLink: true, Autonomous: true,
		Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour)}}
	if err := change(t, r, InputChange{RA: &ra2}); err != nil {
		t.Fatal(err)
	}
	if got := n6.addrList(); !slices.Contains(got, "w0 2001:db8:bbbb:1::feed/64") {
		t.Errorf("addresses %v after the WAN renumbered with l2 missing", got)
	}
	// l2 appears (the daemon's link watcher asks for a pass).
	links.set("l2", false)
	dp.failOn, addrs.failOn = "", ""
	if err := change(t, r, InputChange{Retry: "interface l2 appeared"}); err != nil {
		t.Fatal(err)
	}
	if dp.attached["l2"] != loader.RoleLAN || !addrs.have["l2 192.168.2.1/24"] || !slices.Contains(n6.addrList(), "l2 2001:db8:100:ab02::1/64") {
		t.Errorf("after l2 appeared: attached %v, addresses %v %v", dp.attached, addrs.have, n6.addrList())
	}
	waitsFor()
	// It goes again (unplugged): the passes go on without it.
	links.set("l2", true)
	dp.failOn, addrs.failOn = "l2", "l2"
	if err := change(t, r, InputChange{Retry: "interface l2 went away"}); err != nil {
		t.Fatal(err)
	}
	waitsFor("l2")
	if st := r.Stats(); st.Errors != 0 {
		t.Errorf("reconcile errors %d (%s)", st.Errors, st.LastError)
	}
}

// `apply` (no Links) still fails on a missing interface, naming it.
func TestApplyMissingLANIsAnError(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}, failOn: "l2"}
	_, err := Apply(parse(t, twoLANs), Deps{DP: dp, Addrs: &fakeAddrs{have: map[string]bool{}}})
	if err == nil || !strings.Contains(err.Error(), "lan[1]") {
		t.Errorf("apply with l2 missing: %v, want an error naming lan[1]", err)
	}
}

// appearingLinks says l2 is missing the first time it is asked, and there
// from then on: a LAN that appears during a pass.
type appearingLinks struct {
	fakeLinks
	asked map[string]int
}

func (a *appearingLinks) Exists(ifname string) (bool, error) {
	a.mu.Lock()
	a.asked[ifname]++
	first := a.asked[ifname] == 1
	a.mu.Unlock()
	return !(ifname == "l2" && first), nil
}

// One pass decides once which LANs it waits for: a LAN that appears
// between the attach steps and the address steps gets neither in that
// pass (the next pass, which the link watcher asks for, does both), never
// addresses on an interface the pass did not attach.
func TestApplyInputsDecidesWaitingOnce(t *testing.T) {
	links := &appearingLinks{asked: map[string]int{}}
	dp := &fakeDP{attached: map[string]loader.Role{}}
	n6 := newFakeNet6()
	deps := Deps{DP: dp, Addrs: &fakeAddrs{have: map[string]bool{}}, Net6: n6, Links: links}
	now := time.Now()
	in := Inputs{Config: parse(t, twoLANsPD), Learned: Learned{PD: pdOf(now, "2001:db8:100:ab00::/56")}}
	steps, err := applyNow(in, deps)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(steps, func(s Step) bool { return s.Result == "waiting" && s.Interface == "l2" }) {
		t.Fatalf("the pass did not wait for l2: %v", steps)
	}
	if _, ok := dp.attached["l2"]; ok {
		t.Errorf("l2 attached in the pass that waits for it")
	}
	for _, a := range n6.addrList() {
		if strings.HasPrefix(a, "l2 ") {
			t.Errorf("address %s installed on l2 in the pass that waits for it (not attached)", a)
		}
	}
	if n := links.asked["l2"]; n != 1 {
		t.Errorf("the pass looked l2 up %d times, want once", n)
	}
}
