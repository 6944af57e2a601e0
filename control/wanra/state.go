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
	IgnoreMalformedOption  = "option_malformed"  // its content did not parse; the rest of the RA is used
	IgnoreRDNSSNotUnicast  = "rdnss_not_unicast" // multicast, loopback, unspecified or IPv4-mapped server
)

// Limits on what the tracker holds, so that RAs from other hosts on a
// shared WAN link cannot grow it without bound (RFC 4861 6.3.4 and RFC
// 8106 5.3.1 leave the sizes to the implementation; the kernel keeps at
// most 16 addresses per interface, net.ipv6.conf.*.max_addresses). What
// is held is refreshed and withdrawn as usual; a new entry that would go
// beyond a limit is not learned, and counted in Stats.Dropped under the
// table's name, so a flood cannot push out what the router already uses.
const (
	MaxRouters  = 16 // default routers (by source address)
	MaxPrefixes = 16 // prefixes from Prefix Information options
	MaxDNS      = 16 // RDNSS servers
	MaxDNSSL    = 16 // DNSSL search domains
	// Routers' global addresses (prefix options with the R flag): one or
	// two per router in practice.
	MaxRouterAddrs = 16
)

// Table names in Stats.Dropped.
const (
	TableRouters  = "routers"
	TablePrefixes = "prefixes"
	TableDNS      = "dns"
	TableDNSSL    = "dnssl"
	TableRAddrs   = "router_addresses"
)

// minValidLifetime is RFC 4862 5.5.3 e)'s two hours (the kernel's
// MIN_VALID_LIFETIME): an RA can shorten what remains of a prefix's
// valid lifetime to no less than this.
const minValidLifetime = 2 * time.Hour

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
	raddrs   []learned.RouterAddr // in the order first heard
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

// applied is what apply did not take in: the reasons of the options it
// ignored, and the tables that were full (one entry per entry dropped);
// and the prefixes it deprecated because their router stopped
// advertising them (flash renumbering).
type applied struct {
	ignored    []string
	dropped    []string
	deprecated []netip.Prefix
}

// apply takes in an accepted RA from src received at now.
func (s *state) apply(now time.Time, src netip.Addr, ra *ndp.RouterAdvertisement) applied {
	var res applied
	var mac net.HardwareAddr
	// The autonomous prefixes src advertised before this RA, and those
	// it advertises now.
	before := map[netip.Prefix]bool{}
	for k, p := range s.prefixes {
		if p.Autonomous && slices.Contains(p.Routers, src) {
			before[k] = true
		}
	}
	now6 := map[netip.Prefix]bool{}
	for _, o := range ra.Options {
		switch o := o.(type) {
		case *ndp.PrefixInformation:
			r, full := s.applyPrefix(now, src, o)
			if r != "" {
				res.ignored = append(res.ignored, r)
			}
			if full {
				res.dropped = append(res.dropped, TablePrefixes)
			}
			if r == "" && !full && o.AutonomousAddressConfiguration && o.ValidLifetime > 0 {
				now6[netip.PrefixFrom(o.Prefix.WithZone(""), int(o.PrefixLength)).Masked()] = true
			}
			// The router's address is learned whether its prefix
			// is or not (a full prefix table does not make the
			// address any less the router's), unless the option is
			// unusable. A usable prefix is global unicast (not
			// link-local, multicast, loopback, unspecified; the ndp
			// package refuses IPv4-mapped ones), and so is every
			// address in it.
			if r == "" && o.RouterAddress && !s.applyRouterAddr(now, src, o) {
				res.dropped = append(res.dropped, TableRAddrs)
			}
		case *ndp.RecursiveDNSServer:
			for _, a := range o.Servers {
				a = a.WithZone("")
				if a.IsMulticast() || a.IsLoopback() || a.IsUnspecified() || a.Is4In6() {
					res.ignored = append(res.ignored, IgnoreRDNSSNotUnicast)
					continue
				}
				var ok bool
				if s.dns, ok = upsertServer(s.dns, learned.Server{Addr: a, Until: learned.Deadline(now, o.Lifetime)}, now); !ok {
					res.dropped = append(res.dropped, TableDNS)
				}
			}
		case *ndp.DNSSearchList:
			for _, n := range o.DomainNames {
				var ok bool
				if s.dnssl, ok = upsertDomain(s.dnssl, domain{name: n, until: learned.Deadline(now, o.Lifetime)}, now); !ok {
					res.dropped = append(res.dropped, TableDNSSL)
				}
			}
		case *ndp.MTU:
			if o.MTU < minMTU {
				res.ignored = append(res.ignored, IgnoreMTUTooSmall)
				continue
			}
			s.mtu = int(o.MTU)
		case *ndp.LinkLayerAddress:
			if o.Direction == ndp.Source {
				mac = slices.Clone(o.Addr)
			}
		}
	}
	res.deprecated = s.renumbered(now, src, before, now6)
	_, known := s.routers[src]
	switch {
	case ra.RouterLifetime == 0:
		// Not (or no longer) a default router: gone at once (6.3.4).
		delete(s.routers, src)
	case !known && len(s.routers) >= MaxRouters:
		res.dropped = append(res.dropped, TableRouters)
	default:
		s.routers[src] = learned.Router{
			Addr:       src,
			Until:      now.Add(ra.RouterLifetime),
			Preference: preference(ra.RouterSelectionPreference),
			MAC:        mac,
		}
	}
	return res
}

// renumbered deprecates, at now, the autonomous prefixes src advertised
// before (had) and no longer does (has), when its RA brings a prefix it
// did not advertise before: a router that restarted on a new prefix and
// simply stopped advertising the old one (RFC 8978 2 and 4; what an ISP
// router's reboot does). Without this the old prefix stays preferred
// until its lifetimes run out, hours or days; the kernel, like most
// hosts, waits that long. The valid lifetime is left alone, so the old
// address keeps working for what still uses it, but a new one is made
// in the new prefix at once.
//
// Only a new prefix triggers it: a router that spreads its prefixes over
// several RAs (RFC 4861 6.2.3 allows it) advertises nothing new in each
// after the first round, and a deprecated prefix it advertises again is
// preferred again by its own option. A prefix other routers advertise
// too keeps its lifetimes while one of them still does.
func (s *state) renumbered(now time.Time, src netip.Addr, had, has map[netip.Prefix]bool) []netip.Prefix {
	fresh := false
	for p := range has {
		if !had[p] {
			fresh = true
		}
	}
	if !fresh {
		return nil
	}
	var out []netip.Prefix
	for k := range had {
		p, ok := s.prefixes[k]
		if !ok || has[k] || !p.Preferred.After(now) {
			continue
		}
		if slices.ContainsFunc(p.Routers, func(r netip.Addr) bool { return r != src && s.routers[r].Until.After(now) }) {
			continue // another live router advertises it
		}
		p.Preferred = now
		s.prefixes[k] = p
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// maxPrefixRouters bounds the routers remembered for one prefix.
const maxPrefixRouters = MaxRouters

// withRouter is rs with src added (at the end), if there is room.
func withRouter(rs []netip.Addr, src netip.Addr) []netip.Addr {
	if slices.Contains(rs, src) || len(rs) >= maxPrefixRouters {
		return rs
	}
	return append(slices.Clip(rs), src)
}

// applyPrefix takes in one Prefix Information option; it returns why it
// was ignored, or full when it was new and the table had no room.
//
// A prefix the WAN address is made from (the A flag) gets the lifetimes
// a SLAAC address of the kernel would have, RFC 4862 5.5.3 e): the
// preferred lifetime is reset to the received one, but the valid lifetime
// only shortened to no less than two hours (or what remains, if less),
// as addrconf_prefix_rcv_add_addr does. One RA from any host on the link
// with a valid lifetime of 0 would otherwise remove the WAN address at
// once; with the rule, the prefix is deprecated and has two hours left,
// and the ISP's next RA restores it. An option without the A flag does
// not touch such a prefix (the kernel leaves the address alone then too).
// A prefix held only on-link follows RFC 4861 6.3.4: a valid lifetime of
// 0 removes it at once.
func (s *state) applyPrefix(now time.Time, src netip.Addr, o *ndp.PrefixInformation) (ignore string, full bool) {
	if o.PrefixLength == 0 || o.PrefixLength > 128 {
		return IgnorePrefixLength, false
	}
	p := netip.PrefixFrom(o.Prefix.WithZone(""), int(o.PrefixLength)).Masked()
	switch {
	case p.Addr().IsLinkLocalUnicast():
		return IgnorePrefixLinkLocal, false
	case p.Addr().IsMulticast() || p.Addr().IsLoopback() || p.Addr().IsUnspecified():
		return IgnorePrefixNotUnicast, false
	case o.PreferredLifetime > o.ValidLifetime:
		return IgnorePreferredOver, false
	}
	old, known := s.prefixes[p]
	if known && old.Autonomous && old.Valid.After(now) {
		if !o.AutonomousAddressConfiguration {
			return "", false
		}
		valid := twoHourRule(o.ValidLifetime, learned.Remaining(old.Valid, now))
		routers := old.Routers
		if o.ValidLifetime > 0 {
			routers = withRouter(routers, src)
		}
		s.prefixes[p] = learned.Prefix{
			Prefix:     p,
			Valid:      learned.Deadline(now, valid),
			Preferred:  learned.Deadline(now, min(o.PreferredLifetime, valid)),
			OnLink:     o.OnLink,
			Autonomous: true,
			Routers:    routers,
		}
		return "", false
	}
	if o.ValidLifetime == 0 {
		delete(s.prefixes, p)
		return "", false
	}
	if !known && len(s.prefixes) >= MaxPrefixes {
		return "", true
	}
	var routers []netip.Addr
	if known {
		routers = old.Routers
	}
	s.prefixes[p] = learned.Prefix{
		Prefix:     p,
		Valid:      learned.Deadline(now, o.ValidLifetime),
		Preferred:  learned.Deadline(now, o.PreferredLifetime),
		OnLink:     o.OnLink,
		Autonomous: o.AutonomousAddressConfiguration,
		Routers:    withRouter(routers, src),
	}
	return "", false
}

// twoHourRule is the valid lifetime an autoconfigured address gets from a
// received one when remaining is what it had left (RFC 4862 5.5.3 e):
// the received lifetime if it is over two hours or over what remains;
// otherwise what remains if that is two hours or less (the option is
// ignored for the valid lifetime); otherwise two hours. That is the
// kernel's max(received, min(remaining, 2h)).
func twoHourRule(received, remaining time.Duration) time.Duration {
	return max(received, min(remaining, minValidLifetime))
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
// servers were first heard in); lifetime 0 removes it (RFC 8106 5.1,
// when expire runs). A new server is added unless the list holds MaxDNS
// already: then ok is false.
func upsertServer(list []learned.Server, sv learned.Server, now time.Time) (_ []learned.Server, ok bool) {
	i := slices.IndexFunc(list, func(e learned.Server) bool { return e.Addr == sv.Addr })
	switch {
	case i >= 0:
		list[i] = sv
	case !sv.Until.After(now): // withdrawing what is not held
	case len(list) >= MaxDNS:
		return list, false
	default:
		list = append(list, sv)
	}
	return list, true
}

// applyRouterAddr takes in the router address of a prefix option with the
// R flag from src: it lives as long as the prefix is valid (RFC 6275 7.2),
// a valid lifetime of 0 withdraws it. It returns false when the address
// was new and the table had no room.
func (s *state) applyRouterAddr(now time.Time, src netip.Addr, o *ndp.PrefixInformation) bool {
	a := o.Router.WithZone("")
	ra := learned.RouterAddr{Addr: a, Router: src, Until: learned.Deadline(now, o.ValidLifetime)}
	i := slices.IndexFunc(s.raddrs, func(e learned.RouterAddr) bool { return e.Addr == a })
	switch {
	case i >= 0:
		s.raddrs[i] = ra
	case !ra.Until.After(now): // withdrawing what is not held
	case len(s.raddrs) >= MaxRouterAddrs:
		return false
	default:
		s.raddrs = append(s.raddrs, ra)
	}
	return true
}

// upsertDomain is upsertServer for search domains, limited to MaxDNSSL.
func upsertDomain(list []domain, d domain, now time.Time) (_ []domain, ok bool) {
	i := slices.IndexFunc(list, func(e domain) bool { return e.name == d.name })
	switch {
	case i >= 0:
		list[i] = d
	case !d.until.After(now):
	case len(list) >= MaxDNSSL:
		return list, false
	default:
		list = append(list, d)
	}
	return list, true
}

// expire drops what has passed its deadline at now and reports whether
// the snapshot changed: something dropped, or a prefix deprecated. An
// entry whose deadline is now is gone: a lifetime of 0 (a removal) lands
// exactly there.
func (s *state) expire(now time.Time) bool {
	n := len(s.prefixes) + len(s.routers) + len(s.dns) + len(s.dnssl) + len(s.raddrs)
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
	s.raddrs = slices.DeleteFunc(s.raddrs, func(e learned.RouterAddr) bool { return !e.Until.After(now) })
	return deprecated || n != len(s.prefixes)+len(s.routers)+len(s.dns)+len(s.dnssl)+len(s.raddrs)
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
	for _, e := range s.raddrs {
		consider(e.Until)
	}
	return t
}

// snapshot is the state as the reconciler gets it: copies, in a stable
// order (routers best first, as a host would pick them).
func (s *state) snapshot(ifname string) learned.RA {
	ra := learned.RA{Interface: ifname, MTU: s.mtu}
	for _, p := range s.prefixes {
		p.Routers = slices.Clone(p.Routers)
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
	ra.RouterAddrs = slices.Clone(s.raddrs)
	for _, d := range s.dnssl {
		ra.DNSSL = append(ra.DNSSL, d.name)
	}
	return ra
}
