package control

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/control/config"
)

// heConfig is a HE.net-like 6in4 tunnel with a routed /48, carved to
// lan0 by sla-id 1.
const heConfig = `wan: {interface: wan0}
lan: [{interface: lan0, sla-id: 1}]
tunnels:
  - {name: he, mode: 6in4, remote: 198.51.100.1, local: 203.0.113.2, address: "2001:db8:470:a::2/64",
     gateway: "2001:db8:470:a::1", prefixes: ["2001:db8:471::/48"]}
`

// TestSteering6in4: a 6in4 tunnel's routed prefixes are steered as a
// vxlan tunnel's: traffic from them and from the link net looks up the
// tunnel's table, whose default is the broker's link address on the
// tunnel netdev; what is addressed to the LAN's carved /64 looks up main;
// the carved /64 is a LAN prefix in force (LAN RAs, the firewall).
func TestSteering6in4(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader(heConfig))
	if err != nil {
		t.Fatal(err)
	}
	he := cfg.Tunnels[0]
	st := desiredSteering(cfg)
	lan := netip.MustParsePrefix("2001:db8:471:1::/64")
	for _, r := range []SteeringRule{
		{Priority: cfg.PolicyRouting.Priority, Dst: lan, Table: mainTable},
		{Priority: he.Priority, Src: netip.MustParsePrefix("2001:db8:471::/48"), Table: he.Table},
		{Priority: he.Priority, Src: netip.MustParsePrefix("2001:db8:470:a::/64"), Table: he.Table},
	} {
		if !slices.Contains(st.Rules, r) {
			t.Errorf("no rule %s in %v", r, st.Rules)
		}
	}
	def := SteeringRoute{Table: he.Table, Dst: netip.MustParsePrefix("::/0"), Gateway: he.Gateway, Dev: "he"}
	if !slices.Contains(st.Routes, def) {
		t.Errorf("no route %s in %v", def, st.Routes)
	}
	if !slices.Contains(lanPrefixesInForce(cfg), lan) {
		t.Errorf("carved %s not a LAN prefix in force: %v", lan, lanPrefixesInForce(cfg))
	}
}
