package control

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// The netlink side of vxlan tunnels and steering, in a namespace: a
// vxlan netdev is made, adopted unchanged by the next pass (a restarted
// daemon), made anew for a new VNI, never taken from someone else; the
// steering rules and tables become exactly what is asked, a second Sync
// changes nothing, a renumbered LAN prefix moves its rule, and removing
// it all leaves a rule of the user's alone.
func TestNetlinkVXLANAndSteering(t *testing.T) {
	lab := netlab.ForTest(t)
	ns, err := lab.AddNS("r", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Veth(ns, "wan0", ns, "peer0"); err != nil {
		t.Fatal(err)
	}
	if err := lab.MustExec(ns, []string{"ip", "addr", "add", "10.1.1.2/24", "dev", "wan0"},
		[]string{"ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan0p"},
		[]string{"ip", "link", "set", "lan0", "up"},
		[]string{"ip", "-6", "rule", "add", "from", "2001:db8:9::/48", "lookup", "main", "priority", "2000"}); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, strings.Replace(seed001, "lan:\n  - {interface: lan0, sla-id: 0}\n  - {interface: lan1, sla-id: 1}",
		"lan:\n  - {interface: lan0, sla-id: 0}", 1))
	cfg.Firewall.LearnedLAN = map[string][]netip.Prefix{"lan0": {pfx("2001:db8:100::/64")}}
	v := cfg.VXLAN[0]
	devs := NetlinkVXLANDevs{}
	err = lab.Do(ns, func() error {
		idx, created, err := devs.Ensure(v)
		if err != nil || !created {
			t.Fatalf("Ensure: %d %v %v", idx, created, err)
		}
		out, _ := lab.Exec(ns, "ip", "-d", "-6", "addr", "show", "dev", "vxlan01")
		for _, want := range []string{"vxlan id 1 remote 10.1.1.1 dev wan0", "dstport 4789", "nolearning", "2001:db8:ae00:0:1::2/80"} {
			if !strings.Contains(out, want) {
				t.Errorf("vxlan01 lacks %q:\n%s", want, out)
			}
		}
		// A stray global address goes; the next pass adopts the netdev.
		if _, err := lab.Exec(ns, "ip", "-6", "addr", "add", "2001:db8:dead::1/64", "dev", "vxlan01", "nodad"); err != nil {
			t.Fatal(err)
		}
		idx2, created, err := devs.Ensure(v)
		if err != nil || created || idx2 != idx {
			t.Errorf("second Ensure: ifindex %d (was %d), created %v, %v", idx2, idx, created, err)
		}
		if out, _ := lab.Exec(ns, "ip", "-6", "addr", "show", "dev", "vxlan01"); strings.Contains(out, "dead") {
			t.Errorf("stray address kept:\n%s", out)
		}
		w := v
		w.VNI = 7
		idx3, created, err := devs.Ensure(w)
		if err != nil || !created || idx3 == idx {
			t.Errorf("Ensure with a new VNI: ifindex %d (was %d), created %v, %v", idx3, idx, created, err)
		}
		if owned, err := devs.Owned(); err != nil || !slices.Equal(owned, []string{"vxlan01"}) {
			t.Errorf("Owned() = %v, %v", owned, err)
		}
		// Someone else's vxlan of the same name is refused, not taken.
		f := v
		f.Name = "theirs"
		if _, err := lab.Exec(ns, "ip", "link", "add", "theirs", "type", "vxlan", "id", "9", "dstport", "4789", "remote", "10.1.1.9", "dev", "wan0"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := devs.Ensure(f); err == nil || !strings.Contains(err.Error(), "is not an xdprouter vxlan tunnel") {
			t.Errorf("Ensure over someone else's netdev: %v", err)
		}
		if err := devs.Remove("theirs"); err != nil {
			t.Fatal(err)
		}
		if _, err := lab.Exec(ns, "ip", "link", "show", "theirs"); err != nil {
			t.Errorf("Remove deleted someone else's netdev")
		}

		st := NetlinkSteering{}
		want := desiredSteering(cfg)
		steps, err := st.Sync(want)
		if err != nil {
			t.Fatal(err)
		}
		if len(steps) != len(want.Rules)+len(want.Routes) {
			t.Errorf("first Sync: %d steps for %d rules and %d routes: %v", len(steps), len(want.Rules), len(want.Routes), steps)
		}
		got := ReadSteering()
		if got == nil || !sameSet(got.Rules, want.Rules) || !sameSet(got.Routes, want.Routes) {
			t.Fatalf("read back %+v\nwant %+v", got, want)
		}
		if steps, err := st.Sync(want); err != nil || len(steps) != 0 {
			t.Errorf("second Sync: %v, %v", steps, err)
		}
		cfg.Firewall.LearnedLAN["lan0"] = []netip.Prefix{pfx("2001:db8:200::/64")}
		steps, err = st.Sync(desiredSteering(cfg))
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, x := range steps {
			s = append(s, x.What+": "+x.Result)
		}
		if !slices.Equal(s, []string{"rule 2000: to 2001:db8:200::/64 lookup main: added", "rule 2000: to 2001:db8:100::/64 lookup main: removed"}) {
			t.Errorf("renumbered LAN: %v", s)
		}
		if err := RemoveSteering(); err != nil {
			t.Fatal(err)
		}
		if got := ReadSteering(); got != nil {
			t.Errorf("after RemoveSteering: %+v", got)
		}
		if out, _ := lab.Exec(ns, "ip", "-6", "rule", "show"); !strings.Contains(out, "from 2001:db8:9::/48 lookup main") {
			t.Errorf("the user's rule went:\n%s", out)
		}
		return devs.Remove("vxlan01")
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sameSet[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
