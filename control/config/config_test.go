package config

import (
	"net/netip"
	"strings"
	"testing"
)

const example = `
wan:
  interface: enp1s0
  token: "::feed"
  dhcpv6-pd: { prefix-length-hint: 56 }
lan:
  - interface: enp2s0
    sla-id: 1
    ipv4: 192.168.1.1/24
`

func TestParseExample(t *testing.T) {
	c, err := Parse(strings.NewReader(example))
	if err != nil {
		t.Fatal(err)
	}
	if c.WAN.Interface != "enp1s0" || c.WAN.Token != netip.MustParseAddr("::feed") ||
		c.WAN.DHCPv6PD == nil || c.WAN.DHCPv6PD.PrefixLengthHint != 56 || c.WAN.XDPMode != "auto" {
		t.Errorf("wan = %+v", c.WAN)
	}
	if len(c.LAN) != 1 || c.LAN[0].SLAID != 1 || c.LAN[0].IPv4 != netip.MustParsePrefix("192.168.1.1/24") ||
		c.LAN[0].Token != netip.MustParseAddr("::1") {
		t.Errorf("lan = %+v", c.LAN)
	}
	if got := c.Interfaces(); strings.Join(got, ",") != "enp1s0,enp2s0" {
		t.Errorf("Interfaces() = %v", got)
	}
}

// Each bad config must be rejected with an error that names the field.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"empty", "", "empty configuration"},
		{"not yaml", "wan: [", "not valid YAML"},
		{"unknown top key", "wan: {interface: e0}\nlans: []", "lans: unknown key"},
		{"unknown nested key", "lan:\n  - interface: e1\n    sla_id: 1", "lan[0].sla_id: unknown key (line 3"},
		{"duplicate key", "wan: {interface: e0, interface: e1}", "wan.interface: key given twice"},
		{"missing interface", "wan: {token: '::1'}", "wan.interface: required"},
		{"long ifname", "wan: {interface: abcdefghijklmnopq}", "wan.interface: \"abcdefghijklmnopq\" is longer than 15"},
		{"token not v6", "wan: {interface: e0, token: 10.0.0.1}", "wan.token: \"10.0.0.1\" is not an IPv6 interface identifier"},
		{"token prefix bits", "wan: {interface: e0, token: '2001:db8::1'}", "wan.token: 2001:db8::1 sets bits in the upper 64"},
		{"pd hint", "wan: {interface: e0, dhcpv6-pd: {prefix-length-hint: 65}}", "wan.dhcpv6-pd.prefix-length-hint: 65 is out of range"},
		{"xdp mode", "wan: {interface: e0, xdp-mode: fast}", "wan.xdp-mode: \"fast\" is not one of"},
		{"lan token prefix bits", "lan: [{interface: e1, token: '2001:db8::1'}]", "lan[0].token: 2001:db8::1 sets bits in the upper 64"},
		{"lan token zero", "lan: [{interface: e1, token: '::'}]", "lan[0].token: \"::\" is no interface identifier"},
		{"sla range", "lan: [{interface: e1, sla-id: 70000}]", "lan[0].sla-id: 70000 is out of range"},
		{"sla twice", "lan: [{interface: e1, sla-id: 1}, {interface: e2, sla-id: 1}]", "lan[1].sla-id: 1 is already used by lan[0].sla-id"},
		{"iface twice", "wan: {interface: e0}\nlan: [{interface: e0}]", "lan[0].interface: \"e0\" is already used by wan.interface"},
		{"ipv4 bad", "lan: [{interface: e1, ipv4: 192.168.1.1}]", "lan[0].ipv4: \"192.168.1.1\" is not an IPv4 address with prefix length"},
		{"ipv4 network", "lan: [{interface: e1, ipv4: 192.168.1.0/24}]", "lan[0].ipv4: 192.168.1.0/24 is a network address"},
		{"wrong type", "lan: [{interface: e1, sla-id: one}]", "wrong value type"},
		{"no interfaces", "lan: []", "no interfaces"},
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

// The example shipped for users must stay valid.
func TestShippedExample(t *testing.T) {
	c, err := Load("../../contrib/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Interfaces()) != 2 {
		t.Errorf("interfaces %v", c.Interfaces())
	}
}
