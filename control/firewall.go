package control

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/xdprouter/xdprouter/control/config"
)

// Ruleset is everything xdprouter keeps in nftables, replaced as a whole
// in one transaction: the NAT table (masquerade, port forwards) and the
// default firewall.
type Ruleset struct {
	NAT      []NATRule
	Forwards []config.PortForward
	// Firewall is nil when firewall.mode is off: no filter table.
	Firewall *FirewallRules
	// TrackOnly (firewall.mode off) keeps conntrack tracking forwarded
	// flows with a table that filters nothing. The attached ports are
	// always gated (the user's own ruleset, present or added later, is
	// honoured), and a gate with no conntrack in the namespace would
	// carry nothing: with no ct expression in any table, the kernel
	// tracks no flow at all.
	TrackOnly bool
}

// FirewallRules is the default firewall with the config and the learned
// prefixes resolved into what the rules match.
type FirewallRules struct {
	// WAN are the interfaces on the outside: the wan and every tunnel
	// netdev (IPv4 from a tunnel is as untrusted as IPv6 from the wan).
	WAN  []string
	LANs []LANSources
	// Remotes are the tunnels' far ends, the only sources of ipip6 the
	// router accepts for itself.
	Remotes []netip.Addr
	// Remotes6in4 are the 6in4 tunnels' far ends (IPv4), the only
	// sources of protocol 41 the router accepts for itself: what arrived
	// fragmented reaches the input hook once the kernel reassembled it,
	// on its way to the daemon's relay (control/reasm).
	Remotes6in4 []netip.Addr
	// VXLAN are the vxlan tunnels' far ends: the kernel decapsulates
	// whatever reaches its UDP port with the VNI, so only their remotes
	// may send to it.
	VXLAN []VXLANPeer
	// Downstream are vxlan tunnels to peers this router routes prefixes
	// to (a delegation's, or a tunnel with routes): like a LAN they may
	// send from those prefixes only (BCP 38), and unlike a LAN what the
	// outside sends them passes (each peer's own router filters, as an
	// ISP's edge does not for its customers).
	Downstream []LANSources
	Pinholes   []ResolvedPinhole
}

// VXLANPeer is a vxlan tunnel's remote and UDP port.
type VXLANPeer struct {
	Tunnel string
	Remote netip.Addr
	Port   uint16
}

// LANSources is what a LAN may send as source address (BCP 38).
type LANSources struct {
	Interface string
	// IPv6 are its prefixes (always with fe80::/10); nil when the config
	// gives xdprouter no way to know them (no dhcpv6-pd, no npt), and
	// then IPv6 sources on this LAN are not checked against prefixes.
	IPv6 []netip.Prefix
	// IPv4 is its subnet; invalid when lan[].ipv4 is not set (unchecked).
	IPv4 netip.Prefix
}

// ResolvedPinhole is a pinhole with its destination resolved against the
// LAN prefixes in force.
type ResolvedPinhole struct {
	Index int // in firewall.allow
	config.Pinhole
	Dst []netip.Prefix
}

// linkLocal6 is where hosts send from before they have an address and
// to the router itself; it is never forwarded beyond the link (the kernel
// answers "beyond scope"), but it is a LAN's own source.
var linkLocal6 = netip.MustParsePrefix("fe80::/10")

// desiredRuleset is the nftables state for a resolved cfg, and what in
// the firewall section waits for a prefix (pinholes outside every LAN
// prefix in force are left out).
func desiredRuleset(cfg *config.Config) (*Ruleset, []string) {
	rs := &Ruleset{Forwards: slices.Clone(cfg.Firewall.Forward)}
	for _, t := range cfg.Tunnels {
		if t.NAT44 {
			rs.NAT = append(rs.NAT, NATRule{Ifname: t.Name, Addr: t.IPv4Address})
		}
	}
	if !cfg.Firewall.On() {
		rs.TrackOnly = cfg.WAN != nil || len(cfg.LAN) > 0
		return rs, nil
	}
	fw := &FirewallRules{}
	if cfg.WAN != nil {
		fw.WAN = append(fw.WAN, cfg.WAN.Interface)
	}
	carved := map[string][]netip.Prefix{}
	for _, t := range cfg.Tunnels {
		fw.WAN = append(fw.WAN, t.Name)
		// Whole 6in4 never reaches netfilter's input (TC decapsulates a
		// configured pair's); reassembled 6in4 does.
		if t.Mode == "6in4" && t.Remote.IsValid() && !slices.Contains(fw.Remotes6in4, t.Remote) {
			fw.Remotes6in4 = append(fw.Remotes6in4, t.Remote)
		}
		if t.Mode != "6in4" && t.Remote.IsValid() && !slices.Contains(fw.Remotes, t.Remote) {
			fw.Remotes = append(fw.Remotes, t.Remote)
		}
		for _, c := range t.Carved {
			carved[c.LAN] = append(carved[c.LAN], c.Prefix)
		}
	}
	// What arrives by a vxlan tunnel is as untrusted as the WAN's.
	for _, v := range cfg.VXLAN {
		fw.VXLAN = append(fw.VXLAN, VXLANPeer{Tunnel: v.Name, Remote: v.Remote, Port: v.Port})
		if len(v.Routes) > 0 && len(v.Prefixes) == 0 {
			ds := LANSources{Interface: v.Name, IPv6: []netip.Prefix{linkLocal6}}
			if v.Address.IsValid() {
				ds.IPv6 = append(ds.IPv6, v.Address.Masked())
			}
			fw.Downstream = append(fw.Downstream, LANSources{Interface: v.Name, IPv6: append(ds.IPv6, v.Routes...)})
			continue
		}
		fw.WAN = append(fw.WAN, v.Name)
		for _, c := range v.Carved {
			carved[c.LAN] = append(carved[c.LAN], c.Prefix)
		}
	}
	static := cfg.StaticLANPrefixes()
	known := cfg.DynamicLANPrefixes() || len(static) > 0 || len(carved) > 0
	for _, l := range cfg.LAN {
		ls := LANSources{Interface: l.Interface}
		if l.IPv4.IsValid() {
			ls.IPv4 = l.IPv4.Masked()
		}
		if known {
			ls.IPv6 = []netip.Prefix{linkLocal6}
			ls.IPv6 = appendNew(ls.IPv6, cfg.Firewall.LearnedLAN[l.Interface]...)
			// An npt inside prefix is on the inside, but the config does
			// not say behind which LAN: every LAN may use it.
			ls.IPv6 = appendNew(ls.IPv6, static...)
			// A tunnel's fixed prefixes are carved per LAN.
			ls.IPv6 = appendNew(ls.IPv6, carved[l.Interface]...)
		}
		fw.LANs = append(fw.LANs, ls)
	}
	var lan6 []netip.Prefix
	for _, l := range fw.LANs {
		for _, q := range l.IPv6 {
			if q != linkLocal6 {
				lan6 = appendNew(lan6, q)
			}
		}
	}
	var pending []string
	for i, p := range cfg.Firewall.Allow {
		rp, why := resolvePinhole(i, p, lan6, known)
		if why != "" {
			pending = append(pending, fmt.Sprintf("firewall.allow[%d].to: %s; not installed", i, why))
			continue
		}
		fw.Pinholes = append(fw.Pinholes, rp)
	}
	rs.Firewall = fw
	return rs, pending
}

// resolvePinhole turns a pinhole's destination into prefixes: an
// interface identifier becomes that host in every LAN /64 in force; an
// IPv6 address must lie in a LAN prefix in force when xdprouter knows
// them, so a pinhole never opens what is not behind a LAN. lan6 are the
// LANs' IPv6 prefixes in force, link-local aside.
func resolvePinhole(i int, p config.Pinhole, lan6 []netip.Prefix, known bool) (ResolvedPinhole, string) {
	rp := ResolvedPinhole{Index: i, Pinhole: p}
	switch {
	case p.ToIID.IsValid():
		for _, q := range lan6 {
			if q.Bits() == 64 {
				rp.Dst = appendNew(rp.Dst, netip.PrefixFrom(withIID(q, p.ToIID), 128))
			}
		}
		if len(rp.Dst) == 0 {
			return rp, fmt.Sprintf("the interface identifier %s waits for a LAN /64", p.ToIID)
		}
	case p.IPv4() || !known:
		rp.Dst = []netip.Prefix{p.To}
	default:
		for _, q := range lan6 {
			if p.To.Bits() >= q.Bits() && q.Contains(p.To.Addr()) {
				rp.Dst = []netip.Prefix{p.To}
				return rp, ""
			}
		}
		return rp, fmt.Sprintf("%s is in no LAN prefix in force (%s)", p.To, prefixList(lan6))
	}
	return rp, ""
}

// learnedLAN6 is each LAN's IPv6 prefixes under the plan: the current
// /64 and those still advertised deprecated.
func learnedLAN6(p Plan) map[string][]netip.Prefix {
	out := map[string][]netip.Prefix{}
	for _, l := range p.LANs {
		if l.Prefix.Prefix.IsValid() {
			out[l.Interface] = append(out[l.Interface], l.Prefix.Prefix.Masked())
		}
		for _, r := range l.Retired {
			out[l.Interface] = append(out[l.Interface], r.Prefix.Masked())
		}
	}
	return out
}

func appendNew(ps []netip.Prefix, add ...netip.Prefix) []netip.Prefix {
	for _, p := range add {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return ps
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none yet"
	}
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ", "
		}
		s += p.String()
	}
	return s
}

// RulesetFor is the nftables state a reconcile pass over in (under its
// plan p) puts in force, and what of the firewall waits for a prefix.
func RulesetFor(in Inputs, p Plan) (*Ruleset, []string) {
	if in.Config == nil {
		return nil, nil
	}
	cfg, _ := resolveLearned(in.Config, p, in.Learned.Remotes)
	return desiredRuleset(cfg)
}

// Script is the nft input that puts rs in force (counters from zero).
func (rs *Ruleset) Script() string { return rs.script(nil) }
