package daemon

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/xdprouter/xdprouter/control"
)

// Issue 13 item 4: the router's own addresses are never advertised to a
// LAN as its DNS servers (lanra.Advert.Own).
func TestOwnAddrsWithheldFromLANDNS(t *testing.T) {
	a6 := func(s string) control.Addr6 { return control.Addr6{Prefix: netip.MustParsePrefix(s)} }
	p := control.Plan{
		WANAddr: a6("2001:db8:1:2::feed/64"),
		LANs: []control.LANPlan{
			{Interface: "lan0", Addr: a6("2001:db8:3:1::1/64"), RetiredAddrs: []control.Addr6{a6("2001:db8:4:1::1/64")}},
			{Interface: "lan1"}, // no address yet
		},
	}
	want := []netip.Addr{netip.MustParseAddr("2001:db8:1:2::feed"), netip.MustParseAddr("2001:db8:3:1::1"),
		netip.MustParseAddr("2001:db8:4:1::1")}
	if got := ownAddrs(p); !slices.Equal(got, want) {
		t.Errorf("ownAddrs %v, want %v", got, want)
	}
	if got := ownAddrs(control.Plan{}); len(got) != 0 {
		t.Errorf("ownAddrs of an empty plan %v", got)
	}
}
