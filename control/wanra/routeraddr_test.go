package wanra

import (
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/xdprouter/xdprouter/control/learned"
)

// pioR is a prefix option with the R flag naming router, an address in p.
func pioR(p netip.Prefix, router string, valid time.Duration) *ndp.PrefixInformation {
	o := pio(p, valid, valid)
	o.RouterAddress, o.Router = true, netip.MustParseAddr(router)
	return o
}

// The routers' global addresses named by prefix options with the R flag
// (RFC 6275 7.2) are learned with their prefix's valid lifetime, for the
// NDP proxy to leave alone (issue 13 item 10): withdrawn by a lifetime of
// 0, dropped when it runs out, capped at MaxRouterAddrs.
func TestRouterAddressesLearned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t)
		other := netip.MustParsePrefix("2001:db8:7::/64")
		r.send(marshal(t, &ndp.RouterAdvertisement{RouterLifetime: time.Hour, Options: []ndp.Option{
			pioR(prefix1, "2001:db8:1:2::1", 2*time.Hour),
			pioR(other, "2001:db8:7::fe", 10*time.Minute),
		}}), 255, routerA)
		ra := r.last()
		want := []learned.RouterAddr{
			{Addr: netip.MustParseAddr("2001:db8:1:2::1"), Router: netip.MustParseAddr(routerA), Until: r.start.Add(2 * time.Hour)},
			{Addr: netip.MustParseAddr("2001:db8:7::fe"), Router: netip.MustParseAddr(routerA), Until: r.start.Add(10 * time.Minute)},
		}
		if !slices.Equal(ra.RouterAddrs, want) || len(ra.Prefixes) != 2 {
			t.Fatalf("router addresses %+v (prefixes %d), want %+v", ra.RouterAddrs, len(ra.Prefixes), want)
		}
		if st := r.tr.Stats(); st.RouterAddrs != 2 || st.Limits[TableRAddrs] != MaxRouterAddrs {
			t.Errorf("stats router_addresses %d, limit %d", st.RouterAddrs, st.Limits[TableRAddrs])
		}

		// Expiry: the second goes when its prefix's lifetime ends.
		r.sleepUntil(11 * time.Minute)
		if ra := r.last(); !slices.Equal(ra.RouterAddrs, want[:1]) {
			t.Errorf("after 11 min: %+v, want only %v", ra.RouterAddrs, want[0].Addr)
		}

		// A lifetime of 0 withdraws it.
		r.send(marshal(t, &ndp.RouterAdvertisement{RouterLifetime: time.Hour, Options: []ndp.Option{
			pioR(prefix1, "2001:db8:1:2::1", 0),
			&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, RouterAddress: true, ValidLifetime: time.Hour,
				PreferredLifetime: time.Hour, Prefix: netip.MustParseAddr("2001:db8:8::"), Router: netip.MustParseAddr("2001:db8:8::5")},
		}}), 255, routerA)
		ra = r.last()
		if len(ra.RouterAddrs) != 1 || ra.RouterAddrs[0].Addr != netip.MustParseAddr("2001:db8:8::5") {
			t.Errorf("after the withdrawal: %+v, want only 2001:db8:8::5", ra.RouterAddrs)
		}

		// The table is capped, and what did not fit is counted.
		var opts []ndp.Option
		for i := range MaxRouterAddrs + 3 {
			p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x30, byte(i)}), 64)
			a := p.Addr().As16()
			a[15] = 1
			opts = append(opts, pioR(p, netip.AddrFrom16(a).String(), time.Hour))
		}
		r.send(marshal(t, &ndp.RouterAdvertisement{RouterLifetime: time.Hour, Options: opts}), 255, routerB)
		ra = r.last()
		if len(ra.RouterAddrs) != MaxRouterAddrs {
			t.Errorf("%d router addresses held, want the cap %d", len(ra.RouterAddrs), MaxRouterAddrs)
		}
		if d := r.tr.Stats().Dropped[TableRAddrs]; d != 4 {
			t.Errorf("dropped %d router addresses, want 4 (one held, %d sent, cap %d)", d, MaxRouterAddrs+3, MaxRouterAddrs)
		}
	})
}
