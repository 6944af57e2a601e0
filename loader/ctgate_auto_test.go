package loader

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// TestResolveCTGateAuto: auto leaves forwarding ungated only where nothing
// would be bypassed. Each case builds one piece of netfilter state in a
// fresh namespace; the legacy policy without a rule is the case a count of
// rules misses (iptables-legacy -P FORWARD DROP drops everything forwarded
// with no rule listed).
func TestResolveCTGateAuto(t *testing.T) {
	requirePrivileged(t)
	for _, tool := range []string{"nft", "iptables-legacy", "ip6tables-legacy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (Debian packages nftables, iptables; make test installs them): %v", tool, err)
		}
	}
	cases := []struct {
		name     string
		setup    [][]string
		want     CTGate
		inReason string
	}{
		{"nothing", nil, CTGateOff, "nothing to bypass"},
		{"nft forward chain", [][]string{
			{"nft", "add", "table", "inet", "t"},
			{"nft", "add chain inet t fw { type filter hook forward priority 0; policy drop; }"},
		}, CTGateOn, "inet t fw (forward)"},
		{"nft nat prerouting", [][]string{
			{"nft", "add", "table", "ip", "n"},
			{"nft", "add chain ip n pre { type nat hook prerouting priority dstnat; }"},
		}, CTGateOn, "ip n pre (prerouting)"},
		{"nft netdev ingress", [][]string{
			{"ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"},
			{"nft", "add", "table", "netdev", "nd"},
			{"nft", "add chain netdev nd in { type filter hook ingress device d0 priority 0; }"},
		}, CTGateOn, "netdev nd in (ingress)"},
		{"nft input chain only", [][]string{
			{"nft", "add", "table", "inet", "i"},
			{"nft", "add chain inet i in { type filter hook input priority 0; policy drop; }"},
		}, CTGateOff, "nothing to bypass"},
		{"iptables-legacy policy, no rule", [][]string{{"iptables-legacy", "-P", "FORWARD", "DROP"}}, CTGateOn, "iptables-legacy table filter"},
		{"ip6tables-legacy nat", [][]string{{"ip6tables-legacy", "-t", "nat", "-L"}}, CTGateOn, "ip6tables-legacy table nat"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lab, err := netlab.New()
			if err != nil {
				t.Fatal(err)
			}
			defer lab.Close()
			ns, err := lab.AddNS("g", false)
			if err != nil {
				t.Fatal(err)
			}
			for _, cmd := range c.setup {
				if len(cmd) == 2 { // one nft command line
					cmd = append([]string{cmd[0]}, strings.Fields(cmd[1])...)
				}
				if _, err := lab.Exec(ns, cmd...); err != nil {
					t.Fatal(err)
				}
			}
			var got CTGate
			var why string
			if err := lab.Do(ns, func() error {
				var err error
				got, why, err = ResolveCTGate(CTGateAuto)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if got != c.want || !strings.Contains(why, c.inReason) {
				t.Errorf("auto = %s (%s), want %s with %q", got, why, c.want, c.inReason)
			}
		})
	}
}
