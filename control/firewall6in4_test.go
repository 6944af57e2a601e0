package control

import (
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/control/config"
)

// TestFirewall6in4Remote: the default firewall accepts protocol 41 for
// the router from a 6in4 tunnel's remote, and from no one else: 6in4
// fragmented in the outer header reaches the input hook once the kernel
// reassembled it, on its way to the daemon's relay (control/reasm).
// Before, it fell to the WAN input's final drop.
func TestFirewall6in4Remote(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader(heConfig))
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := desiredRuleset(cfg)
	s := rs.script(nil)
	in := chainBody(t, s, "wan_input")
	accept := strings.Index(in, "ip protocol 41 ip saddr { 198.51.100.1 } accept")
	if accept < 0 || accept > strings.Index(in, "counter name drop_wan_input drop") {
		t.Errorf("wan_input: no accept of protocol 41 from the broker before the final drop:\n%s", in)
	}
	if strings.Contains(in, "meta l4proto 4 ip6 saddr") {
		t.Errorf("wan_input: the 6in4 remote among ipip6's:\n%s", in)
	}
	nftCheck(t, s)
}
