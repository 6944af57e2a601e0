package wanra

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
)

// FuzzRA feeds arbitrary ICMPv6 messages to the RA path as the tracker
// runs it (validation, option parsing one by one, the state update with
// its limits and the two-hour rule, expiry, the snapshot): it must never
// panic, and what it holds stays within the documented limits. Issue 13
// item 14. The seeds are RAs with every option the tracker uses, and the
// long and broken options of item 1.
func FuzzRA(f *testing.F) {
	pfx := netip.MustParsePrefix("2001:db8:1:2::/64")
	dns := []netip.Addr{netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("2001:db8::54")}
	full := &ndp.RouterAdvertisement{
		CurrentHopLimit: 64, ManagedConfiguration: true, OtherConfiguration: true, RouterSelectionPreference: ndp.High,
		RouterLifetime: 1800 * time.Second, ReachableTime: time.Second, RetransmitTimer: time.Second,
		Options: []ndp.Option{
			&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: fakeMAC},
			&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
				ValidLifetime: time.Hour, PreferredLifetime: 30 * time.Minute, Prefix: pfx.Addr()},
			&ndp.RecursiveDNSServer{Lifetime: time.Hour, Servers: dns},
			&ndp.DNSSearchList{Lifetime: time.Hour, DomainNames: []string{"example.jp", "flets-east.jp"}},
			ndp.NewMTU(1500),
			&ndp.RouteInformation{PrefixLength: 48, Preference: ndp.Low, RouteLifetime: time.Hour, Prefix: netip.MustParseAddr("2001:db8::")},
		},
	}
	for _, m := range []*ndp.RouterAdvertisement{full, {RouterLifetime: 0}, {RouterLifetime: 9000 * time.Second}} {
		b, err := ndp.MarshalMessage(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-3])
	}
	// 20 DNS servers: an option of 328 bytes (length 41).
	var many []netip.Addr
	for i := range 20 {
		a := dns[0].As16()
		a[15] = byte(i)
		many = append(many, netip.AddrFrom16(a))
	}
	if b, err := ndp.MarshalMessage(&ndp.RouterAdvertisement{RouterLifetime: time.Hour,
		Options: []ndp.Option{&ndp.RecursiveDNSServer{Lifetime: time.Hour, Servers: many}}}); err == nil {
		f.Add(b)
	}
	hdr := []byte{raType, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0}
	f.Add(append(hdr, pioBytes(pfx, 0xc0, 3600, 7200)...))                 // preferred > valid
	f.Add(append(hdr, 3, 4, 64, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0))             // a PIO cut short
	f.Add(append(hdr, 25, 1, 0, 0, 0, 0, 0x0e, 0x10))                      // an RDNSS without a server
	f.Add(append(hdr, 31, 2, 0, 0, 0, 0, 0x0e, 0x10, 0xff, 1, 2))          // a broken DNSSL
	f.Add(append(hdr, 200, 0))                                             // length 0
	f.Add(append(hdr, 200, 255))                                           // past the end
	f.Add(append(hdr, append([]byte{200, 255}, make([]byte, 2038)...)...)) // the longest option

	f.Fuzz(func(t *testing.T, b []byte) {
		st := newState()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		// The same message from several sources, over time: the state
		// update, renumbering and expiry see it as a router would.
		for i := range 20 {
			src := netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(i%3 + 1)})
			ra, _, reason := check(b, ndp.HopLimit, src)
			if reason != "" {
				if ra != nil {
					t.Fatalf("rejected (%s) but parsed", reason)
				}
				return
			}
			st.apply(now, src, ra)
			st.expire(now)
			snap := st.snapshot("wan0")
			if len(snap.Routers) > MaxRouters || len(snap.Prefixes) > MaxPrefixes || len(snap.DNS) > MaxDNS || len(snap.DNSSL) > MaxDNSSL {
				t.Fatalf("beyond the limits: %d routers, %d prefixes, %d DNS, %d DNSSL",
					len(snap.Routers), len(snap.Prefixes), len(snap.DNS), len(snap.DNSSL))
			}
			for _, p := range snap.Prefixes {
				if !p.Prefix.IsValid() || p.Prefix.Addr().IsLinkLocalUnicast() || p.Preferred.After(p.Valid) {
					t.Fatalf("prefix held: %+v", p)
				}
			}
			if n := st.next(now); !n.IsZero() && n.Before(now) {
				t.Fatalf("next event %v before now %v", n, now)
			}
			now = now.Add(time.Duration(binary.BigEndian.Uint16(append(b, 0, 0)[:2])) * time.Second)
		}
	})
}
