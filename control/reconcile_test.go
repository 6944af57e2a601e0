package control

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/loader"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// startReconciler runs r until the test ends and waits for the initial
// pass.
func startReconciler(t *testing.T, r *Reconciler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	r.hooks.Ready = func() { close(ready) }
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		done <- nil // for the cleanup, which waits for Run
		t.Fatalf("initial pass: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no initial pass")
	}
}

// change sends c and waits for the pass that applies it.
func change(t *testing.T, r *Reconciler, c InputChange) error {
	t.Helper()
	res := make(chan error, 1)
	c.Result = res
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		t.Fatal("no pass for", c)
		return nil
	}
}

func fakeSystem(dp *fakeDP, addrs *fakeAddrs) System {
	return func() (Deps, func() error, error) {
		return Deps{DP: dp, Addrs: addrs}, func() error { return nil }, nil
	}
}

func TestReconcileIdempotent(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	var passes []ReconcileStats
	r := NewReconciler(parse(t, twoLANs), fakeSystem(dp, addrs), quietLog, Hooks{Pass: func(s ReconcileStats) { passes = append(passes, s) }})
	startReconciler(t, r)
	before := append([]string(nil), dp.log...)
	// The same config again: a pass that changes nothing.
	if err := change(t, r, InputChange{Config: parse(t, twoLANs)}); err != nil {
		t.Fatal(err)
	}
	for _, l := range dp.log[len(before):] {
		if strings.HasPrefix(l, "detach") {
			t.Errorf("an identical config detached something: %v", dp.log)
		}
	}
	want := map[string]loader.Role{"w0": loader.RoleWAN, "l1": loader.RoleLAN, "l2": loader.RoleLAN}
	if !reflect.DeepEqual(dp.attached, want) || len(addrs.have) != 2 {
		t.Errorf("attached %v addrs %v", dp.attached, addrs.have)
	}
	st := r.Stats()
	if st.Passes != 2 || st.Errors != 0 || st.Generation != 2 || len(passes) != 2 {
		t.Errorf("stats %+v after two good passes (onPass saw %d)", st, len(passes))
	}
}

// A failing pass must leave exactly the previous state: what it added is
// gone, what it changed in place (a role) is back, nothing was pruned.
func TestReconcileRollsBack(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	r := NewReconciler(parse(t, twoLANs), fakeSystem(dp, addrs), quietLog, Hooks{})
	startReconciler(t, r)
	wantDP := map[string]loader.Role{"w0": loader.RoleWAN, "l1": loader.RoleLAN, "l2": loader.RoleLAN}
	wantAddrs := map[string]bool{"l1 192.168.1.1/24": true, "l2 192.168.2.1/24": true}

	// w0 becomes a LAN, l2 goes away, l3 is new and fails.
	dp.failOn = "l3"
	bad := parse(t, `
lan:
  - {interface: w0, sla-id: 3}
  - {interface: l1, sla-id: 1, ipv4: 192.168.1.1/24}
  - {interface: l3, sla-id: 4, ipv4: 192.168.4.1/24}
`)
	err := change(t, r, InputChange{Config: bad})
	if err == nil || !strings.Contains(err.Error(), "lan[2]: boom") {
		t.Fatalf("error %v, want one naming lan[2]", err)
	}
	if !reflect.DeepEqual(dp.attached, wantDP) || !reflect.DeepEqual(addrs.have, wantAddrs) {
		t.Errorf("after a failed pass: attached %v addrs %v, want %v %v", dp.attached, addrs.have, wantDP, wantAddrs)
	}
	st := r.Stats()
	if st.Errors != 1 || st.Passes != 2 || st.Generation != 1 || !strings.Contains(st.LastError, "lan[2]") {
		t.Errorf("stats %+v", st)
	}
	if r.Current().Config.WAN == nil {
		t.Errorf("the rejected config is in force")
	}

	// The same change without the failure goes through, and what the old
	// config had alone is pruned.
	dp.failOn = ""
	if err := change(t, r, InputChange{Config: bad}); err != nil {
		t.Fatal(err)
	}
	wantDP = map[string]loader.Role{"w0": loader.RoleLAN, "l1": loader.RoleLAN, "l3": loader.RoleLAN}
	wantAddrs = map[string]bool{"l1 192.168.1.1/24": true, "l3 192.168.4.1/24": true}
	if !reflect.DeepEqual(dp.attached, wantDP) || !reflect.DeepEqual(addrs.have, wantAddrs) {
		t.Errorf("after the good pass: attached %v addrs %v, want %v %v", dp.attached, addrs.have, wantDP, wantAddrs)
	}
	if st := r.Stats(); st.Generation != 2 || st.Errors != 1 || st.Passes != 3 {
		t.Errorf("stats %+v", st)
	}
}

// Learned inputs reach the pass, and a pass that fails on one keeps the
// previous value in force.
func TestReconcileLearnedInput(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	r := NewReconciler(parse(t, twoLANs), fakeSystem(dp, addrs), quietLog, Hooks{})
	var seen []netip.Prefix
	bad := netip.MustParsePrefix("2001:db8:bad::/56")
	pdOf := func(in Inputs) netip.Prefix {
		if in.Learned.PD == nil || len(in.Learned.PD.Prefixes) == 0 {
			return netip.Prefix{}
		}
		return in.Learned.PD.Prefixes[0].Prefix
	}
	r.steps = func(in Inputs, p Plan, deps Deps) ([]Step, error) {
		seen = append(seen, pdOf(in))
		if pdOf(in) == bad {
			return nil, errors.New("prefix rejected by a step")
		}
		return ApplyInputs(in, p, deps)
	}
	startReconciler(t, r)

	// A fake prefix-delegation task: learns a prefix, renumbers, fails once.
	deleg := func(p netip.Prefix) InputChange {
		d := &learned.Delegation{Interface: "w0"}
		if p.IsValid() {
			d.Prefixes = []learned.Prefix{{Prefix: p, Valid: learned.Forever, Preferred: learned.Forever}}
		}
		return InputChange{PD: d}
	}
	p1 := netip.MustParsePrefix("2001:db8:1::/56")
	p2 := netip.MustParsePrefix("2001:db8:2::/56")
	if err := change(t, r, deleg(p1)); err != nil {
		t.Fatal(err)
	}
	if got := pdOf(r.Current()); got != p1 {
		t.Errorf("in force: %v, want %v", got, p1)
	}
	if err := change(t, r, deleg(bad)); err == nil {
		t.Fatal("the failing pass reported no error")
	}
	if got := pdOf(r.Current()); got != p1 {
		t.Errorf("after a failed pass in force: %v, want %v still", got, p1)
	}
	if err := change(t, r, deleg(p2)); err != nil {
		t.Fatal(err)
	}
	if err := change(t, r, deleg(netip.Prefix{})); err != nil {
		t.Fatal(err)
	}
	if got := pdOf(r.Current()); got.IsValid() {
		t.Errorf("lost prefix still in force: %v", got)
	}
	// initial, p1, bad, restore p1, p2, withdrawn
	want := []netip.Prefix{{}, p1, bad, p1, p2, {}}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("passes saw %v, want %v", seen, want)
	}
	if st := r.Stats(); st.Generation != 1 || st.Errors != 1 || st.Passes != 5 {
		t.Errorf("stats %+v: learned inputs must not count as config generations", st)
	}
}

func TestReconcileInitialFailureIsFatal(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}, failOn: "l2"}
	addrs := &fakeAddrs{have: map[string]bool{}}
	r := NewReconciler(parse(t, twoLANs), fakeSystem(dp, addrs), quietLog, Hooks{})
	r.hooks.Ready = func() { t.Error("ready after a failed initial pass") }
	err := r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "lan[1]") {
		t.Fatalf("Run: %v, want an error naming lan[1]", err)
	}
	if len(dp.attached) != 0 || len(addrs.have) != 0 {
		t.Errorf("failed initial pass left %v %v", dp.attached, addrs.have)
	}
}

func TestTeardownRemovesEverything(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	r := NewReconciler(parse(t, twoLANs), fakeSystem(dp, addrs), quietLog, Hooks{})
	startReconciler(t, r)
	if err := r.Teardown(); err != nil {
		t.Fatal(err)
	}
	if len(dp.attached) != 0 || len(addrs.have) != 0 {
		t.Errorf("after teardown: %v %v", dp.attached, addrs.have)
	}
}

// detachFails is fakeDP whose Detach of one interface fails.
type detachFails struct {
	*fakeDP
	name string
}

func (d detachFails) Detach(ifname string) error {
	if ifname == d.name {
		return errors.New("device busy")
	}
	return d.fakeDP.Detach(ifname)
}

// When only the removal of what the old config had fails, the new config
// is fully applied and in force; the error names what was left.
func TestReconcilePruneFailure(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	sys := func() (Deps, func() error, error) {
		return Deps{DP: detachFails{dp, "l2"}, Addrs: addrs}, func() error { return nil }, nil
	}
	r := NewReconciler(parse(t, twoLANs), sys, quietLog, Hooks{})
	startReconciler(t, r)
	err := change(t, r, InputChange{Config: parse(t, "lan: [{interface: l1, sla-id: 1}]")})
	if err == nil || !strings.Contains(err.Error(), "detach l2 (no longer configured): device busy") {
		t.Fatalf("error %v", err)
	}
	if st := r.Stats(); st.Generation != 2 || st.Errors != 1 {
		t.Errorf("stats %+v: the new config is in force, with one error", st)
	}
	// w0 was detached, l2 could not be; l1 is a LAN and its address gone.
	if want := map[string]loader.Role{"l1": loader.RoleLAN, "l2": loader.RoleLAN}; !reflect.DeepEqual(dp.attached, want) {
		t.Errorf("attached %v, want %v", dp.attached, want)
	}
}

// A daemon that starts over the state a previous one left (with another
// config) removes what only the old config had, and adopts the rest.
func TestReconcileAdoptsPreviousConfig(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{"w0": loader.RoleWAN, "l1": loader.RoleLAN, "l2": loader.RoleLAN}}
	addrs := &fakeAddrs{have: map[string]bool{"l1 192.168.1.1/24": true, "l2 192.168.2.1/24": true}}
	r := NewReconciler(parse(t, "wan: {interface: w0}\nlan: [{interface: l1, sla-id: 1, ipv4: 192.168.1.1/24}]"),
		fakeSystem(dp, addrs), quietLog, Hooks{})
	r.Adopt(parse(t, twoLANs))
	startReconciler(t, r)
	if want := map[string]loader.Role{"w0": loader.RoleWAN, "l1": loader.RoleLAN}; !reflect.DeepEqual(dp.attached, want) {
		t.Errorf("attached %v, want %v", dp.attached, want)
	}
	if want := map[string]bool{"l1 192.168.1.1/24": true}; !reflect.DeepEqual(addrs.have, want) {
		t.Errorf("addresses %v, want %v", addrs.have, want)
	}
	for _, l := range dp.log {
		if l == "detach w0" || l == "detach l1" {
			t.Errorf("adoption re-attached what it should keep: %v", dp.log)
		}
	}
}
