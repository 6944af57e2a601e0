package control

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/control/learned"
)

var (
	t0   = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

func slaac(p string, valid, preferred time.Duration) learned.Prefix {
	return learned.Prefix{Prefix: pfx(p), OnLink: true, Autonomous: true, Valid: t0.Add(valid), Preferred: t0.Add(preferred)}
}

func delegated(p string, valid, preferred time.Duration) *learned.Delegation {
	return &learned.Delegation{Interface: "w0", DNS: []netip.Addr{addr("2001:db8:53::1")},
		Prefixes: []learned.Prefix{{Prefix: pfx(p), Valid: t0.Add(valid), Preferred: t0.Add(preferred)}}}
}

const ipoe = `
wan: {interface: w0, token: "::feed", dhcpv6-pd: {prefix-length-hint: 56}}
lan:
  - {interface: l1, sla-id: 1}
  - {interface: l2, sla-id: 255, token: "::2"}
`

func TestPlanWANAndPD(t *testing.T) {
	in := Inputs{Config: parse(t, ipoe), Learned: Learned{
		RA: &learned.RA{Interface: "w0",
			Prefixes: []learned.Prefix{
				slaac("2001:db8:aaaa:1::/64", time.Hour, 0), // deprecated
				slaac("2001:db8:aaaa:2::/64", time.Hour, 30*time.Minute),
				slaac("2001:db8:aaaa::/56", time.Hour, time.Hour),                                                           // no SLAAC on a /56
				{Prefix: pfx("2001:db8:aaaa:3::/64"), OnLink: true, Valid: t0.Add(time.Hour), Preferred: t0.Add(time.Hour)}, // no A flag
			},
			Routers: []learned.Router{
				{Addr: addr("fe80::1"), Until: t0.Add(time.Hour)},
				{Addr: addr("fe80::2"), Until: t0.Add(time.Hour), Preference: 1},
				{Addr: addr("fe80::3"), Until: t0.Add(-time.Second), Preference: 1}, // expired
			},
			DNS: []learned.Server{{Addr: addr("2001:db8:53::1"), Until: t0.Add(time.Minute)}, {Addr: addr("2001:db8:53::2"), Until: t0}},
			MTU: 1500,
		},
		PD: delegated("2001:db8:100:ab00::/56", 2*time.Hour, time.Hour),
	}}
	p := NewPlan(in, t0)
	if p.WANAddr.Prefix != pfx("2001:db8:aaaa:2::feed/64") || p.WANAddr.Interface != "w0" || !p.WANAddr.Valid.Equal(t0.Add(time.Hour)) {
		t.Errorf("WAN address %+v: want the preferred /64 + token", p.WANAddr)
	}
	if p.Gateway != addr("fe80::2") {
		t.Errorf("gateway %s: want the live high-preference router", p.Gateway)
	}
	if len(p.LANs) != 2 || p.LANs[0].Prefix.Prefix != pfx("2001:db8:100:ab01::/64") || p.LANs[0].Addr.Prefix != pfx("2001:db8:100:ab01::1/64") ||
		p.LANs[1].Prefix.Prefix != pfx("2001:db8:100:abff::/64") || p.LANs[1].Addr.Prefix != pfx("2001:db8:100:abff::2/64") {
		t.Errorf("LANs %+v", p.LANs)
	}
	if l := p.LANs[0].Prefix; !l.Valid.Equal(t0.Add(2*time.Hour)) || !l.Preferred.Equal(t0.Add(time.Hour)) || !l.Autonomous || !l.OnLink {
		t.Errorf("LAN prefix lifetimes/flags %+v: want the delegated ones", l)
	}
	// The RA's DNS server stays, with the longer of its lifetimes; the
	// expired one is gone.
	if len(p.DNS) != 1 || p.DNS[0].Addr != addr("2001:db8:53::1") || !p.DNS[0].Until.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("DNS %+v", p.DNS)
	}
	if len(p.Delegated) != 1 || len(p.Pending) != 0 {
		t.Errorf("delegated %v pending %v", p.Delegated, p.Pending)
	}
	ads := p.Adverts()
	if len(ads) != 2 || ads[0].Interface != "l1" || ads[0].MTU != 1500 || len(ads[0].Prefixes) != 1 || len(ads[0].DNS) != 1 {
		t.Errorf("adverts %+v", ads)
	}
}

func TestPlanSLAIDMustFit(t *testing.T) {
	in := Inputs{Config: parse(t, ipoe), Learned: Learned{PD: delegated("2001:db8:100:ab00::/60", time.Hour, time.Hour)}}
	p := NewPlan(in, t0)
	if p.LANs[0].Prefix.Prefix != pfx("2001:db8:100:ab01::/64") || p.LANs[1].Prefix.Prefix.IsValid() {
		t.Errorf("LANs %+v", p.LANs)
	}
	if !slices.ContainsFunc(p.Pending, func(s string) bool {
		return strings.Contains(s, "lan[1].sla-id: 255 does not fit the delegated 2001:db8:100:ab00::/60, which has 16 /64s (sla-id 0-15)")
	}) {
		t.Errorf("pending %v", p.Pending)
	}
	if !slices.ContainsFunc(p.Pending, func(s string) bool { return strings.HasPrefix(s, "wan: no /64 prefix") }) {
		t.Errorf("pending %v does not say the WAN address waits for an RA", p.Pending)
	}
}

func TestPlanWaitsForPD(t *testing.T) {
	p := NewPlan(Inputs{Config: parse(t, ipoe)}, t0)
	if p.LANs[0].Prefix.Prefix.IsValid() || len(p.Adverts()) != 0 || p.WANAddr.IsValid() || p.Gateway.IsValid() {
		t.Errorf("plan without inputs: %+v", p)
	}
	want := []string{"wan: no /64", "wan.dhcpv6-pd: no prefix delegated yet", "lan[0]: waiting for a delegated prefix", "lan[1]: waiting"}
	if len(p.Pending) != len(want) {
		t.Fatalf("pending %q", p.Pending)
	}
	for i, w := range want {
		if !strings.HasPrefix(p.Pending[i], w) {
			t.Errorf("pending[%d] = %q, want %q...", i, p.Pending[i], w)
		}
	}
}

// A line with one shared /64 and no PD: the LAN takes the WAN's /64 and
// the WAN keeps only its address (a /128), so the /64's route is the LAN's.
func TestPlanShared64(t *testing.T) {
	cfg := parse(t, `
wan: {interface: w0, token: "::feed"}
lan: [{interface: l1}]
ndp-proxy: [{interface: w0, mode: lan-neighbor, prefixes: [auto]}]
`)
	in := Inputs{Config: cfg, Learned: Learned{RA: &learned.RA{Prefixes: []learned.Prefix{slaac("2001:db8:5:6::/64", time.Hour, time.Hour)}}}}
	p := NewPlan(in, t0)
	if !p.Shared || p.WANAddr.Prefix != pfx("2001:db8:5:6::feed/128") || p.LANs[0].Addr.Prefix != pfx("2001:db8:5:6::1/64") {
		t.Errorf("shared plan %+v", p)
	}
	out, pending := resolveLearned(cfg, p, nil)
	if len(pending) != 0 || len(out.NDPProxy) != 1 || out.NDPProxy[0].Auto || !slices.Equal(out.NDPProxy[0].Prefixes, []netip.Prefix{pfx("2001:db8:5:6::/64")}) {
		t.Errorf("ndp proxy %+v pending %v", out.NDPProxy, pending)
	}
	if !cfg.NDPProxy[0].Auto || len(cfg.NDPProxy[0].Prefixes) != 0 {
		t.Error("the config in force was modified")
	}
}

// Renumbering: the old LAN prefix is kept, deprecated, for at most two
// hours or its valid lifetime; it leaves once expired, and is not listed
// twice when the ISP gives it back.
func TestRetire(t *testing.T) {
	cfg := parse(t, ipoe)
	old := Inputs{Config: cfg, Learned: Learned{PD: delegated("2001:db8:100:ab00::/56", 24*time.Hour, 12*time.Hour)}}
	next := Inputs{Config: cfg, Learned: Learned{PD: delegated("2001:db8:200:cd00::/56", 24*time.Hour, 12*time.Hour)}}
	next.Learned.Retired = retire(NewPlan(old, t0), NewPlan(next, t0), t0)
	p := NewPlan(next, t0)
	r := p.LANs[0].Retired
	if len(r) != 1 || r[0].Prefix != pfx("2001:db8:100:ab01::/64") || !r[0].Preferred.Equal(t0) || !r[0].Valid.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("retired %+v", r)
	}
	ad := p.Adverts()[0]
	if len(ad.Prefixes) != 2 || ad.Prefixes[0].Prefix != pfx("2001:db8:200:cd01::/64") || ad.Prefixes[1].Prefix != r[0].Prefix {
		t.Errorf("advert %+v: the new prefix first, then the deprecated one", ad)
	}
	// Another pass (an RA refresh) keeps the retired prefix...
	later := t0.Add(time.Hour)
	again := next
	again.Learned.Retired = retire(p, NewPlan(next, later), later)
	if got := NewPlan(again, later).LANs[0].Retired; len(got) != 1 || !got[0].Valid.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("after a refresh: %+v", got)
	}
	// ...until it expires.
	end := t0.Add(2*time.Hour + time.Second)
	if got := NewPlan(again, end).LANs[0].Retired; len(got) != 0 {
		t.Errorf("expired prefix still advertised: %+v", got)
	}
	// The old prefix coming back is current, not also retired.
	back := Inputs{Config: cfg, Learned: Learned{PD: old.Learned.PD, Retired: retire(p, NewPlan(old, later), later)}}
	if got := NewPlan(back, later).LANs[0]; got.Prefix.Prefix != pfx("2001:db8:100:ab01::/64") || len(got.Retired) != 1 || got.Retired[0].Prefix != pfx("2001:db8:200:cd01::/64") {
		t.Errorf("prefix returned: %+v", got)
	}
}

func TestSubnet64(t *testing.T) {
	for _, tc := range []struct {
		d    string
		sla  int
		want string
	}{
		{"2001:db8:1::/48", 0, "2001:db8:1::/64"},
		{"2001:db8:1::/48", 0xbeef, "2001:db8:1:beef::/64"},
		{"2001:db8:1:ab00::/56", 0xff, "2001:db8:1:abff::/64"},
		{"2001:db8:1:ab10::/60", 3, "2001:db8:1:ab13::/64"},
		{"2001:db8:1:ab13::/64", 0, "2001:db8:1:ab13::/64"},
		{"2001:db8:1:ab13::/64", 1, "error"},
		{"2001:db8:1:ab00::/56", 256, "error"},
	} {
		got, err := config.Subnet64(pfx(tc.d), tc.sla)
		if s := fmt.Sprint(got); (err != nil) != (tc.want == "error") || (err == nil && s != tc.want) {
			t.Errorf("config.Subnet64(%s, %d) = %v, %v; want %s", tc.d, tc.sla, got, err, tc.want)
		}
	}
}

func TestResolveTunnels(t *testing.T) {
	cfg := parse(t, `
wan: {interface: w0, token: "::feed"}
tunnels:
  - {name: dslite, remote: gw.transix.jp, local: auto, routes: [0.0.0.0/0]}
  - {name: site, remote: "2001:db8:b::1", local: auto, routes: [10.20.0.0/16]}
`)
	p := NewPlan(Inputs{Config: cfg}, t0)
	out, pending := resolveLearned(cfg, p, nil)
	if len(out.Tunnels) != 0 || len(pending) != 2 || !strings.Contains(pending[0], "tunnels[0].local: auto, and the WAN address is not known yet") {
		t.Errorf("without inputs: tunnels %v pending %q", out.Tunnels, pending)
	}
	p = NewPlan(Inputs{Config: cfg, Learned: Learned{RA: &learned.RA{Prefixes: []learned.Prefix{slaac("2001:db8:5:6::/64", time.Hour, time.Hour)}}}}, t0)
	out, pending = resolveLearned(cfg, p, nil)
	if len(out.Tunnels) != 1 || out.Tunnels[0].Name != "site" || out.Tunnels[0].Local != addr("2001:db8:5:6::feed") || out.Tunnels[0].LocalAuto ||
		len(pending) != 1 || !strings.Contains(pending[0], "tunnels[0].remote: gw.transix.jp has not resolved") {
		t.Errorf("with a WAN prefix: tunnels %+v pending %q", out.Tunnels, pending)
	}
	remotes := map[string]learned.Remote{"gw.transix.jp": {Name: "gw.transix.jp", Addrs: []netip.Addr{addr("2404:8e00::feed:140")}}}
	out, pending = resolveLearned(cfg, p, remotes)
	if len(out.Tunnels) != 2 || out.Tunnels[0].Remote != addr("2404:8e00::feed:140") || out.Tunnels[0].RemoteName != "" || len(pending) != 0 {
		t.Errorf("resolved: tunnels %+v pending %q", out.Tunnels, pending)
	}
	if !cfg.Tunnels[0].LocalAuto || cfg.Tunnels[0].RemoteName == "" {
		t.Error("the config in force was modified")
	}
}

// Two routers refreshing their prefixes in turn, or a new lease next to
// the old one, must not move the WAN address or the LANs at every message.
func TestPlanChoicesAreStable(t *testing.T) {
	cfg := parse(t, ipoe)
	for i, later := range []string{"2001:db8:aaaa:1::/64", "2001:db8:aaaa:2::/64"} {
		ra := &learned.RA{Interface: "w0"}
		for _, p := range []string{"2001:db8:aaaa:1::/64", "2001:db8:aaaa:2::/64"} {
			life := time.Hour
			if p == later {
				life = 2 * time.Hour // the one refreshed last
			}
			ra.Prefixes = append(ra.Prefixes, slaac(p, life, life))
		}
		for _, r := range []string{"fe80::2", "fe80::1"} {
			until := t0.Add(time.Hour)
			if strings.HasSuffix(later, "1::/64") == (r == "fe80::1") {
				until = until.Add(time.Hour)
			}
			ra.Routers = append(ra.Routers, learned.Router{Addr: addr(r), Until: until})
		}
		p := NewPlan(Inputs{Config: cfg, Learned: Learned{RA: ra}}, t0)
		if p.WANAddr.Prefix != pfx("2001:db8:aaaa:1::feed/64") || p.Gateway != addr("fe80::1") {
			t.Errorf("round %d: WAN %s via %s, want the first prefix and the lowest router every time", i, p.WANAddr.Prefix, p.Gateway)
		}
	}
	// A graceful PD renumbering: the old lease deprecated, the new one
	// preferred: the LANs take the new one at once.
	pd := delegated("2001:db8:100:ab00::/56", time.Hour, 0)
	pd.Prefixes = append(pd.Prefixes, learned.Prefix{Prefix: pfx("2001:db8:200:cd00::/56"), Valid: t0.Add(2 * time.Hour), Preferred: t0.Add(time.Hour)})
	if got := NewPlan(Inputs{Config: cfg, Learned: Learned{PD: pd}}, t0).LANs[0].Prefix.Prefix; got != pfx("2001:db8:200:cd01::/64") {
		t.Errorf("LAN prefix %s, want the preferred lease's", got)
	}
	// Both preferred: the first lease stays.
	pd.Prefixes[0].Preferred = t0.Add(time.Hour)
	if got := NewPlan(Inputs{Config: cfg, Learned: Learned{PD: pd}}, t0).LANs[0].Prefix.Prefix; got != pfx("2001:db8:100:ab01::/64") {
		t.Errorf("LAN prefix %s, want the first lease kept", got)
	}
}

// What was learned on another WAN interface, or a PD the config no longer
// asks for, does not count.
func TestPlanIgnoresOtherInputs(t *testing.T) {
	ra := &learned.RA{Interface: "old0", Prefixes: []learned.Prefix{slaac("2001:db8:5:6::/64", time.Hour, time.Hour)},
		Routers: []learned.Router{{Addr: addr("fe80::1"), Until: t0.Add(time.Hour)}}}
	pd := delegated("2001:db8:100:ab00::/56", time.Hour, time.Hour)
	p := NewPlan(Inputs{Config: parse(t, ipoe), Learned: Learned{RA: ra}}, t0)
	if p.WANAddr.IsValid() || p.Gateway.IsValid() {
		t.Errorf("an RA heard on old0 drives wan w0: %+v", p)
	}
	noPD := parse(t, "wan: {interface: w0, token: '::feed'}\nlan: [{interface: l1, sla-id: 1}]")
	if p := NewPlan(Inputs{Config: noPD, Learned: Learned{PD: pd}}, t0); len(p.Delegated) != 0 || p.LANs[0].Prefix.Prefix.IsValid() {
		t.Errorf("a binding of a config with dhcpv6-pd still used: %+v", p)
	}
}
