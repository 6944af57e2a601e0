package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The HE.net tunnel broker's details, as its tunnel page lists them
// (documentation addresses): Server IPv4 198.51.100.1, Client IPv4
// 203.0.113.2, Server IPv6 2001:db8:470:a::1/64, Client IPv6
// 2001:db8:470:a::2/64, Routed /64 2001:db8:470:b::/64, Routed /48
// 2001:db8:471::/48.
const heTunnel = `
tunnels:
  - name: he
    mode: 6in4
    remote: 198.51.100.1
    local: 203.0.113.2
    address: 2001:db8:470:a::2/64
    gateway: 2001:db8:470:a::1
    prefixes: [2001:db8:470:b::/64, 2001:db8:471::/48]
`

func TestParse6in4(t *testing.T) {
	c, err := Parse(strings.NewReader(`
wan: {interface: wan0}
lan: [{interface: lan0, sla-id: 0}, {interface: lan1, sla-id: 1}]
` + heTunnel + `    ttl: 200
    mtu: 1472
    routes: ["::/0"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tunnels) != 1 || len(c.VXLAN) != 0 {
		t.Fatalf("tunnels %d, vxlan %d", len(c.Tunnels), len(c.VXLAN))
	}
	he := c.Tunnels[0]
	if he.Mode != "6in4" || he.Remote != netip.MustParseAddr("198.51.100.1") || he.Local != netip.MustParseAddr("203.0.113.2") ||
		he.MTU != 1472 || he.HopLimit != 200 || he.Address != netip.MustParsePrefix("2001:db8:470:a::2/64") ||
		he.Gateway != netip.MustParseAddr("2001:db8:470:a::1") || !slices.Equal(he.Routes, []netip.Prefix{netip.MustParsePrefix("::/0")}) {
		t.Errorf("he = %+v", he)
	}
	// Carved and steered like a vxlan tunnel's prefixes.
	want := []CarvedPrefix{
		{LAN: "lan0", Prefix: netip.MustParsePrefix("2001:db8:470:b::/64"), From: netip.MustParsePrefix("2001:db8:470:b::/64")},
		{LAN: "lan0", Prefix: netip.MustParsePrefix("2001:db8:471::/64"), From: netip.MustParsePrefix("2001:db8:471::/48")},
		{LAN: "lan1", Prefix: netip.MustParsePrefix("2001:db8:471:1::/64"), From: netip.MustParsePrefix("2001:db8:471::/48")},
	}
	if !slices.Equal(he.Carved, want) {
		t.Errorf("carved %v, want %v", he.Carved, want)
	}
	if he.Table == 0 || he.Priority == 0 {
		t.Errorf("no steering table/priority: %+v", he.Routed)
	}
	if rt := c.RoutedTunnels(); len(rt) != 1 || rt[0].Name != "he" || rt[0].Routed != &c.Tunnels[0].Routed {
		t.Errorf("RoutedTunnels() = %+v", rt)
	}
	d, err := Parse(strings.NewReader("wan: {interface: wan0}\nlan: [{interface: lan0}]\ntunnels: [{name: s, mode: 6in4, remote: 198.51.100.1, local: 203.0.113.2}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := d.Tunnels[0]; s.MTU != 1480 || s.HopLimit != 64 {
		t.Errorf("defaults: mtu %d ttl %d, want 1480 and 64", s.MTU, s.HopLimit)
	}
}

// Each bad 6in4 tunnel is rejected with an error naming the field.
func TestParse6in4Errors(t *testing.T) {
	base := "wan: {interface: wan0}\nlan: [{interface: lan0}]\n"
	one := func(fields string) string { return base + "tunnels:\n  - {" + fields + "}\n" }
	ok := "name: he, mode: 6in4, remote: 198.51.100.1, local: 203.0.113.2"
	for _, tc := range []struct{ name, yaml, want string }{
		{"no remote", one("name: he, mode: 6in4, local: 203.0.113.2"), "tunnels[0].remote: required (the tunnel broker's IPv4 address"},
		{"remote v6", one("name: he, mode: 6in4, remote: '2001:db8::1', local: 203.0.113.2"), "tunnels[0].remote: 2001:db8::1 is an IPv6 address; 6in4 endpoints are IPv4"},
		{"remote name", one("name: he, mode: 6in4, remote: tserv.example.net, local: 203.0.113.2"), "tunnels[0].remote: \"tserv.example.net\" is a DNS name"},
		{"no local", one("name: he, mode: 6in4, remote: 198.51.100.1"), "tunnels[0].local: required (this router's IPv4 address"},
		{"local multicast", one("name: he, mode: 6in4, remote: 198.51.100.1, local: 224.0.0.1"), "tunnels[0].local: 224.0.0.1 is not a unicast"},
		{"local is remote", one("name: he, mode: 6in4, remote: 198.51.100.1, local: 198.51.100.1"), "tunnels[0].local: 198.51.100.1 is also the remote"},
		{"mtu low", one(ok + ", mtu: 1279"), "tunnels[0].mtu: 1279 is out of range 1280-8980"},
		{"ttl", one(ok + ", ttl: 0"), "tunnels[0].ttl: 0 is out of range 1-255"},
		{"hop-limit", one(ok + ", hop-limit: 9"), "tunnels[0].hop-limit: not a setting of mode 6in4; the outer header is IPv4: ttl"},
		{"nat44", one(ok + ", nat44: true"), "tunnels[0].nat44: not a setting of mode 6in4"},
		{"vni", one(ok + ", vni: 1"), "tunnels[0].vni: not a setting of mode 6in4"},
		{"route v4", one(ok + ", routes: [10.0.0.0/8]"), "tunnels[0].routes[0]: \"10.0.0.0/8\" is not an IPv6 prefix"},
		{"address v4", one(ok + ", address: 10.0.0.2/24"), "tunnels[0].address: \"10.0.0.2/24\" is not an IPv6 address"},
		{"gateway off link", one(ok + ", address: '2001:db8:470:a::2/64', gateway: '2001:db8:470:c::1'"), "tunnels[0].gateway: 2001:db8:470:c::1 is not on the link net"},
		{"prefixes without gateway", one(ok + ", prefixes: ['2001:db8:470:b::/64']"), "tunnels[0].gateway: required with prefixes"},
		{"prefix overlaps link", one(ok + ", address: '2001:db8:470:a::2/64', gateway: '2001:db8:470:a::1', prefixes: ['2001:db8:470::/48']"), "tunnels[0].prefixes[0]: 2001:db8:470::/48 overlaps 2001:db8:470:a::/64"},
		{"ttl on ipip6", one("name: t0, remote: '2001:db8:f::1', local: '2001:db8:1::2', ttl: 9"), "tunnels[0].ttl: not a setting of mode ipip6"},
		{"same pair twice", base + "tunnels:\n  - {" + ok + "}\n  - {name: he2, mode: 6in4, remote: 198.51.100.1, local: 203.0.113.2}\n",
			"tunnels[1]: remote 198.51.100.1 and local 203.0.113.2 are already tunnels[0]'s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
