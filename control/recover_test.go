package control

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/xdprouter/xdprouter/loader"
)

// panicDP panics when asked to attach one interface.
type panicDP struct {
	*fakeDP
	on string
}

func (d panicDP) Attach(ifname string, role loader.Role, mode loader.Mode, gate loader.CTGate) (loader.AttachResult, error) {
	if ifname == d.on {
		var p *int
		_ = *p // a nil dereference: a real runtime panic
	}
	return d.fakeDP.Attach(ifname, role, mode, gate)
}

// Issue 13 item 14: a pass that panics is a failed pass - logged,
// counted, the previous state in force, the data plane released - and the
// reconciler takes the next change as usual.
func TestReconcilePanicIsAFailedPass(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	var opened, closed atomic.Int32
	sys := func() (Deps, func() error, error) {
		opened.Add(1)
		return Deps{DP: panicDP{dp, "l9"}, Addrs: addrs}, func() error { closed.Add(1); return nil }, nil
	}
	r := NewReconciler(parse(t, twoLANs), sys, quietLog, Hooks{})
	startReconciler(t, r)
	err := change(t, r, InputChange{Config: parse(t, "lan: [{interface: l9, sla-id: 9}]\n")})
	if err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("error %v, want the panic", err)
	}
	st := r.Stats()
	if st.Panics != 1 || st.Errors != 1 || st.Generation != 1 || !strings.Contains(st.LastError, "nil pointer") {
		t.Errorf("stats after the panic: %+v", st)
	}
	if o, c := opened.Load(), closed.Load(); o != c {
		t.Errorf("data plane opened %d times, closed %d", o, c)
	}
	if err := change(t, r, InputChange{Config: parse(t, twoLANs)}); err != nil {
		t.Fatalf("the pass after the panic: %v", err)
	}
	if st := r.Stats(); st.Generation != 2 {
		t.Errorf("generation %d after a good pass", st.Generation)
	}
}
