package control

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/loader"
)

// Issue 13 item 10: a static NPT outside prefix that holds the router's own
// WAN address. Its translation would send pings for the router to an
// inside host; the address is excluded instead, as with `outside: auto`.

const staticOutsideConfig = `
wan: {interface: w0, token: '::feed'}
lan: [{interface: l1}]
npt: [{interface: w0, inside: 'fd00:1::/64', outside: '2001:db8:1:2::/64', mode: preserve-host}]
ndp-proxy: [{interface: w0, prefixes: [auto]}]
`

// The daemon: the WAN address comes from SLAAC (RA + token) after the
// config was read, so each pass checks it against the static prefix.
func TestApplyInputsStaticOutsideExcludesWANAddr(t *testing.T) {
	cfg := parse(t, staticOutsideConfig)
	tr := &fakeNPT{}
	deps := Deps{DP: &fakeDP{attached: map[string]loader.Role{}}, Addrs: &fakeAddrs{have: map[string]bool{}}, NPT: tr}
	for _, c := range []struct {
		when, wan, exclude string
	}{
		{"no RA yet", "", ""},
		{"WAN address in the outside prefix", "2001:db8:1:2::/64", "2001:db8:1:2::feed"},
		{"renumbered out of it", "2001:db8:9:9::/64", ""},
		{"back in it", "2001:db8:1:2::/64", "2001:db8:1:2::feed"},
	} {
		in := Inputs{Config: cfg}
		if c.wan != "" {
			in.Learned.RA = raWith(c.wan)
		}
		if _, err := applyNow(in, deps); err != nil {
			t.Fatalf("%s: %v", c.when, err)
		}
		var want netip.Addr
		if c.exclude != "" {
			want = netip.MustParseAddr(c.exclude)
		}
		if len(tr.rules) != 1 || tr.rules[0].Exclude != want {
			t.Errorf("%s: rules %+v, want exclude %v", c.when, tr.rules, want)
		}
	}
	if cfg.NPT[0].Exclude.IsValid() {
		t.Error("the config in force was modified")
	}
}

type fakeOwn map[string][]netip.Addr

func (f fakeOwn) Global(ifname string) ([]netip.Addr, error) { return f[ifname], nil }

// `apply`: the WAN's addresses are what the kernel has. One in the outside
// prefix is excluded; two cannot be, and the config is refused naming the
// field, before anything is touched.
func TestApplyStaticOutsideOwnAddress(t *testing.T) {
	cfg := parse(t, staticOutsideConfig)
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	for _, c := range []struct {
		name    string
		own     []netip.Addr
		exclude netip.Addr
		err     string
	}{
		{"no address", nil, netip.Addr{}, ""},
		{"address elsewhere", []netip.Addr{a("2001:db8:7::1")}, netip.Addr{}, ""},
		{"address in the outside prefix", []netip.Addr{a("2001:db8:7::1"), a("2001:db8:1:2::feed")}, a("2001:db8:1:2::feed"), ""},
		{"two in the outside prefix", []netip.Addr{a("2001:db8:1:2::feed"), a("2001:db8:1:2::1")}, netip.Addr{},
			"npt[0].outside: 2001:db8:1:2::/64 holds 2 of the router's own addresses on w0 (2001:db8:1:2::feed, 2001:db8:1:2::1)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dp := &fakeDP{attached: map[string]loader.Role{}}
			tr := &fakeNPT{}
			_, err := Apply(cfg, Deps{DP: dp, Addrs: &fakeAddrs{have: map[string]bool{}}, NPT: tr, Own: fakeOwn{"w0": c.own}})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				if len(dp.attached) != 0 || len(tr.rules) != 0 {
					t.Errorf("refused, but attached %v, rules %v", dp.attached, tr.rules)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tr.rules) != 1 || tr.rules[0].Exclude != c.exclude {
				t.Errorf("rules %+v, want exclude %v", tr.rules, c.exclude)
			}
		})
	}
}

// The WAN routers' global addresses learned from RAs (R flag) go with the
// proxied prefixes that hold them, on the WAN only.
func TestApplyInputsWANRouterAddrsForeign(t *testing.T) {
	cfg := parse(t, strings.Replace(staticOutsideConfig, "ndp-proxy: [", "ndp-proxy: [{interface: l1, prefixes: ['2001:db8:1:2::/64']}, ", 1))
	tr := &fakeNPT{}
	deps := Deps{DP: &fakeDP{attached: map[string]loader.Role{}}, Addrs: &fakeAddrs{have: map[string]bool{}}, NPT: tr}
	ra := raWith("2001:db8:1:2::/64")
	ra.RouterAddrs = []learned.RouterAddr{
		{Addr: netip.MustParseAddr("2001:db8:1:2::1"), Until: time.Now().Add(time.Hour)},
		{Addr: netip.MustParseAddr("2001:db8:5::1"), Until: time.Now().Add(time.Hour)},      // in no proxied prefix
		{Addr: netip.MustParseAddr("2001:db8:1:2::2"), Until: time.Now().Add(-time.Second)}, // expired
	}
	if _, err := applyNow(Inputs{Config: cfg, Learned: Learned{RA: ra}}, deps); err != nil {
		t.Fatal(err)
	}
	if len(tr.proxy) != 2 {
		t.Fatalf("proxy %+v", tr.proxy)
	}
	for _, e := range tr.proxy {
		want := []netip.Addr{netip.MustParseAddr("2001:db8:1:2::1")}
		if e.Interface != "w0" {
			want = nil
		}
		if !slices.Equal(e.Foreign, want) {
			t.Errorf("%s %s: foreign %v, want %v", e.Interface, e.Prefix, e.Foreign, want)
		}
	}
}
