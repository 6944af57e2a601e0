package wanra

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/xdprouter/xdprouter/control/learned"
)

// Reasons a single option of an accepted RA is ignored, as counted in
// Stats.IgnoredOptions.
const (
	IgnorePrefixLinkLocal  = "prefix_link_local"         // RFC 4862 5.5.3 b)
	IgnorePrefixNotUnicast = "prefix_not_unicast"        // multicast, loopback, unspecified
	IgnorePrefixLength     = "prefix_length"             // 0 or over 128
	IgnorePreferredOver    = "prefix_preferred_gt_valid" // RFC 4862 5.5.3 c)
	IgnoreMTUTooSmall      = "mtu_below_1280"
)

// minMTU is IPv6's minimum link MTU (RFC 8200).
const minMTU = 1280

type domain struct {
	name  string
	until time.Time
}

// state is what the RAs heard so far say, keyed the way RFC 4861 and
// RFC 8106 update it: prefixes by prefix, routers by source address, DNS
// servers by address, search domains by name.
type state struct {
	prefixes map[netip.Prefix]learned.Prefix
	routers  map[netip.Addr]learned.Router
	dns      []learned.Server // in the order first heard
	dnssl    []domain
	// mtu is the last MTU option heard. It has no lifetime of its own
	// (it describes the link, not a router), so it stays until another
	// RA says otherwise.
	mtu int
	// checked is when expire last ran: a preferred deadline in
	// (checked, now] is a change too (the prefix became deprecated).
	checked time.Time
}

func newState() *state {
	return &state{prefixes: map[netip.Prefix]learned.Prefix{}, routers: map[netip.Addr]learned.Router{}}
}

// apply takes in an accepted RA from src received at now and returns the
// reasons of the options it ignored.
func (s *state) apply(now time.Time, src netip.Addr, ra *ndp.RouterAdvertisement) []string {
	var ignored []string
	var mac net.HardwareAddr
	for _, o := range ra.Options {
		switch o := o.(type) {
		case *ndp.PrefixInformation:
			if r := s.applyPrefix(now, o); r != "" {
				ignored = append(ignored, r)
			}
		case *ndp.RecursiveDNSServer:
			for _, a := range o.Servers {
				s.dns = upsertServer(s.dns, learned.Server{Addr: a.WithZone(""), Until: learned.Deadline(now, o.Lifetime)})
			}
		case *ndp.DNSSearchList:
			for _, n := range o.DomainNames {
				s.dnssl = upsertDomain(s.dnssl, domain{name: n, until: learned.Deadline(now, o.Lifetime)})
			}
		case *ndp.MTU:
			if o.MTU < minMTU {
				ignored = append(ignored, IgnoreMTUTooSmall)
				continue
			}
			s.mtu = int(o.MTU)
		case *ndp.LinkLayerAddress:
			if o.Direction == ndp.Source {
				mac = slices.Clone(o.Addr)
			}
		}
	}
	if ra.RouterLifetime == 0 {
		// Not (or no longer) a default router: gone at once (6.3.4).
		delete(s.routers, src)
	} else {
		s.routers[src] = learned.Router{
			Addr:       src,
			Until:      now.Add(ra.RouterLifetime),
			Preference: preference(ra.RouterSelectionPreference),
			MAC:        mac,
		}
	}
	return ignored
}

func (s *state) applyPrefix(now time.Time, o *ndp.PrefixInformation) string {
	if o.PrefixLength == 0 || o.PrefixLength > 128 {
		return IgnorePrefixLength
	}
	p := netip.PrefixFrom(o.Prefix.WithZone(""), int(o.PrefixLength)).Masked()
	switch {
	case p.Addr().IsLinkLocalUnicast():
		return IgnorePrefixLinkLocal
	case p.Addr().IsMulticast() || p.Addr().IsLoopback() || p.Addr().IsUnspecified():
		return IgnorePrefixNotUnicast
	case o.PreferredLifetime > o.ValidLifetime:
		return IgnorePreferredOver
	}
	if o.ValidLifetime == 0 {
		delete(s.prefixes, p)
		return ""
	}
	s.prefixes[p] = learned.Prefix{
		Prefix:     p,
		Valid:      learned.Deadline(now, o.ValidLifetime),
		Preferred:  learned.Deadline(now, o.PreferredLifetime),
		OnLink:     o.OnLink,
		Autonomous: o.AutonomousAddressConfiguration,
	}
	return ""
}

// preference maps RFC 4191's two-bit field to learned.Router's scale.
func preference(p ndp.Preference) int {
	switch p {
	case ndp.High:
		return 1
	case ndp.Low:
		return -1
	}
	return 0
}

// upsertServer refreshes a known server in place (keeping the order the
// servers were first heard in); lifetime 0 removes it (RFC 8106 5.1).
func upsertServer(list []learned.Server, sv learned.Server) []learned.Server {
	i := slices.IndexFunc(list, func(e learned.Server) bool { return e.Addr == sv.Addr })
	switch {
	case i >= 0:
		list[i] = sv
	default:
		list = append(list, sv)
	}
	return list
}

func upsertDomain(list []domain, d domain) []domain {
	i := slices.IndexFunc(list, func(e domain) bool { return e.name == d.name })
	if i >= 0 {
		list[i] = d
		return list
	}
	return append(list, d)
}

// expire drops what has passed its deadline at now and reports whether
// the snapshot changed: something dropped, or a prefix deprecated. An
// entry whose deadline is now is gone: a lifetime of 0 (a removal) lands
// exactly there.
func (s *state) expire(now time.Time) bool {
	n := len(s.prefixes) + len(s.routers) + len(s.dns) + len(s.dnssl)
	deprecated := false
	for k, p := range s.prefixes {
		if !p.Valid.After(now) {
			delete(s.prefixes, k)
		} else if p.Preferred.After(s.checked) && !p.Preferred.After(now) {
			deprecated = true
		}
	}
	s.checked = now
	for k, r := range s.routers {
		if !r.Until.After(now) {
			delete(s.routers, k)
		}
	}
	s.dns = slices.DeleteFunc(s.dns, func(e learned.Server) bool { return !e.Until.After(now) })
	s.dnssl = slices.DeleteFunc(s.dnssl, func(e domain) bool { return !e.until.After(now) })
	return deprecated || n != len(s.prefixes)+len(s.routers)+len(s.dns)+len(s.dnssl)
}

// next is the earliest deadline after now at which the snapshot changes
// (something expires, or a prefix becomes deprecated); zero if none.
func (s *state) next(now time.Time) time.Time {
	var t time.Time
	consider := func(d time.Time) {
		if d.After(now) && d.Before(learned.Forever) && (t.IsZero() || d.Before(t)) {
			t = d
		}
	}
	for _, p := range s.prefixes {
		consider(p.Valid)
		consider(p.Preferred)
	}
	for _, r := range s.routers {
		consider(r.Until)
	}
	for _, e := range s.dns {
		consider(e.Until)
	}
	for _, e := range s.dnssl {
		consider(e.until)
	}
	return t
}

// snapshot is the state as the reconciler gets it: copies, in a stable
// order (routers best first, as a host would pick them).
func (s *state) snapshot(ifname string) learned.RA {
	ra := learned.RA{Interface: ifname, MTU: s.mtu}
	for _, p := range s.prefixes {
		ra.Prefixes = append(ra.Prefixes, p)
	}
	slices.SortFunc(ra.Prefixes, func(a, b learned.Prefix) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	for _, r := range s.routers {
		r.MAC = slices.Clone(r.MAC)
		ra.Routers = append(ra.Routers, r)
	}
	slices.SortFunc(ra.Routers, func(a, b learned.Router) int {
		return cmp.Or(cmp.Compare(b.Preference, a.Preference), a.Addr.Compare(b.Addr))
	})
	ra.DNS = slices.Clone(s.dns)
	for _, d := range s.dnssl {
		ra.DNSSL = append(ra.DNSSL, d.name)
	}
	return ra
}
