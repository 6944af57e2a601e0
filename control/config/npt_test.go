package config

import (
	"net/netip"
	"strings"
	"testing"
)

const seed000 = `
wan: {interface: eth0}
lan: [{interface: eth1}]
npt:
  - interface: eth0
    inside: bbbb::/64
    outside: aaaa::/64
    mode: preserve-host
  - interface: eth0
    inside: fd00:1::/48
    outside: auto
ndp-proxy:
  - interface: eth0
    prefixes: [auto, 2001:db8:99::/64]
    mode: lan-neighbor
`

func TestParseNPT(t *testing.T) {
	c, err := Parse(strings.NewReader(seed000))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.NPT) != 2 {
		t.Fatalf("npt = %+v", c.NPT)
	}
	if n := c.NPT[0]; n.Interface != "eth0" || n.Inside != netip.MustParsePrefix("bbbb::/64") ||
		n.Outside != netip.MustParsePrefix("aaaa::/64") || n.OutsideAuto || n.Mode != "preserve-host" {
		t.Errorf("npt[0] = %+v", n)
	}
	if n := c.NPT[1]; !n.OutsideAuto || n.Outside.IsValid() || n.Mode != "rfc6296" {
		t.Errorf("npt[1] = %+v (want outside auto, mode rfc6296 by default)", n)
	}
	if len(c.NDPProxy) != 1 || !c.NDPProxy[0].Auto || c.NDPProxy[0].Mode != "lan-neighbor" ||
		len(c.NDPProxy[0].Prefixes) != 1 || c.NDPProxy[0].Prefixes[0] != netip.MustParsePrefix("2001:db8:99::/64") {
		t.Errorf("ndp-proxy = %+v", c.NDPProxy)
	}
}

// Each bad npt / ndp-proxy section is rejected with the field path.
func TestParseNPTErrors(t *testing.T) {
	const head = "wan: {interface: w0}\nlan: [{interface: l0}]\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"not wan", "npt: [{interface: l0, inside: 'fd00::/64', outside: '2001:db8::/64'}]", `npt[0].interface: "l0" is neither the wan interface nor a vxlan or 6in4 tunnel`},
		{"inside missing", "npt: [{interface: w0, outside: '2001:db8::/64'}]", "npt[0].inside: required"},
		{"outside missing", "npt: [{interface: w0, inside: 'fd00::/64'}]", "npt[0].outside: required"},
		{"inside v4", "npt: [{interface: w0, inside: 10.0.0.0/8, outside: '2001:db8::/64'}]", `npt[0].inside: "10.0.0.0/8" is not an IPv6 prefix`},
		{"host bits", "npt: [{interface: w0, inside: 'fd00::1/64', outside: '2001:db8::/64'}]", "npt[0].inside: fd00::1/64 has bits set after /64; the prefix is fd00::/64"},
		{"too long", "npt: [{interface: w0, inside: 'fd00::/80', outside: '2001:db8::/80'}]", "npt[0].inside: /80 is out of range /1-/64"},
		{"lengths", "npt: [{interface: w0, inside: 'fd00::/56', outside: '2001:db8::/64'}]", "npt[0].outside: 2001:db8::/64 is a /64 but inside fd00::/56 is a /56"},
		{"same", "npt: [{interface: w0, inside: 'fd00::/64', outside: 'fd00::/64'}]", "npt[0].outside: fd00::/64 overlaps inside"},
		{"mode", "npt: [{interface: w0, inside: 'fd00::/64', outside: '2001:db8::/64', mode: nat66}]", `npt[0].mode: "nat66" is not one of rfc6296, preserve-host`},
		{"unknown key", "npt: [{interface: w0, insde: 'fd00::/64'}]", "npt[0].insde: unknown key"},
		{"inside overlap", "npt: [{interface: w0, inside: 'fd00::/48', outside: '2001:db8::/48'}, {interface: w0, inside: 'fd00:0:0:1::/64', outside: '2001:db8:1::/64'}]", "npt[1].inside: fd00:0:0:1::/64 overlaps npt[0].inside"},
		{"outside overlap", "npt: [{interface: w0, inside: 'fd00::/64', outside: '2001:db8::/64'}, {interface: w0, inside: 'fd01::/64', outside: '2001:db8::/64'}]", "npt[1].outside: 2001:db8::/64 overlaps npt[0].outside"},
		{"proxy iface", "ndp-proxy: [{interface: x9, prefixes: ['2001:db8::/64']}]", `ndp-proxy[0].interface: "x9" is neither the wan nor a lan interface`},
		{"proxy no prefixes", "ndp-proxy: [{interface: w0}]", "ndp-proxy[0].prefixes: required"},
		{"proxy auto without npt", "ndp-proxy: [{interface: w0, prefixes: [auto]}]", "ndp-proxy[0].prefixes[0]: auto means the outside prefixes of the npt entries on w0, and there is none"},
		{"proxy bad prefix", "ndp-proxy: [{interface: w0, prefixes: [everything]}]", `ndp-proxy[0].prefixes[0]: "everything" is neither auto nor an IPv6 prefix`},
		{"proxy host bits", "ndp-proxy: [{interface: w0, prefixes: ['2001:db8::5/64']}]", "ndp-proxy[0].prefixes[0]: 2001:db8::5/64 has bits set"},
		{"proxy mode", "ndp-proxy: [{interface: w0, prefixes: ['2001:db8::/64'], mode: all}]", `ndp-proxy[0].mode: "all" is not one of prefix, lan-neighbor`},
		{"proxy twice", "ndp-proxy: [{interface: w0, prefixes: ['2001:db8::/64']}, {interface: w0, prefixes: ['2001:db8:1::/64']}]", "ndp-proxy[1].interface: \"w0\" already has ndp-proxy[0]"},
		// Seed 000: the proxy set to the inside prefix.
		{"seed 000", "npt: [{interface: w0, inside: 'bbbb::/64', outside: 'aaaa::/64'}]\nndp-proxy: [{interface: w0, prefixes: ['bbbb::/64']}]",
			"ndp-proxy[0].prefixes[0]: bbbb::/64 overlaps npt[0].inside bbbb::/64, the prefix before translation; upstream only ever solicits outside addresses (npt[0].outside aaaa::/64): write `auto` instead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(head + tc.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// nptTunnels is seed 001's client with a ULA LAN behind NPT on both
// upstreams: the WAN's (outside auto) and each tunnel's (a /64 of its /48
// no LAN's sla-id takes).
const nptTunnels = `
wan: {interface: w0, dhcpv6-pd: {}}
lan: [{interface: l0, sla-id: 0}]
tunnels:
  - {name: vx1, mode: vxlan, vni: 1, remote: 10.1.1.1, address: 2001:db8:ae00:0:1::2/80, gateway: 2001:db8:ae00:0:1::1,
     prefixes: [2001:db8:ae00:1::/64, 2001:db8:ae01::/48]}
  - {name: he, mode: 6in4, remote: 198.51.100.1, local: 203.0.113.2, address: 2001:db8:470:a::2/64, gateway: 2001:db8:470:a::1,
     prefixes: [2001:db8:471::/48]}
  - {name: ds, mode: ipip6, remote: 2001:db8:ffff::1, local: 2001:db8:fffe::2, routes: [0.0.0.0/0]}
`

func TestParseNPTOnTunnels(t *testing.T) {
	c, err := Parse(strings.NewReader(nptTunnels + `npt:
  - {interface: w0, inside: fd00:1::/64, outside: auto}
  - {interface: vx1, inside: fd00:2::/64, outside: 2001:db8:ae01:ff::/64}
  - {interface: he, inside: fd00:3::/64, outside: 2001:db8:471:ff::/64, mode: preserve-host}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.NPT) != 3 || c.NPT[1].Interface != "vx1" || c.NPT[1].Outside != netip.MustParsePrefix("2001:db8:ae01:ff::/64") ||
		c.NPT[2].Interface != "he" || c.NPT[2].Mode != "preserve-host" {
		t.Errorf("npt = %+v", c.NPT)
	}
}

// An npt entry on a tunnel: vxlan or 6in4 only, an explicit outside prefix
// within the tunnel's prefixes and carved to no LAN.
func TestParseNPTOnTunnelErrors(t *testing.T) {
	for _, tc := range []struct{ name, npt, want string }{
		{"auto", "{interface: vx1, inside: 'fd00:2::/64', outside: auto}",
			"npt[0].outside: auto is the WAN prefix the daemon learns, and vx1 is a tunnel: give a prefix of its prefixes (2001:db8:ae00:1::/64, 2001:db8:ae01::/48)"},
		{"outside elsewhere", "{interface: he, inside: 'fd00:2::/64', outside: '2001:db8:ae01:ff::/64'}",
			"npt[0].outside: 2001:db8:ae01:ff::/64 is not within the prefixes of tunnel he (2001:db8:471::/48); the peer routes only those here"},
		{"wider than the prefix", "{interface: he, inside: 'fd00::/32', outside: '2001:db8::/32'}",
			"npt[0].outside: 2001:db8::/32 is not within the prefixes of tunnel he"},
		{"carved to a lan", "{interface: vx1, inside: 'fd00:2::/64', outside: '2001:db8:ae00:1::/64'}",
			"npt[0].outside: 2001:db8:ae00:1::/64 overlaps 2001:db8:ae00:1::/64, carved from 2001:db8:ae00:1::/64 to lan l0"},
		{"ipip6", "{interface: ds, inside: 'fd00:2::/64', outside: '2001:db8::/64'}",
			`npt[0].interface: "ds" is an ipip6 tunnel, which carries IPv4; NPT translates IPv6 on the wan or on a vxlan or 6in4 tunnel`},
		{"unknown", "{interface: l0, inside: 'fd00:2::/64', outside: '2001:db8::/64'}",
			`npt[0].interface: "l0" is neither the wan interface nor a vxlan or 6in4 tunnel`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(nptTunnels + "npt: [" + tc.npt + "]\n"))
			if err == nil {
				t.Fatalf("accepted: %s", tc.npt)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// A tunnel without prefixes has nothing routed here to translate onto.
func TestParseNPTOnTunnelWithoutPrefixes(t *testing.T) {
	_, err := Parse(strings.NewReader("wan: {interface: w0}\nlan: [{interface: l0}]\n" +
		"tunnels: [{name: s, mode: 6in4, remote: 198.51.100.1, local: 203.0.113.2}]\n" +
		"npt: [{interface: s, inside: 'fd00:2::/64', outside: '2001:db8::/64'}]\n"))
	want := `npt[0].interface: tunnel "s" has no prefixes`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}
