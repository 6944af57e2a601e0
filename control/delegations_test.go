package control

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/config"
)

// A delegation's peers through Apply: a vxlan netdev each with its routes
// via the peer's link address, recorded for the data plane; downstream in
// the firewall (their sources checked, the outside let through to them);
// the parent covered by an unreachable route in the plan.
func TestApplyDelegation(t *testing.T) {
	f := newFakeVXLAN()
	cfg := parse(t, `
wan: {interface: wan0}
delegations:
  - prefix: 2001:db8:ae00::/40
    peers: [{id: 1, remote: 10.1.1.2}, {id: 2, remote: 10.1.1.3}]
`)
	if _, err := Apply(cfg, f.deps()); err != nil {
		t.Fatal(err)
	}
	if len(f.devs) != 2 || !slices.Equal(f.routes["vxlan02"], []netip.Prefix{pfx("2001:db8:ae00:2::/64"), pfx("2001:db8:ae02::/48")}) {
		t.Errorf("devs %v routes %v", f.devs, f.routes)
	}
	if len(f.kt) != 2 || len(f.steer.Rules) != 0 {
		t.Errorf("records %v steering %+v", f.kt, f.steer)
	}
	rs, _ := desiredRuleset(cfg)
	script := rs.Script()
	for _, want := range []string{
		`ip saddr { 10.1.1.2, 10.1.1.3 } udp dport 4789 accept comment "vxlan from the 2 tunnels' remotes (vxlan01, ...)"`,
		`iifname { "vxlan01", "vxlan02" } jump downstream_forward`,
		`iifname "vxlan02" ip6 saddr != { fe80::/10, 2001:db8:ae00:0:2::/80, 2001:db8:ae00:2::/64, 2001:db8:ae02::/48 } counter name drop_lan_spoofed drop`,
		`oifname { "vxlan01", "vxlan02" } accept`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("nft script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, `"wan0", "vxlan01"`) {
		t.Errorf("a downstream peer is wan-side:\n%s", script)
	}
	if p := NewPlan(Inputs{Config: cfg}, t0); !slices.Equal(p.Carved, []netip.Prefix{pfx("2001:db8:ae00::/40")}) {
		t.Errorf("plan carved %v", p.Carved)
	}
}

// The seed's server with all 255 peers: config, plan, nftables ruleset,
// steering and one Apply pass (with the system faked: what is measured
// is xdprouter's own work, not the kernel's making 255 netdevs) well
// under a second; the bound is 300 ms, measured around 20.
func TestDelegations255PeersLoad(t *testing.T) {
	var b strings.Builder
	b.WriteString("wan: {interface: enp1s0f0}\ndelegations:\n  - prefix: 2001:db8:ae00::/40\n    peers:\n")
	for id := 1; id <= 255; id++ {
		fmt.Fprintf(&b, "      - {id: %d, remote: 10.1.%d.%d}\n", id, id/250+1, id%250+1)
	}
	f := newFakeVXLAN()
	start := time.Now()
	cfg, err := config.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPlan(Inputs{Config: cfg}, start)
	rs, _ := desiredRuleset(cfg)
	script := rs.Script()
	st := desiredSteering(cfg)
	if _, err := Apply(cfg, f.deps()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if len(f.devs) != 255 || len(p.Carved) != 1 || len(st.Rules) != 0 || !strings.Contains(script, `"vxlanff"`) {
		t.Fatalf("devs %d, plan %+v, steering %+v", len(f.devs), p.Carved, st)
	}
	t.Logf("255 peers: parse, validate, plan, ruleset, apply in %s", took)
	if took > 300*time.Millisecond {
		t.Errorf("255 peers took %s; want well under a second (bound 300ms)", took)
	}
}
