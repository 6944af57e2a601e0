package wanra

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/control/tasktest"
)

type managedCall struct {
	router netip.Addr
	m, o   bool
}

// Issue 13 item 12: a router that begins to advertise M or O (a home
// gateway whose DHCPv6 server just started) is reported once, so the
// DHCPv6 client can solicit at once; repeats and RAs without the flags
// are not.
func TestManagedFlagReportedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls []managedCall
		r := &rig{t: t, conn: newFakeConn(), pubs: make(chan learned.RA, 100), start: time.Now()}
		r.tr = &Tracker{Interface: "wan0", Log: quiet,
			Publish: func(ra learned.RA) { r.pubs <- ra },
			Listen:  func(string) (Conn, error) { return r.conn, nil },
			Managed: func(router netip.Addr, m, o bool) { calls = append(calls, managedCall{router, m, o}) },
		}
		tasktest.Start(t, r.tr.Run)
		synctest.Wait()
		plain := marshal(t, &ndp.RouterAdvertisement{RouterLifetime: 1800 * time.Second})
		managed := marshal(t, &ndp.RouterAdvertisement{RouterLifetime: 1800 * time.Second, ManagedConfiguration: true})
		other := marshal(t, &ndp.RouterAdvertisement{RouterLifetime: 1800 * time.Second, OtherConfiguration: true})
		r.send(plain, 255, routerA)
		r.send(managed, 255, routerA) // A begins to offer DHCPv6
		r.send(managed, 255, routerA)
		r.send(other, 255, routerB) // B, first heard with O
		r.send(plain, 255, routerA)
		r.send(managed, 255, routerA) // again after a pause
		r.send(managed, 254, routerB) // rejected: not counted
		want := []managedCall{{netip.MustParseAddr(routerA), true, false}, {netip.MustParseAddr(routerB), false, true},
			{netip.MustParseAddr(routerA), true, false}}
		if len(calls) != len(want) {
			t.Fatalf("Managed called %v, want %v", calls, want)
		}
		for i := range want {
			if calls[i] != want[i] {
				t.Errorf("call %d: %+v, want %+v", i, calls[i], want[i])
			}
		}
		if st := r.tr.Stats(); st.ManagedSeen != 3 {
			t.Errorf("managed_flag_seen %d, want 3", st.ManagedSeen)
		}
	})
}
