package control

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/loader"
)

// fakeTunnels is the loader's tunnel maps and the tunnel netdevs.
type fakeTunnels struct {
	dp      map[string]loader.Tunnel // by name
	devs    map[string]int           // name -> ifindex
	routes  map[string][]netip.Prefix
	tc      map[string]string // tunnel -> wan
	nat     []NATRule
	rs      *Ruleset
	failDev string
	next    int
	srcs    []loader.SourceNet // the inner source filter
}

func newFakeTunnels() *fakeTunnels {
	return &fakeTunnels{dp: map[string]loader.Tunnel{}, devs: map[string]int{}, routes: map[string][]netip.Prefix{},
		tc: map[string]string{}, next: 100}
}

func (f *fakeTunnels) PutTunnel(t loader.Tunnel) error { f.dp[t.Name] = t; return nil }
func (f *fakeTunnels) DeleteTunnel(ifindex int) error {
	for n, t := range f.dp {
		if t.Ifindex == ifindex {
			delete(f.dp, n)
		}
	}
	return nil
}
func (f *fakeTunnels) Tunnels() ([]loader.Tunnel, error) {
	var out []loader.Tunnel
	for _, t := range f.dp {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
func (f *fakeTunnels) AttachTunnelTC(tun, wan string) error { f.tc[tun] = wan; return nil }
func (f *fakeTunnels) SetTunnelSourceFilter(nets []loader.SourceNet) error {
	f.srcs = nets
	return nil
}

func (f *fakeTunnels) Ensure(name string, mtu int, addr netip.Prefix, ipv6 bool) (TunnelDev, bool, error) {
	if name == f.failDev {
		return TunnelDev{}, false, errors.New("no ifb")
	}
	idx, ok := f.devs[name]
	if !ok {
		f.next++
		idx = f.next
		f.devs[name] = idx
	}
	return TunnelDev{Ifindex: idx, MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(idx)}}, !ok, nil
}
func (f *fakeTunnels) AddRoutes(name string, routes []netip.Prefix) error { return nil }
func (f *fakeTunnels) SetRoutes(name string, routes []netip.Prefix) error {
	f.routes[name] = routes
	return nil
}
func (f *fakeTunnels) Remove(name string) error {
	delete(f.devs, name)
	delete(f.routes, name)
	return nil
}
func (f *fakeTunnels) Apply(rs *Ruleset) (bool, error) {
	f.rs, f.nat = rs, nil
	if rs != nil {
		f.nat = rs.NAT
	}
	return true, nil
}

func (f *fakeTunnels) deps(dp *fakeDP, addrs *fakeAddrs) Deps {
	return Deps{DP: dp, Addrs: addrs, Tunnels: f, TunDevs: f, NAT: f}
}

const withTunnels = `
wan: {interface: w0}
lan: [{interface: l1, ipv4: 192.168.1.1/24}]
tunnels:
  - {name: fixed, remote: "2404:8e00::feed:140", local: "2001:db8:1::feed", ipv4-address: 203.0.113.7, nat44: true, routes: [0.0.0.0/0]}
  - {name: site, remote: "2001:db8:b::1", local: "2001:db8:1::feed", routes: [10.20.0.0/16], mtu: 1452, hop-limit: 32}
`

func TestApplyTunnels(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	ft := newFakeTunnels()
	steps, err := Apply(parse(t, withTunnels), ft.deps(dp, addrs))
	if err != nil {
		t.Fatal(err)
	}
	site := ft.dp["site"]
	if site.Remote != netip.MustParseAddr("2001:db8:b::1") || site.Local != netip.MustParseAddr("2001:db8:1::feed") ||
		site.MTU != 1452 || site.HopLimit != 32 || site.NAT44 || site.Ifindex != ft.devs["site"] {
		t.Errorf("site = %+v", site)
	}
	if f := ft.dp["fixed"]; !f.NAT44 || f.MTU != 1460 || f.HopLimit != 64 {
		t.Errorf("fixed = %+v", f)
	}
	if want := []NATRule{{Ifname: "fixed", Addr: netip.MustParseAddr("203.0.113.7")}}; !reflect.DeepEqual(ft.nat, want) {
		t.Errorf("nat rules %v, want %v", ft.nat, want)
	}
	if want := map[string]string{"fixed": "w0", "site": "w0"}; !reflect.DeepEqual(ft.tc, want) {
		t.Errorf("TC slow path attached %v, want %v", ft.tc, want)
	}
	if got := ft.routes["site"]; len(got) != 1 || got[0] != netip.MustParsePrefix("10.20.0.0/16") {
		t.Errorf("routes into site: %v", got)
	}
	t.Logf("steps: %+v", steps)

	// Applying a config without "site" removes it, and NAT44 goes with
	// the last nat44 tunnel.
	_, err = Apply(parse(t, `
wan: {interface: w0}
lan: [{interface: l1, ipv4: 192.168.1.1/24}]
tunnels:
  - {name: fixed, remote: "2404:8e00::feed:140", local: "2001:db8:1::feed", routes: [0.0.0.0/0]}
`), ft.deps(dp, addrs))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ft.dp["site"]; ok {
		t.Error("tunnel site still programmed")
	}
	if _, ok := ft.devs["site"]; ok {
		t.Error("netdev site still there")
	}
	if len(ft.nat) != 0 {
		t.Errorf("nat rules %v, want none", ft.nat)
	}
}

func TestApplyTunnelsNeedTheDaemon(t *testing.T) {
	for _, tc := range []struct{ tunnel, want string }{
		{`{name: t, remote: gw.example.net, local: "2001:db8:1::feed"}`, `tunnels[0].remote: "gw.example.net" is a DNS name`},
		{`{name: t, remote: "2001:db8:f::1", local: auto}`, "tunnels[0].local: auto follows the WAN prefix"},
	} {
		ft := newFakeTunnels()
		dp := &fakeDP{attached: map[string]loader.Role{}}
		_, err := Apply(parse(t, "wan: {interface: w0, token: '::feed'}\ntunnels: ["+tc.tunnel+"]\n"), ft.deps(dp, &fakeAddrs{have: map[string]bool{}}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
		if len(dp.log) != 0 || len(ft.devs) != 0 {
			t.Errorf("touched the system before refusing: %v %v", dp.log, ft.devs)
		}
	}
}

// A tunnel that cannot be set up rolls back what this apply created.
func TestApplyTunnelsRollBack(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	ft := newFakeTunnels()
	ft.failDev = "site"
	_, err := Apply(parse(t, withTunnels), ft.deps(dp, addrs))
	if err == nil || !strings.Contains(err.Error(), "tunnels[1]: no ifb") {
		t.Fatalf("error %v, want tunnels[1]: no ifb", err)
	}
	if len(ft.devs) != 0 || len(ft.dp) != 0 || len(dp.attached) != 0 || len(addrs.have) != 0 {
		t.Errorf("left behind: devs %v, tunnels %v, attached %v, addresses %v", ft.devs, ft.dp, dp.attached, addrs.have)
	}
}

func TestNATScript(t *testing.T) {
	rs := &Ruleset{NAT: []NATRule{{Ifname: "fixed", Addr: netip.MustParseAddr("203.0.113.7")}}}
	got := rs.script(nil)
	want := `table ip xdprouter
delete table ip xdprouter
table inet xdprouter
delete table inet xdprouter
table ip xdprouter {
	comment "` + rs.digest() + `"
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "fixed" snat to 203.0.113.7 comment "nat44 masquerade to 203.0.113.7"
	}
}
`
	if got != want {
		t.Errorf("nft script:\n%s\nwant:\n%s", got, want)
	}
	empty := "table ip xdprouter\ndelete table ip xdprouter\ntable inet xdprouter\ndelete table inet xdprouter\n"
	if got := (*Ruleset)(nil).script(nil); got != empty {
		t.Errorf("nil ruleset script: %q", got)
	}
	if got := (&Ruleset{}).script(nil); got != empty {
		t.Errorf("empty ruleset script: %q", got)
	}
}
