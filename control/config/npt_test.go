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
		{"not wan", "npt: [{interface: l0, inside: 'fd00::/64', outside: '2001:db8::/64'}]", `npt[0].interface: "l0" is not the wan interface`},
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
