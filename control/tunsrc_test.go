package control

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/loader"
)

type fakeHostAddrs []HostAddr

func (f fakeHostAddrs) IPv4() ([]HostAddr, error) { return f, nil }

func srcNets(kind loader.SourceKind, ps ...string) []loader.SourceNet {
	var out []loader.SourceNet
	for _, p := range ps {
		out = append(out, loader.SourceNet{Prefix: netip.MustParsePrefix(p), Kind: kind})
	}
	return out
}

// TestApplyTunnelSourceFilter: apply gives the data plane the inner IPv4
// sources no tunnel may bring: the router's addresses (config and host,
// with the broadcast addresses of their subnets) and the LAN subnets
// (config and the addresses on LAN interfaces).
func TestApplyTunnelSourceFilter(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	ft := newFakeTunnels()
	deps := ft.deps(dp, addrs)
	deps.HostAddrs = fakeHostAddrs{
		{"lo", netip.MustParsePrefix("127.0.0.1/8")},
		{"l1", netip.MustParsePrefix("192.168.1.1/24")}, // the config's, once added
		{"l1", netip.MustParsePrefix("172.16.9.1/30")},  // a second subnet on the LAN port
		{"mgmt", netip.MustParsePrefix("10.99.0.5/16")},
		{"fixed", netip.MustParsePrefix("203.0.113.7/32")},
	}
	if _, err := Apply(parse(t, withTunnels), deps); err != nil {
		t.Fatal(err)
	}
	want := append(srcNets(loader.SourceLocal,
		"192.168.1.1/32", "192.168.1.255/32", "203.0.113.7/32",
		"172.16.9.1/32", "172.16.9.3/32", "10.99.0.5/32", "10.99.255.255/32"),
		srcNets(loader.SourceLAN, "192.168.1.0/24", "172.16.9.0/30")...)
	if !slices.Equal(ft.srcs, want) {
		t.Errorf("source filter\n got %v\nwant %v", ft.srcs, want)
	}
}

// TestTunnelSourceNetsCap: past the filter's size the LAN subnets and the
// config's addresses stay, the host's other addresses are left out and
// counted.
func TestTunnelSourceNetsCap(t *testing.T) {
	cfg := parse(t, withTunnels)
	var host []HostAddr
	for i := range loader.MaxSourceNets {
		host = append(host, HostAddr{"x", netip.MustParsePrefix(fmt.Sprintf("10.1.%d.1/32", i))})
	}
	nets, skipped := tunnelSourceNets(cfg, host)
	if len(nets) != loader.MaxSourceNets {
		t.Fatalf("%d entries, want %d", len(nets), loader.MaxSourceNets)
	}
	// 3 of the config and 32 of the host, in 31 places (one is the LAN).
	if want := 4; skipped != want {
		t.Errorf("skipped %d, want %d", skipped, want)
	}
	for _, p := range []string{"192.168.1.0/24", "192.168.1.1/32", "192.168.1.255/32", "203.0.113.7/32"} {
		if !slices.ContainsFunc(nets, func(n loader.SourceNet) bool { return n.Prefix == netip.MustParsePrefix(p) }) {
			t.Errorf("%s left out: %v", p, nets)
		}
	}
}

// TestTunnelSourceNets6: with a 6in4 tunnel, its link address and the
// LAN prefixes (here the ones carved from its own routed prefixes) are
// refused as inner sources; without one, there is no IPv6 list.
func TestTunnelSourceNets6(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader(`
wan: {interface: wan0}
lan: [{interface: lan0, sla-id: 1}]
tunnels:
  - {name: he, mode: 6in4, remote: 198.51.100.1, local: 203.0.113.2, address: "2001:db8:470:a::2/64",
     gateway: "2001:db8:470:a::1", prefixes: ["2001:db8:471::/48"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := tunnelSourceNets6(cfg)
	want := []loader.SourceNet{
		{Prefix: netip.MustParsePrefix("2001:db8:470:a::2/128"), Kind: loader.SourceLocal},
		{Prefix: netip.MustParsePrefix("2001:db8:471:1::/64"), Kind: loader.SourceLAN},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if n := tunnelSourceNets6(&config.Config{}); n != nil {
		t.Errorf("without 6in4: %v", n)
	}
}
