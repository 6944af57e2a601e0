package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// seed001Client is the client of seed 001 (vxlan01, remote 10.1.1.1 over
// enp6s0f1, /80 link net, /64 and /48 routed to it) beside the FLET'S
// prefix, which DHCPv6-PD delegates.
const seed001Client = `
wan: {interface: enp6s0f1, token: "::feed", dhcpv6-pd: {prefix-length-hint: 56}}
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

func TestParseVXLANSeed001Client(t *testing.T) {
	c, err := Parse(strings.NewReader(seed001Client))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tunnels) != 0 || len(c.VXLAN) != 1 {
		t.Fatalf("tunnels %d, vxlan %d; want 0 and 1", len(c.Tunnels), len(c.VXLAN))
	}
	v := c.VXLAN[0]
	pfx := netip.MustParsePrefix
	if v.Name != "vxlan01" || v.Path != "tunnels[0]" || v.VNI != 1 || v.Port != 4789 || v.Remote != netip.MustParseAddr("10.1.1.1") ||
		v.Local.IsValid() || v.Underlay != "enp6s0f1" || v.MTU != 0 ||
		v.Address != pfx("2001:db8:ae00:0:1::2/80") || v.Gateway != netip.MustParseAddr("2001:db8:ae00:0:1::1") ||
		!slices.Equal(v.Prefixes, []netip.Prefix{pfx("2001:db8:ae00:1::/64"), pfx("2001:db8:ae01::/48")}) || len(v.Routes) != 0 {
		t.Errorf("vxlan01 = %+v", v)
	}
	// The /64 has room for sla-id 0 only; the /48 for both LANs.
	want := []CarvedPrefix{
		{LAN: "lan0", Prefix: pfx("2001:db8:ae00:1::/64"), From: pfx("2001:db8:ae00:1::/64")},
		{LAN: "lan0", Prefix: pfx("2001:db8:ae01::/64"), From: pfx("2001:db8:ae01::/48")},
		{LAN: "lan1", Prefix: pfx("2001:db8:ae01:1::/64"), From: pfx("2001:db8:ae01::/48")},
	}
	if !slices.Equal(v.Carved, want) {
		t.Errorf("carved %v, want %v", v.Carved, want)
	}
	if v.Table != DefaultSteeringTable || v.Priority != DefaultSteeringPriority+1 {
		t.Errorf("table %d priority %d, want %d %d", v.Table, v.Priority, DefaultSteeringTable, DefaultSteeringPriority+1)
	}
	if c.PolicyRouting != (PolicyRouting{DefaultSteeringTable, DefaultSteeringPriority}) {
		t.Errorf("policy-routing %+v", c.PolicyRouting)
	}
}

// The server's end of seed 001, written out as a tunnel (delegations make
// the same from a peer number): routes via the peer's link address, an
// explicit underlay and local, IPv6 underlay on a second tunnel, and the
// policy-routing bases moved; ipip6 tunnels still come out in Tunnels.
func TestParseVXLANServerAndOptions(t *testing.T) {
	c, err := Parse(strings.NewReader(`
wan: {interface: wan0}
policy-routing: {table: 3000, priority: 300}
tunnels:
  - {name: aftr, remote: '2001:db8:f::1', local: '2001:db8:1::feed', routes: [0.0.0.0/0]}
  - name: vxlan01
    mode: vxlan
    vni: 1
    port: 8472
    remote: 10.1.1.2
    local: 10.1.1.1
    underlay: enp1s0f0
    mtu: 1400
    address: 2001:db8:ae00:0:1::1/80
    gateway: 2001:db8:ae00:0:1::2
    routes: [2001:db8:ae00:1::/64, 2001:db8:ae01::/48]
  - {name: v6under, mode: vxlan, vni: 2, remote: '2001:db8:f::9', address: '2001:db8:ae00:0:2::1/80'}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tunnels) != 1 || c.Tunnels[0].Name != "aftr" || len(c.VXLAN) != 2 {
		t.Fatalf("tunnels %+v vxlan %+v", c.Tunnels, c.VXLAN)
	}
	v, w := c.VXLAN[0], c.VXLAN[1]
	if v.Port != 8472 || v.Local != netip.MustParseAddr("10.1.1.1") || v.Underlay != "enp1s0f0" || v.MTU != 1400 ||
		len(v.Routes) != 2 || v.Table != 0 || v.Priority != 0 || v.Path != "tunnels[1]" {
		t.Errorf("vxlan01 = %+v", v)
	}
	if w.Remote != netip.MustParseAddr("2001:db8:f::9") || w.Underlay != "wan0" || w.Gateway.IsValid() {
		t.Errorf("v6under = %+v", w)
	}
	if c.PolicyRouting != (PolicyRouting{3000, 300}) {
		t.Errorf("policy-routing %+v", c.PolicyRouting)
	}
}

// Each bad vxlan tunnel is refused with an error naming the field.
func TestParseVXLANErrors(t *testing.T) {
	base := "wan: {interface: wan0}\nlan: [{interface: lan0}]\n"
	ok := "name: vx0, mode: vxlan, vni: 1, remote: 10.1.1.1"
	one := func(fields string) string { return base + "tunnels:\n  - {" + fields + "}\n" }
	steer := ok + ", address: '2001:db8:ae00:0:1::2/80', gateway: '2001:db8:ae00:0:1::1'"
	for _, tc := range []struct{ name, yaml, want string }{
		{"ttl", one(ok + ", ttl: 9"), "tunnels[0].ttl: not a setting of mode vxlan"},
		{"unknown mode", one("name: t, mode: gre, remote: 192.0.2.1"), "tunnels[0].mode: \"gre\" is not supported"},
		{"no vni", one("name: vx0, mode: vxlan, remote: 10.1.1.1"), "tunnels[0].vni: required for mode vxlan"},
		{"vni too big", one("name: vx0, mode: vxlan, vni: 16777216, remote: 10.1.1.1"), "tunnels[0].vni: 16777216 is out of range 0-16777215"},
		{"port 0", one(ok + ", port: 0"), "tunnels[0].port: 0 is out of range 1-65535"},
		{"no remote", one("name: vx0, mode: vxlan, vni: 1"), "tunnels[0].remote: required"},
		{"remote dns", one("name: vx0, mode: vxlan, vni: 1, remote: vpn.example.net"), "tunnels[0].remote: \"vpn.example.net\" is a DNS name"},
		{"remote multicast", one("name: vx0, mode: vxlan, vni: 1, remote: 239.1.1.1"), "tunnels[0].remote: 239.1.1.1 is not a unicast address"},
		{"remote junk", one("name: vx0, mode: vxlan, vni: 1, remote: 'x y'"), "tunnels[0].remote: \"x y\" is not an IPv4 or IPv6 address"},
		{"local family", one(ok + ", local: '2001:db8::1'"), "tunnels[0].local: 2001:db8::1 and remote 10.1.1.1 are of different families"},
		{"local is remote", one(ok + ", local: 10.1.1.1"), "tunnels[0].local: 10.1.1.1 is also the remote"},
		{"no underlay without wan", "lan: [{interface: lan0}]\ntunnels: [{" + ok + "}]", "tunnels[0].underlay: required without wan"},
		{"mtu low", one(ok + ", mtu: 1279"), "tunnels[0].mtu: 1279 is out of range 1280-8960"},
		{"ipip6 field", one(ok + ", nat44: true"), "tunnels[0].nat44: not a setting of mode vxlan"},
		{"vxlan field on ipip6", one("name: t0, remote: '2001:db8:f::1', local: '2001:db8:1::feed', vni: 3"), "tunnels[0].vni: not a setting of mode ipip6"},
		{"address no length", one(ok + ", address: '2001:db8:ae00:0:1::2'"), "tunnels[0].address: \"2001:db8:ae00:0:1::2\" is not an IPv6 address with prefix length"},
		{"address is the net", one(ok + ", address: '2001:db8:ae00:0:1::/80'"), "tunnels[0].address: 2001:db8:ae00:0:1:: is the link net's own address"},
		{"address too short", one(ok + ", address: '2001:db8:ae00::2/48'"), "tunnels[0].address: /48 is out of range /64-/127"},
		{"gateway off net", one(ok + ", address: '2001:db8:ae00:0:1::2/80', gateway: '2001:db8:ae00:0:2::1'"), "tunnels[0].gateway: 2001:db8:ae00:0:2::1 is not on the link net 2001:db8:ae00:0:1::/80"},
		{"gateway is us", one(ok + ", address: '2001:db8:ae00:0:1::2/80', gateway: '2001:db8:ae00:0:1::2'"), "tunnels[0].gateway: 2001:db8:ae00:0:1::2 is this router's own address"},
		{"prefixes without gateway", one(ok + ", prefixes: ['2001:db8:ae01::/48']"), "tunnels[0].gateway: required with prefixes"},
		{"routes without gateway", one(ok + ", routes: ['2001:db8:ae01::/48']"), "tunnels[0].gateway: required with routes"},
		{"route ipv4", one(steer + ", routes: [10.0.0.0/8]"), "tunnels[0].routes[0]: \"10.0.0.0/8\" is not an IPv6 prefix"},
		{"prefix host bits", one(steer + ", prefixes: ['2001:db8:ae01::1/48']"), "tunnels[0].prefixes[0]: 2001:db8:ae01::1/48 has host bits set; did you mean 2001:db8:ae01::/48?"},
		{"prefix longer than 64", one(steer + ", prefixes: ['2001:db8:ae01::/80']"), "tunnels[0].prefixes[0]: /80 is longer than /64"},
		{"prefix link-local", one(steer + ", prefixes: ['fe80::/64']"), "tunnels[0].prefixes[0]: fe80::/64 is not a global unicast prefix"},
		{"prefix overlaps prefix", one(steer + ", prefixes: ['2001:db8:ae01::/48', '2001:db8:ae01:5::/64']"), "tunnels[0].prefixes[1]: 2001:db8:ae01:5::/64 overlaps 2001:db8:ae01::/48 (tunnels[0].prefixes[0])"},
		{"prefix overlaps link net", one(steer + ", prefixes: ['2001:db8:ae00::/48']"), "tunnels[0].prefixes[0]: 2001:db8:ae00::/48 overlaps 2001:db8:ae00:0:1::/80 (tunnels[0].address)"},
		{"prefix fits no lan", "wan: {interface: wan0}\nlan: [{interface: lan0, sla-id: 1}]\ntunnels: [{" + steer + ", prefixes: ['2001:db8:ae00:1::/64']}]",
			"tunnels[0].prefixes[0]: 2001:db8:ae00:1::/64 holds sla-ids 0-0 and no lan[].sla-id is among them"},
		{"prefix and no lan", "wan: {interface: wan0}\ntunnels: [{" + steer + ", prefixes: ['2001:db8:ae01::/48']}]", "tunnels[0].prefixes[0]: 2001:db8:ae01::/48 is carved into LAN /64s, and there is no lan"},
		{"same vni twice", base + "tunnels:\n  - {" + ok + "}\n  - {name: vx1, mode: vxlan, vni: 1, remote: 10.1.1.2}\n",
			"tunnels[1].vni: 1 on port 4789 is already tunnels[0]'s"},
		{"prefix in two tunnels", base + "tunnels:\n  - {" + steer + ", prefixes: ['2001:db8:ae01::/48']}\n" +
			"  - {name: vx1, mode: vxlan, vni: 2, remote: 10.1.1.2, address: '2001:db8:ae00:0:2::2/80', gateway: '2001:db8:ae00:0:2::1', prefixes: ['2001:db8:ae01:8000::/49']}\n",
			"tunnels[1].prefixes[0]: 2001:db8:ae01:8000::/49 overlaps 2001:db8:ae01::/48 (tunnels[0].prefixes[0])"},
		{"name twice across modes", base + "tunnels:\n  - {name: vx0, remote: '2001:db8:f::1', local: '2001:db8:1::feed'}\n  - {" + ok + "}\n",
			"tunnels[1].name: \"vx0\" is already used by tunnels[0].name"},
		{"name is an interface", one("name: lan0, mode: vxlan, vni: 1, remote: 10.1.1.1"), "tunnels[0].name: \"lan0\" is already an interface of wan/lan"},
		{"unknown key", one(ok + ", vnid: 3"), "tunnels[0].vnid: unknown key"},
		{"policy-routing table", base + "policy-routing: {table: 200}", "policy-routing.table: 200-263 would include the kernel's tables 253-255"},
		{"policy-routing priority", base + "policy-routing: {priority: 32760}", "policy-routing.priority: 32760 is out of range 1-32701"},
		{"policy-routing unknown key", base + "policy-routing: {tables: 5}", "policy-routing.tables: unknown key"},
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
