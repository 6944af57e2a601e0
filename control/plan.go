package control

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/control/learned"
)

// Plan is what the learned inputs mean for this router at one moment: the
// WAN address and default router, each LAN's /64 and address, what to
// advertise, and where tunnels and NPT `auto` point. It is computed from
// Inputs alone (plus the time), so every dependent piece of one pass sees
// the same prefix.
type Plan struct {
	WANInterface string         `json:"wan_interface,omitempty"` // "" when the config has no WAN
	WANPrefix    learned.Prefix `json:"wan_prefix"`              // the /64 the WAN address is formed in; zero when none
	WANAddr      Addr6          `json:"wan_address"`             // WAN prefix + wan.token; invalid when either is missing
	Gateway      netip.Addr     `json:"gateway"`                 // the default router; invalid when none is live
	// WANRouterAddrs are the WAN routers' global addresses (RA prefix
	// options with the R flag), live ones: the NDP proxy leaves them to
	// their owners.
	WANRouterAddrs []netip.Addr `json:"wan_router_addresses,omitempty"`
	// Delegated are the delegated prefixes; an unreachable route covers
	// each, so /64s no LAN uses are not routed back out of the WAN.
	Delegated []learned.Prefix `json:"delegated,omitempty"`
	LANs      []LANPlan        `json:"lans,omitempty"`
	DNS       []learned.Server `json:"dns,omitempty"` // learned DNS servers (RA RDNSS and DHCPv6)
	DNSSL     []string         `json:"dnssl,omitempty"`
	MTU       int              `json:"mtu,omitempty"` // the WAN RA's MTU option; 0 when none
	// Shared is true when the LAN takes the WAN /64 itself (no PD, NDP
	// proxy lan-neighbor mode on the WAN).
	Shared bool `json:"shared_64,omitempty"`
	// Pending says what waits for an input that has not been learned.
	Pending []string `json:"pending,omitempty"`
	// Carved are the parent prefixes of the config's delegations, which
	// an unreachable route covers as well: a peer number not in the
	// config is not routed back out.
	Carved []netip.Prefix `json:"carved,omitempty"`
}

// Addr6 is an address the plan installs, with its prefix length and
// lifetimes.
type Addr6 struct {
	Interface string       `json:"interface,omitempty"`
	Prefix    netip.Prefix `json:"address"` // e.g. 2001:db8:1:2::feed/64
	Valid     time.Time    `json:"valid_until"`
	Preferred time.Time    `json:"preferred_until"`
}

// IsValid says whether the address is set.
func (a Addr6) IsValid() bool { return a.Prefix.IsValid() }

// LANPlan is one LAN's IPv6 side.
type LANPlan struct {
	Interface string         `json:"interface"`
	Prefix    learned.Prefix `json:"prefix"`  // the LAN /64; zero when none yet
	Addr      Addr6          `json:"address"` // prefix + lan token
	// Retired are earlier prefixes, advertised deprecated until they
	// expire; the router keeps its address in each (preferred lifetime
	// 0), so connections hosts still have on old addresses keep a route.
	Retired      []learned.Prefix `json:"retired,omitempty"`
	RetiredAddrs []Addr6          `json:"retired_addresses,omitempty"`
	// Fixed are the LAN's /64s of the tunnels' fixed prefixes, advertised
	// beside the ISP's with FixedValid and FixedPreferred.
	Fixed []FixedLAN `json:"fixed_prefixes,omitempty"`
}

// FixedLAN is a LAN's /64 of a tunnel's prefix and the router's address
// in it (permanent: the prefix is the router's as long as the config
// says so).
type FixedLAN struct {
	Tunnel string       `json:"tunnel"`
	From   netip.Prefix `json:"from"`   // the tunnel prefix it was carved from
	Prefix netip.Prefix `json:"prefix"` // the /64
	Addr   Addr6        `json:"address"`
}

// Lifetimes LAN RAs give a tunnel's fixed prefixes, radvd's defaults for
// a configured prefix: a host keeps its address a day after the last RA,
// and prefers it for four hours.
const (
	FixedValid     = 24 * time.Hour
	FixedPreferred = 4 * time.Hour
)

// Advert is what one LAN's Router Advertisements carry.
type Advert struct {
	Interface string
	Prefixes  []learned.Prefix // the current one first, then retired ones
	Fixed     []netip.Prefix   // the tunnels' /64s, with FixedValid and FixedPreferred
	DNS       []learned.Server
	DNSSL     []string
	MTU       int
	// RouterLifetime is 0 while the WAN has no default router, so hosts
	// do not send the router what it cannot forward (RFC 7084 G-4).
	RouterLifetime time.Duration
}

// LANRouterLifetime is the router lifetime LAN RAs carry while the WAN
// has a default router (RFC 4861's default, three times the longest
// unsolicited interval).
const LANRouterLifetime = 1800 * time.Second

// Adverts lists what each LAN should advertise under p; a LAN without a
// prefix is absent.
func (p Plan) Adverts() []Advert {
	var out []Advert
	for _, l := range p.LANs {
		if !l.Prefix.Prefix.IsValid() && len(l.Retired) == 0 && len(l.Fixed) == 0 {
			continue
		}
		ad := Advert{Interface: l.Interface, DNS: p.DNS, DNSSL: p.DNSSL, MTU: p.MTU}
		for _, f := range l.Fixed {
			ad.Fixed = append(ad.Fixed, f.Prefix)
		}
		// A tunnel with fixed prefixes is a default route for their
		// sources (its own table), WAN router or not.
		if p.Gateway.IsValid() || len(l.Fixed) > 0 {
			ad.RouterLifetime = LANRouterLifetime
		}
		if l.Prefix.Prefix.IsValid() {
			ad.Prefixes = append(ad.Prefixes, l.Prefix)
		}
		ad.Prefixes = append(ad.Prefixes, l.Retired...)
		out = append(out, ad)
	}
	return out
}

// NewPlan computes the plan for in at now.
func NewPlan(in Inputs, now time.Time) Plan {
	var p Plan
	cfg := in.Config
	if cfg == nil {
		return p
	}
	ra, pd := in.Learned.RA, in.Learned.PD
	// What was learned under another config (another WAN interface, PD
	// since switched off), or recorded by a daemon that had one, is not
	// this config's.
	if cfg.WAN == nil || (ra != nil && ra.Interface != "" && ra.Interface != cfg.WAN.Interface) {
		ra = nil
	}
	if cfg.WAN == nil || cfg.WAN.DHCPv6PD == nil || (pd != nil && pd.Interface != "" && pd.Interface != cfg.WAN.Interface) {
		pd = nil
	}
	if ra != nil {
		p.Gateway = chooseRouter(ra.Routers, now)
		p.WANPrefix = chooseWANPrefix(ra.Prefixes, p.Gateway, in.Learned.WANPrefix, now)
		p.MTU = ra.MTU
		p.DNSSL = ra.DNSSL
		for _, a := range ra.RouterAddrs {
			if a.Until.After(now) {
				p.WANRouterAddrs = append(p.WANRouterAddrs, a.Addr)
			}
		}
		for _, s := range ra.DNS {
			if s.Until.After(now) {
				p.DNS = addServer(p.DNS, s)
			}
		}
	}
	if pd != nil {
		for _, d := range pd.Prefixes {
			if d.Valid.After(now) {
				p.Delegated = append(p.Delegated, d)
			}
		}
		if len(p.Delegated) > 0 {
			for _, a := range pd.DNS {
				p.DNS = addServer(p.DNS, learned.Server{Addr: a, Until: p.Delegated[0].Valid})
			}
		}
	}
	p.Shared = cfg.WAN != nil && cfg.WAN.DHCPv6PD == nil && sharesWAN64(cfg)
	for _, d := range cfg.Delegations {
		p.Carved = append(p.Carved, d.Prefix)
	}

	if w := cfg.WAN; w != nil {
		p.WANInterface = w.Interface
		switch {
		case !p.WANPrefix.Prefix.IsValid():
			p.Pending = append(p.Pending, "wan: no /64 prefix with the autonomous flag heard in a Router Advertisement yet")
		case !w.Token.IsValid():
			p.Pending = append(p.Pending, "wan: no token set, so no WAN address is installed")
		default:
			bits := 64
			if p.Shared {
				// The /64's route belongs to the LAN; the WAN keeps
				// only its own address.
				bits = 128
			}
			p.WANAddr = Addr6{Interface: w.Interface, Prefix: netip.PrefixFrom(withIID(p.WANPrefix.Prefix, w.Token), bits),
				Valid: p.WANPrefix.Valid, Preferred: p.WANPrefix.Preferred}
		}
		if w.DHCPv6PD != nil && len(p.Delegated) == 0 {
			p.Pending = append(p.Pending, "wan.dhcpv6-pd: no prefix delegated yet")
		}
	}

	for i, l := range cfg.LAN {
		lp := LANPlan{Interface: l.Interface}
		switch {
		case len(p.Delegated) > 0:
			d := choosePrefix(p.Delegated, now, func(learned.Prefix) bool { return true })
			sub, err := config.Subnet64(d.Prefix, l.SLAID)
			if err != nil {
				p.Pending = append(p.Pending, fmt.Sprintf("lan[%d].sla-id: %v", i, err))
				break
			}
			if w := p.WANPrefix.Prefix; w.IsValid() && sub == w.Masked() {
				// The delegation was checked against the WAN /64 when
				// it came; an RA may have brought this /64 since. It
				// cannot be both the WAN's link and a LAN.
				p.Pending = append(p.Pending, fmt.Sprintf("lan[%d]: its /64 %s (sla-id %d of %s) is the WAN's own /64; not used on %s",
					i, sub, l.SLAID, d.Prefix, l.Interface))
				break
			}
			lp.Prefix = learned.Prefix{Prefix: sub, Valid: d.Valid, Preferred: d.Preferred, OnLink: true, Autonomous: true}
		case p.Shared && i == 0 && p.WANPrefix.Prefix.IsValid():
			lp.Prefix = p.WANPrefix
			lp.Prefix.OnLink, lp.Prefix.Autonomous = true, true
		case p.Shared && i > 0:
			p.Pending = append(p.Pending, fmt.Sprintf("lan[%d]: the shared WAN /64 goes to lan[0] only", i))
		case cfg.WAN != nil && cfg.WAN.DHCPv6PD != nil:
			p.Pending = append(p.Pending, fmt.Sprintf("lan[%d]: waiting for a delegated prefix", i))
		}
		if lp.Prefix.Prefix.IsValid() {
			lp.Addr = Addr6{Interface: l.Interface, Prefix: netip.PrefixFrom(withIID(lp.Prefix.Prefix, l.Token), 64),
				Valid: lp.Prefix.Valid, Preferred: lp.Prefix.Preferred}
		}
		for _, v := range cfg.RoutedTunnels() {
			for _, c := range v.Carved {
				if c.LAN == l.Interface {
					lp.Fixed = append(lp.Fixed, FixedLAN{Tunnel: v.Name, From: c.From, Prefix: c.Prefix,
						Addr: Addr6{Interface: l.Interface, Prefix: netip.PrefixFrom(withIID(c.Prefix, l.Token), 64),
							Valid: learned.Forever, Preferred: learned.Forever}})
				}
			}
		}
		for _, r := range in.Learned.Retired[l.Interface] {
			if r.Valid.After(now) && r.Prefix != lp.Prefix.Prefix && !slices.ContainsFunc(lp.Fixed, func(f FixedLAN) bool { return f.Prefix == r.Prefix }) {
				lp.Retired = append(lp.Retired, r)
				lp.RetiredAddrs = append(lp.RetiredAddrs, Addr6{Interface: l.Interface,
					Prefix: netip.PrefixFrom(withIID(r.Prefix, l.Token), 64), Valid: r.Valid, Preferred: r.Preferred})
			}
		}
		p.LANs = append(p.LANs, lp)
	}
	return p
}

// retire returns the Retired map for next: every LAN prefix prev
// advertised and next does not is kept, deprecated (preferred now), until
// its valid lifetime ends, but for at most two hours: hosts do not lower
// a valid lifetime below that anyway (RFC 4862 5.5.3 e), and a prefix
// the ISP took back must not linger for days.
func retire(prev, next Plan, now time.Time) map[string][]learned.Prefix {
	out := map[string][]learned.Prefix{}
	cur := map[string]netip.Prefix{}
	fixed := map[string][]netip.Prefix{}
	for _, l := range next.LANs {
		cur[l.Interface] = l.Prefix.Prefix
		for _, f := range l.Fixed {
			fixed[l.Interface] = append(fixed[l.Interface], f.Prefix)
		}
		for _, r := range l.Retired {
			out[l.Interface] = append(out[l.Interface], r)
		}
	}
	for _, l := range prev.LANs {
		old := l.Prefix
		if !old.Prefix.IsValid() || old.Prefix == cur[l.Interface] || !old.Valid.After(now) {
			continue
		}
		if _, still := cur[l.Interface]; !still {
			continue // the LAN itself is gone from the config
		}
		old.Preferred = now
		if limit := now.Add(2 * time.Hour); old.Valid.After(limit) {
			old.Valid = limit
		}
		out[l.Interface] = append(out[l.Interface], old)
	}
	// A tunnel prefix taken out of the config is deprecated the same way
	// (hosts were told it lasts FixedValid; two hours is what RFC 4862
	// lets an RA shorten that to).
	for _, l := range prev.LANs {
		if _, still := cur[l.Interface]; !still {
			continue
		}
		for _, f := range l.Fixed {
			if slices.Contains(fixed[l.Interface], f.Prefix) ||
				slices.ContainsFunc(out[l.Interface], func(r learned.Prefix) bool { return r.Prefix == f.Prefix }) {
				continue
			}
			out[l.Interface] = append(out[l.Interface], learned.Prefix{Prefix: f.Prefix, Valid: now.Add(2 * time.Hour), Preferred: now,
				OnLink: true, Autonomous: true})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// chooseWANPrefix picks the /64 for the WAN address among the valid
// SLAAC prefixes, by these rules in turn:
//
//  1. a prefix the default router in use (gw) advertises: the ISP's
//     ingress filters and RFC 8028 tie the source address to the first
//     hop, and another host on the shared WAN link cannot move the WAN
//     address (and every tunnel's `local: auto`) by advertising a prefix
//     of its own;
//  2. a prefix a router of the prefix in use advertises (when the
//     default router advertises none);
//  3. preferred over deprecated: after a flash renumbering (RFC 8978)
//     the old prefix is deprecated, by its lifetimes or by the tracker
//     when its router advertises a new one without it, so the new one
//     is taken at the next RA;
//  4. the prefix in use (inUse): no change while it is as good as any;
//  5. the order of the list (sorted), so the choice is stable.
//
// Never the remaining lifetimes: they change at every RA.
func chooseWANPrefix(ps []learned.Prefix, gw netip.Addr, inUse netip.Prefix, now time.Time) learned.Prefix {
	var cur []netip.Addr // the routers of the prefix in use
	for _, p := range ps {
		if p.Prefix == inUse && p.Valid.After(now) {
			cur = p.Routers
		}
	}
	var (
		best    learned.Prefix
		bestKey []bool
	)
	for _, p := range ps {
		if !p.Valid.After(now) || !p.Autonomous || p.Prefix.Bits() != 64 || !p.Prefix.Addr().IsGlobalUnicast() {
			continue
		}
		key := []bool{
			gw.IsValid() && slices.Contains(p.Routers, gw),
			slices.ContainsFunc(p.Routers, func(r netip.Addr) bool { return slices.Contains(cur, r) }),
			p.Preferred.After(now),
			p.Prefix == inUse,
		}
		if bestKey == nil || slices.CompareFunc(key, bestKey, func(a, b bool) int {
			switch {
			case a == b:
				return 0
			case a:
				return 1
			}
			return -1
		}) > 0 {
			best, bestKey = p, key
		}
	}
	return best
}

// choosePrefix picks, among the valid prefixes ok accepts, the first
// preferred one in the list's order, else the first deprecated one. The
// order is the tasks' (sorted RA prefixes, leases as delegated), never the
// lifetimes: two prefixes refreshed in turn by two routers, or a new lease
// next to the old, must not swap places at every message, each swap
// renumbering the WAN address, the tunnels and the LANs.
func choosePrefix(ps []learned.Prefix, now time.Time, ok func(learned.Prefix) bool) learned.Prefix {
	var deprecated learned.Prefix
	for _, p := range ps {
		if !p.Valid.After(now) || !ok(p) {
			continue
		}
		if p.Preferred.After(now) {
			return p
		}
		if !deprecated.Prefix.IsValid() {
			deprecated = p
		}
	}
	return deprecated
}

// chooseRouter picks the default router: the highest RFC 4191 preference,
// then the lowest address. Not the remaining lifetime: each RA refreshes
// its own router's, and equal routers would take turns at every RA.
func chooseRouter(rs []learned.Router, now time.Time) netip.Addr {
	live := slices.DeleteFunc(slices.Clone(rs), func(r learned.Router) bool { return !r.Until.After(now) })
	if len(live) == 0 {
		return netip.Addr{}
	}
	return slices.MinFunc(live, func(a, b learned.Router) int {
		return cmp.Or(cmp.Compare(b.Preference, a.Preference), a.Addr.Compare(b.Addr))
	}).Addr
}

func addServer(ss []learned.Server, s learned.Server) []learned.Server {
	for i := range ss {
		if ss[i].Addr == s.Addr {
			if s.Until.After(ss[i].Until) {
				ss[i].Until = s.Until
			}
			return ss
		}
	}
	return append(ss, s)
}

// sharesWAN64 says whether the config asks the LAN to use the WAN's /64:
// an NDP proxy in lan-neighbor mode with `auto` on the WAN interface.
func sharesWAN64(cfg *config.Config) bool {
	for _, n := range cfg.NDPProxy {
		if n.Interface == cfg.WAN.Interface && n.Mode == "lan-neighbor" && n.Auto {
			return true
		}
	}
	return false
}

// withIID is the address made of p's upper 64 bits and iid's lower 64.
func withIID(p netip.Prefix, iid netip.Addr) netip.Addr {
	a, t := p.Masked().Addr().As16(), iid.As16()
	copy(a[8:], t[8:])
	return netip.AddrFrom16(a)
}
