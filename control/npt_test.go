package control

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/loader"
)

type fakeNPT struct {
	rules    []loader.NPTRule
	proxy    []loader.NDPProxyEntry
	tc       []string // slow-path attach calls
	detached []string
	failNDP  bool
}

func (f *fakeNPT) AttachNPTSlowPath(ifname string) (string, error) {
	f.tc = append(f.tc, ifname)
	return "attached", nil
}

func (f *fakeNPT) DetachNPTSlowPath(ifname string) (bool, error) {
	f.detached = append(f.detached, ifname)
	return true, nil
}
func (f *fakeNPT) SyncNPT(r []loader.NPTRule) error                 { f.rules = r; return nil }
func (f *fakeNPT) NPTRules() ([]loader.NPTRule, error)              { return f.rules, nil }
func (f *fakeNPT) NDPProxyEntries() ([]loader.NDPProxyEntry, error) { return f.proxy, nil }
func (f *fakeNPT) SyncNDPProxy(p []loader.NDPProxyEntry) error {
	if f.failNDP && len(p) > 0 {
		return errors.New("map full")
	}
	f.proxy = p
	return nil
}

const seed000Config = `
wan: {interface: w0}
lan: [{interface: l1}]
npt:
  - {interface: w0, inside: 'bbbb::/64', outside: 'aaaa::/64', mode: preserve-host}
  - {interface: w0, inside: 'fd00:1::/48', outside: '2001:db8:1::/48'}
ndp-proxy:
  - {interface: w0, prefixes: [auto]}
`

// `auto` proxies exactly the NPT outside prefixes of the interface: never
// the inside ones (seed 000).
func TestApplyNPTAuto(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	tr := &fakeNPT{}
	if _, err := Apply(parse(t, seed000Config), Deps{DP: dp, Addrs: &fakeAddrs{have: map[string]bool{}}, NPT: tr}); err != nil {
		t.Fatal(err)
	}
	wantRules := []loader.NPTRule{
		{Interface: "w0", Inside: netip.MustParsePrefix("bbbb::/64"), Outside: netip.MustParsePrefix("aaaa::/64"), Mode: loader.NPTPreserveHost},
		{Interface: "w0", Inside: netip.MustParsePrefix("fd00:1::/48"), Outside: netip.MustParsePrefix("2001:db8:1::/48"), Mode: loader.NPTRFC6296},
	}
	if !reflect.DeepEqual(tr.rules, wantRules) {
		t.Errorf("rules = %+v", tr.rules)
	}
	wantProxy := []loader.NDPProxyEntry{
		{Interface: "w0", Prefix: netip.MustParsePrefix("aaaa::/64"), Mode: loader.NDPPrefix},
		{Interface: "w0", Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Mode: loader.NDPPrefix},
	}
	if !reflect.DeepEqual(tr.proxy, wantProxy) {
		t.Errorf("proxy = %+v", tr.proxy)
	}
	if !reflect.DeepEqual(tr.tc, []string{"w0"}) {
		t.Errorf("slow path attached on %v, want [w0]", tr.tc)
	}
}

func TestApplyNPTOutsideAutoNeedsDaemon(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	cfg := parse(t, "wan: {interface: w0}\nnpt: [{interface: w0, inside: 'fd00::/64', outside: auto}]")
	_, err := Apply(cfg, Deps{DP: dp, Addrs: &fakeAddrs{have: map[string]bool{}}, NPT: &fakeNPT{}})
	if err == nil || !strings.Contains(err.Error(), "npt[0].outside: auto is the WAN prefix learned by the daemon") {
		t.Fatalf("err = %v", err)
	}
	if len(dp.attached) != 0 {
		t.Errorf("attached %v before failing", dp.attached)
	}
}

// A failing NDP proxy step puts the NPT rules back as they were and
// detaches what this apply attached.
func TestApplyNPTRollsBack(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	old := []loader.NPTRule{{Interface: "w0", Inside: netip.MustParsePrefix("fd09::/64"), Outside: netip.MustParsePrefix("2001:db8:9::/64")}}
	tr := &fakeNPT{rules: old, failNDP: true}
	_, err := Apply(parse(t, seed000Config), Deps{DP: dp, Addrs: &fakeAddrs{have: map[string]bool{}}, NPT: tr})
	if err == nil || !strings.Contains(err.Error(), "ndp-proxy: map full") {
		t.Fatalf("err = %v", err)
	}
	if !reflect.DeepEqual(tr.rules, old) {
		t.Errorf("rules after rollback = %+v, want %+v", tr.rules, old)
	}
	if len(dp.attached) != 0 {
		t.Errorf("attached after rollback: %v", dp.attached)
	}
}

// raWith is an RA snapshot announcing the /64 prefixes with a router.
func raWith(prefixes ...string) *learned.RA {
	ra := &learned.RA{Interface: "w0", Routers: []learned.Router{{Addr: netip.MustParseAddr("fe80::1"), Until: time.Now().Add(time.Hour)}}}
	for _, p := range prefixes {
		ra.Prefixes = append(ra.Prefixes, learned.Prefix{Prefix: netip.MustParsePrefix(p), OnLink: true, Autonomous: true,
			Valid: time.Now().Add(time.Hour), Preferred: time.Now().Add(30 * time.Minute)})
	}
	return ra
}

// The daemon's pass fills `outside: auto` from the learned WAN prefix; a
// new prefix moves NPT and the auto-proxied prefix together. Until a
// prefix is learned the rule waits, and the rest of the config goes ahead.
func TestApplyInputsLearnedOutside(t *testing.T) {
	cfg := parse(t, "wan: {interface: w0}\nlan: [{interface: l1}]\nnpt: [{interface: w0, inside: 'fd00:1::/64', outside: auto}]\nndp-proxy: [{interface: w0, prefixes: [auto]}]")
	dp := &fakeDP{attached: map[string]loader.Role{}}
	tr := &fakeNPT{}
	deps := Deps{DP: dp, Addrs: &fakeAddrs{have: map[string]bool{}}, NPT: tr}
	steps, err := applyNow(Inputs{Config: cfg}, deps)
	if err != nil || len(tr.rules) != 0 || len(tr.proxy) != 0 || dp.attached["l1"] != loader.RoleLAN {
		t.Fatalf("before a prefix is learned: err %v, rules %v, proxy %v, attached %v", err, tr.rules, tr.proxy, dp.attached)
	}
	if !hasStep(steps, "npt[0].outside: auto, and no WAN prefix has been learned yet", "waiting") {
		t.Errorf("steps %v do not say what waits", steps)
	}
	for _, wan := range []string{"2001:db8:1:2::/64", "2001:db8:9:9::/64"} {
		in := Inputs{Config: cfg, Learned: Learned{RA: raWith(wan)}}
		if _, err := applyNow(in, deps); err != nil {
			t.Fatal(err)
		}
		if len(tr.rules) != 1 || tr.rules[0].Outside.String() != wan || len(tr.proxy) != 1 || tr.proxy[0].Prefix.String() != wan {
			t.Errorf("WAN prefix %s: rules %+v proxy %+v", wan, tr.rules, tr.proxy)
		}
	}
	if !cfg.NPT[0].OutsideAuto {
		t.Error("the config in force was modified")
	}
	// A /56 never becomes the WAN prefix: the address needs a /64.
	in := Inputs{Config: cfg, Learned: Learned{RA: raWith("2001:db8:1::/56")}}
	if steps, err := applyNow(in, deps); err != nil || len(tr.rules) != 0 || !hasStep(steps, "npt[0].outside: auto, and no WAN prefix", "waiting") {
		t.Errorf("err %v rules %v steps %v", err, tr.rules, steps)
	}
}

func hasStep(steps []Step, what, result string) bool {
	for _, s := range steps {
		if strings.Contains(s.What, what) && s.Result == result {
			return true
		}
	}
	return false
}

// Removing the last npt entry of an interface removes its slow path too;
// an interface that keeps one keeps its slow path.
func TestApplyRemovesNPTSlowPath(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	tr := &fakeNPT{}
	deps := Deps{DP: dp, Addrs: &fakeAddrs{have: map[string]bool{}}, NPT: tr}
	with := parse(t, "wan: {interface: w0}\nlan: [{interface: l1}]\nnpt: [{interface: w0, inside: 'fd00:1::/64', outside: '2001:db8:1::/64'}]")
	if _, err := Apply(with, deps); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(with, deps); err != nil || len(tr.detached) != 0 {
		t.Fatalf("same config again: err %v, detached %v", err, tr.detached)
	}
	steps, err := Apply(parse(t, "wan: {interface: w0}\nlan: [{interface: l1}]"), deps)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.rules) != 0 || !reflect.DeepEqual(tr.detached, []string{"w0"}) || !hasStep(steps, "npt slow path (tc) on w0", "detached") {
		t.Errorf("npt removed: rules %v detached %v steps %v", tr.rules, tr.detached, steps)
	}
}

type fakeMulticast map[string]bool

func (f fakeMulticast) AllMulticast(ifname string) (bool, error) {
	was := f[ifname]
	f[ifname] = true
	return !was, nil
}

// Every NDP proxy interface takes all multicast, so a NIC does not filter
// the solicited-node groups the router never joined.
func TestApplyProxyAllMulticast(t *testing.T) {
	mc := fakeMulticast{}
	deps := Deps{DP: &fakeDP{attached: map[string]loader.Role{}}, Addrs: &fakeAddrs{have: map[string]bool{}}, NPT: &fakeNPT{}, Multicast: mc}
	cfg := parse(t, seed000Config)
	steps, err := Apply(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if !mc["w0"] || len(mc) != 1 || !hasStep(steps, "all-multicast on w0", "set") {
		t.Errorf("all-multicast %v, steps %v", mc, steps)
	}
	if steps, _ = Apply(cfg, deps); !hasStep(steps, "all-multicast on w0", "unchanged") {
		t.Errorf("again: steps %v", steps)
	}
}

// applyNow is one pass over in, its plan made now.
func applyNow(in Inputs, deps Deps) ([]Step, error) {
	return ApplyInputs(in, NewPlan(in, time.Now()), deps)
}
