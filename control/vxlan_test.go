package control

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/loader"
)

// fakeVXLAN is the vxlan netdevs, the data plane's record of them and
// the steering rules, all in one.
type fakeVXLAN struct {
	devs     map[string]config.VXLAN
	index    map[string]int
	routes   map[string][]netip.Prefix
	kt       map[int]loader.KernelTunnel
	steer    SteeringState
	syncs    int
	failSync bool
	next     int
}

func newFakeVXLAN() *fakeVXLAN {
	return &fakeVXLAN{devs: map[string]config.VXLAN{}, index: map[string]int{}, routes: map[string][]netip.Prefix{},
		kt: map[int]loader.KernelTunnel{}, next: 200}
}

func (f *fakeVXLAN) Ensure(v config.VXLAN) (int, bool, error) {
	old, ok := f.devs[v.Name]
	f.devs[v.Name] = v
	if ok && old.VNI == v.VNI && old.Remote == v.Remote {
		return f.index[v.Name], false, nil
	}
	f.next++
	f.index[v.Name] = f.next
	return f.next, true, nil
}

func (f *fakeVXLAN) SetRoutes(name string, gw netip.Addr, routes []netip.Prefix) (bool, error) {
	changed := !slices.Equal(f.routes[name], routes)
	f.routes[name] = slices.Clone(routes)
	return changed, nil
}

func (f *fakeVXLAN) Owned() ([]string, error) {
	var out []string
	for n := range f.devs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

func (f *fakeVXLAN) Remove(name string) error {
	delete(f.devs, name)
	delete(f.routes, name)
	return nil
}

func (f *fakeVXLAN) PutKernelTunnel(t loader.KernelTunnel) error { f.kt[t.Ifindex] = t; return nil }
func (f *fakeVXLAN) DeleteKernelTunnel(ifindex int) error        { delete(f.kt, ifindex); return nil }
func (f *fakeVXLAN) KernelTunnels() ([]loader.KernelTunnel, error) {
	var out []loader.KernelTunnel
	for _, t := range f.kt {
		out = append(out, t)
	}
	return out, nil
}

func (f *fakeVXLAN) Sync(want SteeringState) ([]Step, error) {
	f.syncs++
	if f.failSync {
		return nil, errors.New("rule add: operation not permitted")
	}
	var steps []Step
	for _, r := range want.Rules {
		if !slices.Contains(f.steer.Rules, r) {
			steps = append(steps, Step{What: "rule " + r.String(), Result: "added"})
		}
	}
	f.steer = want
	return steps, nil
}

func (f *fakeVXLAN) deps() Deps {
	return Deps{DP: &fakeDP{attached: map[string]loader.Role{}}, Addrs: &fakeAddrs{have: map[string]bool{}},
		VXLAN: f, KTunnels: f, Steering: f}
}

// seed001 is the client of seed 001 with the ISP's prefix delegated.
const seed001 = `
wan: {interface: wan0, token: "::feed", dhcpv6-pd: {}}
lan:
  - {interface: lan0, sla-id: 0}
  - {interface: lan1, sla-id: 1}
tunnels:
  - name: vxlan01
    mode: vxlan
    vni: 1
    remote: 10.1.1.1
    address: 2001:db8:ae00:0:1::2/80
    gateway: 2001:db8:ae00:0:1::1
    prefixes: [2001:db8:ae00:1::/64, 2001:db8:ae01::/48]
`

// The rules and routes of seed 001's steering: exactly these, so that a
// rule too many (one that sends a LAN's traffic to the peer) or too few
// (the unused /48 part routed back to the peer) fails.
func TestDesiredSteeringSeed001(t *testing.T) {
	cfg := parse(t, seed001)
	cfg.Firewall.LearnedLAN = map[string][]netip.Prefix{"lan0": {pfx("2001:db8:100::/64")}, "lan1": {pfx("2001:db8:100:1::/64")}}
	got := desiredSteering(cfg)
	var rules, routes []string
	for _, r := range got.Rules {
		rules = append(rules, r.String())
	}
	for _, r := range got.Routes {
		routes = append(routes, r.String())
	}
	wantRules := []string{
		"2000: to 2001:db8:100::/64 lookup main",
		"2000: to 2001:db8:100:1::/64 lookup main",
		"2000: to 2001:db8:ae00:1::/64 lookup main",
		"2000: to 2001:db8:ae01::/64 lookup main",
		"2000: to 2001:db8:ae01:1::/64 lookup main",
		"2001: from 2001:db8:ae00:1::/64 lookup 2000",
		"2001: from 2001:db8:ae01::/48 lookup 2000",
		"2001: from 2001:db8:ae00:0:1::/80 lookup 2000",
		"2001: to 2001:db8:ae00:1::/64 lookup 2000",
		"2001: to 2001:db8:ae01::/48 lookup 2000",
	}
	wantRoutes := []string{
		"table 2000: default via 2001:db8:ae00:0:1::1 dev vxlan01",
		"table 2000: unreachable 2001:db8:ae00:1::/64",
		"table 2000: unreachable 2001:db8:ae01::/48",
	}
	if !slices.Equal(rules, wantRules) {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(rules, "\n"), strings.Join(wantRules, "\n"))
	}
	if !slices.Equal(routes, wantRoutes) {
		t.Errorf("routes:\n%s\nwant:\n%s", strings.Join(routes, "\n"), strings.Join(wantRoutes, "\n"))
	}
	// Without prefixes there is nothing to steer: no rule at all.
	if st := desiredSteering(parse(t, strings.Replace(seed001, "    prefixes: [2001:db8:ae00:1::/64, 2001:db8:ae01::/48]\n", "", 1))); len(st.Rules)+len(st.Routes) != 0 {
		t.Errorf("a tunnel without prefixes steers: %+v", st)
	}
}

// Apply makes the netdev, records it for the data plane, steers; a second
// apply changes nothing; a config without it removes all of it.
func TestApplyVXLAN(t *testing.T) {
	f := newFakeVXLAN()
	deps := f.deps()
	cfg := parse(t, seed001)
	steps, err := Apply(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	idx := f.index["vxlan01"]
	if kt, ok := f.kt[idx]; !ok || kt.Name != "vxlan01" || kt.Kind != "vxlan" || kt.VNI != 1 || kt.Remote != addr("10.1.1.1") || kt.Port != 4789 {
		t.Errorf("data plane record %+v (ifindex %d)", f.kt, idx)
	}
	if len(f.steer.Rules) != 8 || len(f.steer.Routes) != 3 {
		t.Errorf("steering %+v", f.steer)
	}
	if !slices.ContainsFunc(steps, func(s Step) bool { return strings.HasPrefix(s.What, "vxlan netdev vxlan01") && s.Result == "created" }) {
		t.Errorf("steps %v", steps)
	}
	steps, err = Apply(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Result != "present" && s.Result != "unchanged" {
			t.Errorf("second apply: %+v", s)
		}
	}
	// A new VNI makes the netdev anew: one record, of the new ifindex.
	if _, err := Apply(parse(t, strings.Replace(seed001, "vni: 1", "vni: 2", 1)), deps); err != nil {
		t.Fatal(err)
	}
	if idx2 := f.index["vxlan01"]; idx2 == idx || len(f.kt) != 1 || f.kt[idx2].VNI != 2 {
		t.Errorf("after a new VNI: ifindex %d (was %d), records %+v", idx2, idx, f.kt)
	}
	// A reload without the tunnel: netdev, record and rules go.
	if _, err := Apply(parse(t, "wan: {interface: wan0}\nlan: [{interface: lan0}]\n"), deps); err != nil {
		t.Fatal(err)
	}
	if len(f.devs) != 0 || len(f.kt) != 0 || len(f.steer.Rules)+len(f.steer.Routes) != 0 {
		t.Errorf("after the tunnel left the config: devs %v, records %v, steering %+v", f.devs, f.kt, f.steer)
	}
}

// A failed steering undoes the netdev the apply made; Prune of the whole
// config (exit with --detach-on-exit) removes netdev, record and rules.
func TestApplyVXLANRollbackAndPrune(t *testing.T) {
	f := newFakeVXLAN()
	f.failSync = true
	cfg := parse(t, seed001)
	if _, err := Apply(cfg, f.deps()); err == nil || !strings.Contains(err.Error(), "policy-routing: rule add") {
		t.Fatalf("apply: %v", err)
	}
	if len(f.devs) != 0 || len(f.kt) != 0 {
		t.Errorf("after rollback: devs %v, records %v", f.devs, f.kt)
	}
	f.failSync = false
	deps := f.deps()
	if _, err := Apply(cfg, deps); err != nil {
		t.Fatal(err)
	}
	if _, err := Prune(cfg, nil, deps); err != nil {
		t.Fatal(err)
	}
	if len(f.devs) != 0 || len(f.kt) != 0 || len(f.steer.Rules)+len(f.steer.Routes) != 0 {
		t.Errorf("after prune: devs %v, records %v, steering %+v", f.devs, f.kt, f.steer)
	}
}

// The default firewall treats a vxlan tunnel as the outside: its netdev is
// wan-side, only its remote may send to its UDP port, and the LAN's /64s
// of its prefixes are that LAN's sources (BCP 38).
func TestFirewallVXLAN(t *testing.T) {
	cfg := parse(t, seed001)
	rs, _ := desiredRuleset(cfg)
	fw := rs.Firewall
	if !slices.Contains(fw.WAN, "vxlan01") || len(fw.VXLAN) != 1 || fw.VXLAN[0] != (VXLANPeer{"vxlan01", addr("10.1.1.1"), 4789}) {
		t.Fatalf("firewall %+v", fw)
	}
	lan0 := fw.LANs[0]
	if lan0.Interface != "lan0" || !slices.Contains(lan0.IPv6, pfx("2001:db8:ae00:1::/64")) || !slices.Contains(lan0.IPv6, pfx("2001:db8:ae01::/64")) ||
		slices.Contains(lan0.IPv6, pfx("2001:db8:ae01:1::/64")) {
		t.Errorf("lan0 sources %v", lan0.IPv6)
	}
	script := rs.Script()
	for _, want := range []string{
		`ip saddr { 10.1.1.1 } udp dport 4789 accept comment "vxlan vxlan01 from its remote"`,
		`iifname { "wan0", "vxlan01" } jump wan_input`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("nft script lacks %q:\n%s", want, script)
		}
	}
}

// An npt entry on the tunnel steers its inside prefix as the tunnel's own
// prefixes are steered (its traffic leaves by the tunnel, translated onto
// the tunnel's /64); the WAN's npt inside prefix stays with main.
func TestDesiredSteeringNPTOnTunnel(t *testing.T) {
	cfg := parse(t, seed001+`npt:
  - {interface: wan0, inside: fd00:1::/64, outside: 2001:db8:100:ff::/64}
  - {interface: vxlan01, inside: fd00:2::/64, outside: 2001:db8:ae01:ff::/64}
`)
	cfg.Firewall.LearnedLAN = map[string][]netip.Prefix{"lan0": {pfx("2001:db8:100::/64")}}
	var rules []string
	for _, r := range desiredSteering(cfg).Rules {
		rules = append(rules, r.String())
	}
	wantRules := []string{
		"2000: to 2001:db8:100::/64 lookup main",
		"2000: to fd00:1::/64 lookup main",
		"2000: to fd00:2::/64 lookup main",
		"2000: to 2001:db8:ae00:1::/64 lookup main",
		"2000: to 2001:db8:ae01::/64 lookup main",
		"2000: to 2001:db8:ae01:1::/64 lookup main",
		"2001: from 2001:db8:ae00:1::/64 lookup 2000",
		"2001: from 2001:db8:ae01::/48 lookup 2000",
		"2001: from 2001:db8:ae00:0:1::/80 lookup 2000",
		"2001: from fd00:2::/64 lookup 2000",
		"2001: to 2001:db8:ae00:1::/64 lookup 2000",
		"2001: to 2001:db8:ae01::/48 lookup 2000",
	}
	if !slices.Equal(rules, wantRules) {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(rules, "\n"), strings.Join(wantRules, "\n"))
	}
}
