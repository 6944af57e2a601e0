package lanra

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/mdlayher/ndp"

	"github.com/xdprouter/xdprouter/control/learned"
)

// Advert is what one LAN interface advertises. Lifetimes are deadlines:
// each RA carries what remains of them when it is sent, so nothing a host
// learns outlives what the router itself holds (the delegated or learned
// prefix).
type Advert struct {
	// Prefixes are advertised on-link, and autonomous (SLAAC) when they
	// are /64s; the OnLink/Autonomous fields are not used (a delegated
	// prefix has them false). A prefix past its Preferred deadline goes
	// out with preferred lifetime 0 (deprecated: how renumbering retires
	// the old prefix) until its Valid deadline, then no more.
	Prefixes []learned.Prefix
	// Fixed are prefixes the router holds for good (a tunnel's fixed
	// prefixes, carved per LAN): every RA carries them with the same
	// lifetimes, as radvd advertises a configured prefix, where Prefixes
	// count down to what the router itself was given.
	Fixed []FixedPrefix
	// DNS servers (RDNSS option); each is advertised with the smaller of
	// what remains of its lifetime and the sender's DNS lifetime. Only
	// global unicast addresses that are not in Own are advertised (see
	// Advertisable): a link-local, loopback, multicast or IPv4-mapped
	// address learned on the WAN means nothing, or something else, on the
	// LAN.
	DNS []learned.Server
	// Own are the router's own addresses (WAN and LAN): it runs no
	// resolver there, so a WAN RA naming one is not passed on.
	Own   []netip.Addr
	DNSSL []string
	MTU   int // 0: no MTU option
	// RouterLifetime 0 says "not a default router" (RFC 7084 wants that
	// while the WAN has no default route). Capped at 65535 s (RFC 8319).
	RouterLifetime time.Duration
}

// FixedPrefix is a prefix advertised with constant lifetimes.
type FixedPrefix struct {
	Prefix           netip.Prefix
	Valid, Preferred time.Duration
}

// RA header values a LAN gets: no DHCPv6 (M and O clear), hop limit 64.
const curHopLimit = 64

// maxRouterLifetime is the largest router lifetime the field holds.
const maxRouterLifetime = 65535 * time.Second

// PrefixStat is one prefix as it was last advertised.
type PrefixStat struct {
	Prefix string `json:"prefix"`
	// Lifetimes in seconds as sent; 4294967295 is infinite.
	Valid     uint32 `json:"valid_lft"`
	Preferred uint32 `json:"preferred_lft"`
}

// message is the RA for ad at now, and the prefixes as it carries them.
// dnsLifetime bounds RDNSS and DNSSL lifetimes.
func (ad Advert) message(now time.Time, mac net.HardwareAddr, dnsLifetime time.Duration) (*ndp.RouterAdvertisement, []PrefixStat) {
	ra := &ndp.RouterAdvertisement{
		CurrentHopLimit: curHopLimit,
		RouterLifetime:  min(ad.RouterLifetime, maxRouterLifetime).Truncate(time.Second),
	}
	if len(mac) > 0 {
		ra.Options = append(ra.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac})
	}
	if ad.MTU > 0 {
		ra.Options = append(ra.Options, ndp.NewMTU(uint32(ad.MTU)))
	}
	var stats []PrefixStat
	for _, p := range ad.Prefixes {
		valid := learned.Remaining(p.Valid, now)
		if valid == 0 {
			continue
		}
		preferred := min(learned.Remaining(p.Preferred, now), valid)
		pm := p.Prefix.Masked()
		ra.Options = append(ra.Options, &ndp.PrefixInformation{
			PrefixLength:                   uint8(pm.Bits()),
			OnLink:                         true,
			AutonomousAddressConfiguration: pm.Bits() == 64,
			ValidLifetime:                  valid,
			PreferredLifetime:              preferred,
			Prefix:                         pm.Addr(),
		})
		stats = append(stats, PrefixStat{Prefix: pm.String(), Valid: uint32(valid / time.Second), Preferred: uint32(preferred / time.Second)})
	}
	for _, f := range ad.Fixed {
		pm := f.Prefix.Masked()
		ra.Options = append(ra.Options, &ndp.PrefixInformation{
			PrefixLength:                   uint8(pm.Bits()),
			OnLink:                         true,
			AutonomousAddressConfiguration: pm.Bits() == 64,
			ValidLifetime:                  f.Valid,
			PreferredLifetime:              min(f.Preferred, f.Valid),
			Prefix:                         pm.Addr(),
		})
		stats = append(stats, PrefixStat{Prefix: pm.String(), Valid: uint32(f.Valid / time.Second), Preferred: uint32(min(f.Preferred, f.Valid) / time.Second)})
	}
	// One RDNSS option per distinct lifetime, servers in the given order.
	var rdnss []*ndp.RecursiveDNSServer
	dns, _ := ad.resolvers()
	for _, s := range dns {
		lt := min(learned.Remaining(s.Until, now), dnsLifetime)
		if lt == 0 {
			continue
		}
		i := slices.IndexFunc(rdnss, func(o *ndp.RecursiveDNSServer) bool { return o.Lifetime == lt })
		if i < 0 {
			rdnss = append(rdnss, &ndp.RecursiveDNSServer{Lifetime: lt})
			i = len(rdnss) - 1
		}
		rdnss[i].Servers = append(rdnss[i].Servers, s.Addr.WithZone(""))
	}
	for _, o := range rdnss {
		ra.Options = append(ra.Options, o)
	}
	if len(ad.DNSSL) > 0 {
		ra.Options = append(ra.Options, &ndp.DNSSearchList{Lifetime: dnsLifetime, DomainNames: slices.Clone(ad.DNSSL)})
	}
	return ra, stats
}

// shape is what a host would notice of ad at now, without the lifetimes
// counting down: when it changes, the LAN hears about it at once. A
// refreshed deadline (every WAN RA refreshes them) is not a change.
func (ad Advert) shape(now time.Time) string {
	var prefixes []string
	for _, p := range ad.Prefixes {
		switch {
		case !p.Valid.After(now):
		case !p.Preferred.After(now):
			prefixes = append(prefixes, p.Prefix.Masked().String()+" deprecated")
		default:
			prefixes = append(prefixes, p.Prefix.Masked().String())
		}
	}
	for _, f := range ad.Fixed {
		prefixes = append(prefixes, f.Prefix.Masked().String())
	}
	var dns []string
	ok, _ := ad.resolvers()
	for _, s := range ok {
		if s.Until.After(now) {
			dns = append(dns, s.Addr.String())
		}
	}
	return fmt.Sprint(prefixes, dns, ad.DNSSL, ad.MTU, ad.RouterLifetime)
}

// Advertisable says whether a learned DNS server may be advertised to a
// LAN: a global unicast IPv6 address (ULAs included), not link-local,
// loopback, multicast, unspecified or IPv4-mapped.
func Advertisable(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && a.IsGlobalUnicast()
}

// resolvers splits ad.DNS into the servers advertised and the addresses
// withheld (not Advertisable, or the router's own).
func (ad Advert) resolvers() (ok []learned.Server, withheld []netip.Addr) {
	for _, s := range ad.DNS {
		a := s.Addr.WithZone("")
		if Advertisable(a) && !slices.Contains(ad.Own, a) {
			ok = append(ok, s)
		} else {
			withheld = append(withheld, a)
		}
	}
	return ok, withheld
}
