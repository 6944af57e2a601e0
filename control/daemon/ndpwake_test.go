package daemon

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/control/ndpwake"
)

func wakeInputs(t *testing.T, yaml string) (control.Inputs, control.Plan) {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	in := control.Inputs{Config: cfg, Generation: 1, Learned: control.Learned{RA: &learned.RA{Interface: "wan0",
		Prefixes: []learned.Prefix{{Prefix: netip.MustParsePrefix("2001:db8:aaaa::/64"), Autonomous: true, OnLink: true,
			Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour)}}}}}
	return in, control.NewPlan(in, now)
}

func TestWakeConfigSharedLAN64(t *testing.T) {
	cfg := `wan: {interface: wan0, token: "::feed"}
lan: [{interface: lan0}, {interface: lan1, sla-id: 1}]
ndp-proxy:
  - {interface: wan0, mode: lan-neighbor, prefixes: [auto]}
`
	in, p := wakeInputs(t, cfg)
	if !wantsNDPWake(in.Config) {
		t.Error("a lan-neighbor proxy with LANs wants the waker")
	}
	a := netip.MustParseAddr
	want := ndpwake.Config{
		Proxies: []ndpwake.Proxy{{Interface: "wan0", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:aaaa::/64")}}},
		LANs:    []string{"lan0", "lan1"},
		Own:     []netip.Addr{a("2001:db8:aaaa::feed"), a("2001:db8:aaaa::1")},
	}
	if got := wakeConfig(in, p); !reflect.DeepEqual(got, want) {
		t.Errorf("wakeConfig\n got %+v\nwant %+v", got, want)
	}
}

func TestWakeConfigNPT(t *testing.T) {
	cfg := `wan: {interface: wan0, token: "::feed"}
lan: [{interface: lan0}]
npt:
  - {interface: wan0, inside: "2001:db8:bbbb::/64", outside: auto}
ndp-proxy:
  - {interface: wan0, mode: lan-neighbor, prefixes: [auto]}
  - {interface: lan0, prefixes: ["2001:db8:cccc::/64"]}
`
	in, p := wakeInputs(t, cfg)
	got := wakeConfig(in, p)
	out := netip.MustParsePrefix("2001:db8:aaaa::/64")
	want := []ndpwake.Proxy{{Interface: "wan0", Prefixes: []netip.Prefix{out},
		NPT: []ndpwake.NPT{{Outside: out, Inside: netip.MustParsePrefix("2001:db8:bbbb::/64"), RFC6296: true}}}}
	if !reflect.DeepEqual(got.Proxies, want) {
		t.Errorf("proxies %+v, want %+v (the prefix-mode entry is not the waker's)", got.Proxies, want)
	}
	if len(got.Own) == 0 || got.Own[len(got.Own)-1] != netip.MustParseAddr("2001:db8:aaaa::feed") {
		t.Errorf("own %v: want the NPT exclusion (the WAN address) among them", got.Own)
	}
}

func TestNoWakerWithoutLANNeighbor(t *testing.T) {
	in, _ := wakeInputs(t, `wan: {interface: wan0}
lan: [{interface: lan0}]
ndp-proxy:
  - {interface: wan0, prefixes: ["2001:db8:cccc::/64"]}
`)
	if wantsNDPWake(in.Config) {
		t.Error("prefix mode answers for every target: nothing to wake")
	}
}
