package control

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
)

// A tunnel's fixed prefixes are carved to the LANs by sla-id beside the
// delegated prefix: each LAN gets its /64s with the router's address in
// each (permanent), and its RAs carry them, also while the ISP's prefix
// and default router are not there (their sources route by the tunnel).
func TestPlanFixedPrefixes(t *testing.T) {
	in := Inputs{Config: parse(t, seed001)}
	p := NewPlan(in, t0)
	lan0, lan1 := p.LANs[0], p.LANs[1]
	if len(lan0.Fixed) != 2 || lan0.Fixed[0].Prefix != pfx("2001:db8:ae00:1::/64") || lan0.Fixed[0].Tunnel != "vxlan01" ||
		lan0.Fixed[0].Addr.Prefix != pfx("2001:db8:ae00:1::1/64") || lan0.Fixed[0].Addr.Interface != "lan0" ||
		!lan0.Fixed[0].Addr.Valid.Equal(learned.Forever) || lan0.Fixed[1].Prefix != pfx("2001:db8:ae01::/64") {
		t.Errorf("lan0 fixed %+v", lan0.Fixed)
	}
	if len(lan1.Fixed) != 1 || lan1.Fixed[0].Prefix != pfx("2001:db8:ae01:1::/64") {
		t.Errorf("lan1 fixed %+v", lan1.Fixed)
	}
	var addrs []string
	for _, a := range p.addrs() {
		addrs = append(addrs, a.Interface+" "+a.Prefix.String())
	}
	if want := []string{"lan0 2001:db8:ae00:1::1/64", "lan0 2001:db8:ae01::1/64", "lan1 2001:db8:ae01:1::1/64"}; !slices.Equal(addrs, want) {
		t.Errorf("addresses %v, want %v", addrs, want)
	}
	ads := p.Adverts()
	if len(ads) != 2 || !slices.Equal(ads[0].Fixed, []netip.Prefix{pfx("2001:db8:ae00:1::/64"), pfx("2001:db8:ae01::/64")}) ||
		ads[0].RouterLifetime != LANRouterLifetime || len(ads[0].Prefixes) != 0 {
		t.Errorf("adverts %+v", ads)
	}
	// A waiting LAN gets no address, in the fixed prefixes either.
	for _, a := range p.without(map[string]string{"lan1": "lan[1]"}).addrs() {
		if a.Interface == "lan1" {
			t.Errorf("waiting lan1 gets %s", a.Prefix)
		}
	}
}

// A fixed prefix taken out of the config is advertised deprecated for two
// hours, the router keeping its address in it, as after a renumbering.
func TestRetireFixedPrefix(t *testing.T) {
	old := Inputs{Config: parse(t, seed001)}
	next := Inputs{Config: parse(t, strings.Replace(seed001, "[2001:db8:ae00:1::/64, 2001:db8:ae01::/48]", "[2001:db8:ae01::/48]", 1))}
	next.Learned.Retired = retire(NewPlan(old, t0), NewPlan(next, t0), t0)
	p := NewPlan(next, t0)
	r := p.LANs[0].Retired
	if len(r) != 1 || r[0].Prefix != pfx("2001:db8:ae00:1::/64") || !r[0].Preferred.Equal(t0) || !r[0].Valid.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("retired %+v", r)
	}
	if len(p.LANs[0].RetiredAddrs) != 1 || p.LANs[0].RetiredAddrs[0].Prefix != pfx("2001:db8:ae00:1::1/64") {
		t.Errorf("retired addresses %+v", p.LANs[0].RetiredAddrs)
	}
	if len(p.LANs[1].Retired) != 0 {
		t.Errorf("lan1 retired %+v: its /64 of the /48 stays", p.LANs[1].Retired)
	}
	// Put back, it is current again and not also retired.
	back := Inputs{Config: old.Config, Learned: Learned{Retired: next.Learned.Retired}}
	if got := NewPlan(back, t0.Add(time.Minute)).LANs[0]; len(got.Retired) != 0 || len(got.Fixed) != 2 {
		t.Errorf("put back: %+v", got)
	}
}
