package control

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/xdprouter/xdprouter/control/config"
)

// l4protoIPIP is IP protocol 4 by number: nft resolves a protocol name
// it has no keyword for (ipip, ipv6-icmp) through /etc/protocols, which a
// Debian without netbase lacks ("Could not resolve protocol name"). tcp,
// udp, icmp and icmpv6 are its keywords.
const l4protoIPIP = "4"

// nftTable is the name of xdprouter's nftables tables: "ip xdprouter"
// holds NAT44 (masquerade and port forwards, IPv4 only, where it has
// always been), "inet xdprouter" the firewall for both families.
const nftTable = "xdprouter"

// Firewall counters, one per reason to drop (and per pinhole and port
// forward: allow_<i>, forward_<i>), kept as named counter objects so that
// `nft list counters` and `xdprouter status` show them by name.
const (
	CtrDropInvalid     = "drop_invalid"        // conntrack state invalid, from the WAN side or the LAN
	CtrDropWANInput    = "drop_wan_input"      // unsolicited, to the router from the WAN side
	CtrDropWANForward  = "drop_wan_forward"    // unsolicited, through the router from the WAN side
	CtrDropIPIPRemote  = "drop_ipip_remote"    // ipip6 to the router from other than a tunnel's remote
	CtrDropICMPRate    = "drop_icmp_ratelimit" // echo requests to the router over the rate limit
	CtrDropLANSpoofed  = "drop_lan_spoofed"    // BCP 38: a LAN source outside the LAN's prefixes
	CtrDropBogonSource = "drop_bogon_src"      // unspecified, loopback, multicast, IPv4-mapped, class E sources
	CtrDropSelfSpoofed = "drop_self_spoofed"   // the router's own address as source, from outside
)

var dropCounters = []string{CtrDropInvalid, CtrDropWANInput, CtrDropWANForward, CtrDropIPIPRemote,
	CtrDropICMPRate, CtrDropLANSpoofed, CtrDropBogonSource, CtrDropSelfSpoofed}

// Sources no packet from outside the router may carry. ::/128 is left to
// the forward path only: DAD and MLD send from it to the router itself.
const (
	bogons4 = "{ 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4, 240.0.0.0/4 }"
	bogons6 = "{ ::1, ::ffff:0:0/96, ff00::/8 }"
	// echoRate follows OpenWrt fw4's limit on ICMP to the router.
	echoRate = "limit rate 1000/second burst 1000 packets"
)

// CounterValue is a named counter's content, carried over a replace.
type CounterValue struct{ Packets, Bytes uint64 }

// script is the nft input that makes rs xdprouter's whole nftables state:
// both tables are declared, deleted and made again in one transaction, so
// nothing is ever half-applied and nothing a previous version left stays.
// prev ("family/name") carries counters across the replace.
func (rs *Ruleset) script(prev map[string]CounterValue) string {
	var b strings.Builder
	for _, fam := range []string{"ip", "inet"} {
		fmt.Fprintf(&b, "table %s %s\ndelete table %s %s\n", fam, nftTable, fam, nftTable)
	}
	if rs.empty() {
		return b.String()
	}
	b.WriteString(rs.rules(prev, rs.digest()))
	return b.String()
}

// rules is the tables' definitions; comment (the digest) goes on each.
func (rs *Ruleset) rules(prev map[string]CounterValue, comment string) string {
	var b strings.Builder
	if rs.empty() {
		return ""
	}
	if len(rs.NAT) > 0 || len(rs.Forwards) > 0 {
		rs.natTable(&b, prev, comment)
	}
	if rs.Firewall != nil {
		rs.Firewall.table(&b, prev, comment)
	} else if rs.TrackOnly {
		trackTable(&b, prev, comment)
	}
	return b.String()
}

// CtrTrackInvalid counts what conntrack judged invalid under mode off
// (not dropped: the user's ruleset decides).
const CtrTrackInvalid = "ct_invalid"

// trackTable is "inet xdprouter" under firewall mode off: one forward
// chain that accepts everything and counts conntrack's invalid packets.
// Its ct expression is what makes the kernel track forwarded flows in this
// namespace, so that the conntrack gate finds the established ones.
func trackTable(b *strings.Builder, prev map[string]CounterValue, comment string) {
	fmt.Fprintf(b, "table inet %s {\n", nftTable)
	tableComment(b, comment)
	counterDecl(b, "inet", CtrTrackInvalid, prev)
	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n")
	fmt.Fprintf(b, "\t\tct state invalid counter name %s comment %s\n", CtrTrackInvalid,
		quote("firewall mode off: nothing filtered here; conntrack tracks forwarded flows for the XDP fast path"))
	b.WriteString("\t}\n}\n")
}

func tableComment(b *strings.Builder, comment string) {
	if comment != "" {
		fmt.Fprintf(b, "\tcomment %s\n", quote(comment))
	}
}

func counterDecl(b *strings.Builder, fam, name string, prev map[string]CounterValue) {
	v := prev[fam+"/"+name]
	fmt.Fprintf(b, "\tcounter %s { packets %d bytes %d }\n", name, v.Packets, v.Bytes)
}

func (rs *Ruleset) natTable(b *strings.Builder, prev map[string]CounterValue, comment string) {
	fmt.Fprintf(b, "table ip %s {\n", nftTable)
	tableComment(b, comment)
	for _, f := range rs.Forwards {
		counterDecl(b, "ip", forwardCounter(rs.Forwards, f), prev)
	}
	if len(rs.Forwards) > 0 {
		b.WriteString("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
		for _, f := range rs.Forwards {
			// Only what arrives by the tunnel: the address is the
			// tunnel's, and the forward is for the outside.
			fmt.Fprintf(b, "\t\tiifname %q ip daddr %s %s dport %d counter name %s dnat to %s:%d comment %s\n",
				f.Tunnel, f.Addr, f.Proto, f.Port, forwardCounter(rs.Forwards, f), f.To, f.ToPort,
				quote(fmt.Sprintf("port forward %s %s:%d to %s:%d %s", f.Proto, f.Addr, f.Port, f.To, f.ToPort, f.Comment)))
		}
		b.WriteString("\t}\n")
	}
	if len(rs.NAT) > 0 {
		b.WriteString("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
		for _, r := range rs.NAT {
			fmt.Fprintf(b, "\t\toifname %q snat to %s comment %s\n", r.Ifname, r.Addr, quote("nat44 masquerade to "+r.Addr.String()))
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
}

func forwardCounter(all []config.PortForward, f config.PortForward) string {
	for i := range all {
		if all[i] == f {
			return fmt.Sprintf("forward_%d", i)
		}
	}
	return "forward"
}

// table writes "inet xdprouter". Base chains judge only what enters by
// xdprouter's interfaces; what enters elsewhere is left to other tables
// (a verdict here cannot accept for them anyway: every table's chains
// must accept a packet).
func (fw *FirewallRules) table(b *strings.Builder, prev map[string]CounterValue, comment string) {
	fmt.Fprintf(b, "table inet %s {\n", nftTable)
	tableComment(b, comment)
	for _, c := range dropCounters {
		counterDecl(b, "inet", c, prev)
	}
	for _, p := range fw.Pinholes {
		counterDecl(b, "inet", fmt.Sprintf("allow_%d", p.Index), prev)
	}
	wan, lan := ifnameSet(fw.WAN), ifnameSet(lanNames(fw.LANs))

	// Before conntrack (priority raw): spoofed and bogon sources from
	// outside never create a conntrack entry or reach a NAT rule.
	chain(b, "prerouting", "type filter hook prerouting priority raw; policy accept;",
		when(wan != "", "iifname "+wan+" jump wan_prerouting"))
	chain(b, "wan_prerouting", "",
		rule("fib saddr type local", CtrDropSelfSpoofed, "drop", "the router's own address as source, from outside"),
		rule("ip saddr "+bogons4, CtrDropBogonSource, "drop", "bogon or multicast IPv4 source"),
		rule("ip6 saddr "+bogons6, CtrDropBogonSource, "drop", "loopback, IPv4-mapped or multicast IPv6 source"))

	chain(b, "input", "type filter hook input priority filter; policy accept;",
		when(wan != "", "iifname "+wan+" jump wan_input"))
	fw.wanInput(b)

	down := ifnameSet(lanNames(fw.Downstream))
	chain(b, "forward", "type filter hook forward priority filter; policy drop;",
		when(lan != "", "iifname "+lan+" jump lan_forward"),
		when(wan != "", "iifname "+wan+" jump wan_forward"),
		when(down != "", "iifname "+down+" jump downstream_forward"),
		"accept comment "+quote("entered by an interface xdprouter does not manage: left to other rulesets"))
	fw.lanForward(b)
	fw.wanForward(b, lan, down)
	if down != "" {
		fw.downstreamForward(b)
	}
	b.WriteString("}\n")
}

// wanInput is what the router accepts for itself from the outside
// (RFC 7084, RFC 4890 section 4.4): its flows' replies, neighbour
// discovery and MLD from the link, ICMPv6 errors, rate-limited echo,
// DHCPv6 replies for its PD client and ipip6 and 6in4 from its tunnels'
// remotes.
func (fw *FirewallRules) wanInput(b *strings.Builder) {
	rules := []string{
		"ct state established,related accept comment " + quote("replies to the router's own flows"),
		// ND and MLD are untracked by conntrack; hop limit 255 proves
		// the sender is on the link (RFC 4861 section 6.1).
		"icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept comment " + quote("neighbour discovery from the link"),
		"icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } ip6 saddr fe80::/10 accept comment " + quote("MLD from the link"),
		rule("ct state invalid", CtrDropInvalid, "drop", "conntrack state invalid"),
		"icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept comment " + quote("ICMPv6 errors (RFC 4890 4.4.1)"),
		"icmpv6 type echo-request " + echoRate + " accept comment " + quote("echo request, rate limited"),
		"icmp type echo-request " + echoRate + " accept comment " + quote("IPv4 echo request to a fixed address, rate limited"),
		rule("icmp type echo-request", CtrDropICMPRate, "drop", "IPv4 echo request over the rate"),
		rule("icmpv6 type echo-request", CtrDropICMPRate, "drop", "echo request over the rate"),
		"ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept comment " + quote("DHCPv6 replies to the router's client"),
	}
	if len(fw.Remotes) > 0 {
		rules = append(rules, "meta l4proto "+l4protoIPIP+" ip6 saddr "+addrSet(fw.Remotes)+" accept comment "+quote("ipip6 from the tunnels' remotes"))
	}
	if len(fw.Remotes6in4) > 0 {
		rules = append(rules, "ip protocol 41 ip saddr "+addrSet(fw.Remotes6in4)+" accept comment "+
			quote("6in4 from the tunnels' remotes, reassembled: the daemon decapsulates it"))
	}
	rules = append(rules, fw.vxlanInput()...)
	rules = append(rules,
		rule("meta l4proto "+l4protoIPIP, CtrDropIPIPRemote, "drop", "ipip6 from an unknown remote"),
		rule("", CtrDropWANInput, "drop", "anything else from the WAN side"))
	chain(b, "wan_input", "", rules...)
}

// lanForward is BCP 38 (RFC 2827, RFC 7084 WAA-?): a LAN sends from its
// own prefixes only, and never from a bogon.
func (fw *FirewallRules) lanForward(b *strings.Builder) {
	rules := []string{
		rule("ip saddr "+bogons4, CtrDropBogonSource, "drop", "bogon or multicast IPv4 source"),
		rule("ip6 saddr { ::, ::1, ::ffff:0:0/96, ff00::/8 }", CtrDropBogonSource, "drop", "unspecified, loopback, IPv4-mapped or multicast IPv6 source"),
	}
	for _, l := range fw.LANs {
		if l.IPv6 != nil {
			rules = append(rules, rule(fmt.Sprintf("iifname %q ip6 saddr != %s", l.Interface, prefixSet(l.IPv6)),
				CtrDropLANSpoofed, "drop", "BCP 38: IPv6 source outside "+l.Interface+"'s prefixes"))
		}
		if l.IPv4.IsValid() {
			rules = append(rules, rule(fmt.Sprintf("iifname %q ip saddr != %s", l.Interface, l.IPv4),
				CtrDropLANSpoofed, "drop", "BCP 38: IPv4 source outside "+l.Interface+"'s subnet"))
		}
	}
	rules = append(rules,
		rule("ct state invalid", CtrDropInvalid, "drop", "conntrack state invalid"),
		"accept comment "+quote("LAN to anywhere"))
	chain(b, "lan_forward", "", rules...)
}

// wanForward is RFC 6092's default: only what the LAN started (and the
// ICMP errors conntrack relates to it), port forwards and pinholes.
// Unrelated ICMPv6 errors and unsolicited echo requests are dropped (RFC
// 6092 REC-10 and REC-11 leave the latter to policy; OpenWrt passes them
// rate limited, xdprouter keeps the LAN dark: open one with a pinhole).
func (fw *FirewallRules) wanForward(b *strings.Builder, lan, down string) {
	rules := []string{
		"ct state established,related accept comment " + quote("replies and related ICMP errors of flows from inside"),
		rule("ct state invalid", CtrDropInvalid, "drop", "conntrack state invalid"),
		"ct status dnat accept comment " + quote("port forwards (DNAT in table ip xdprouter)"),
	}
	for _, p := range fw.Pinholes {
		if lan == "" {
			break
		}
		rules = append(rules, pinholeRule(p, lan))
	}
	if down != "" {
		rules = append(rules, "oifname "+down+" accept comment "+quote("to a downstream vxlan peer: its own router filters"))
	}
	rules = append(rules, rule("", CtrDropWANForward, "drop", "unsolicited from the WAN side"))
	chain(b, "wan_forward", "", rules...)
}

// downstreamForward is BCP 38 for the downstream vxlan peers: each sends
// from the prefixes routed to it and its link net only.
func (fw *FirewallRules) downstreamForward(b *strings.Builder) {
	rules := []string{
		rule("ip6 saddr { ::, ::1, ::ffff:0:0/96, ff00::/8 }", CtrDropBogonSource, "drop", "unspecified, loopback, IPv4-mapped or multicast IPv6 source"),
	}
	for _, d := range fw.Downstream {
		rules = append(rules, rule(fmt.Sprintf("iifname %q ip6 saddr != %s", d.Interface, prefixSet(d.IPv6)),
			CtrDropLANSpoofed, "drop", "BCP 38: IPv6 source outside what is routed to "+d.Interface))
	}
	rules = append(rules,
		rule("ct state invalid", CtrDropInvalid, "drop", "conntrack state invalid"),
		"accept comment "+quote("downstream vxlan peer to anywhere"))
	chain(b, "downstream_forward", "", rules...)
}

// vxlanInput lets each vxlan tunnel's remote, and no one else, reach its
// UDP port: the kernel decapsulates whatever arrives there with the VNI.
// One rule per family and port, the remotes in a set (a delegation has
// hundreds).
func (fw *FirewallRules) vxlanInput() []string {
	type key struct {
		fam  string
		port uint16
	}
	var (
		order   []key
		remotes = map[key][]netip.Addr{}
		names   = map[key][]string{}
	)
	for _, v := range fw.VXLAN {
		k := key{"ip6", v.Port}
		if v.Remote.Is4() {
			k.fam = "ip"
		}
		if _, ok := remotes[k]; !ok {
			order = append(order, k)
		}
		if !slices.Contains(remotes[k], v.Remote) {
			remotes[k] = append(remotes[k], v.Remote)
		}
		names[k] = append(names[k], v.Tunnel)
	}
	var out []string
	for _, k := range order {
		what := "vxlan " + strings.Join(names[k], ", ") + " from its remote"
		if len(names[k]) > 1 {
			what = fmt.Sprintf("vxlan from the %d tunnels' remotes (%s, ...)", len(names[k]), names[k][0])
		}
		out = append(out, fmt.Sprintf("%s saddr %s udp dport %d accept comment %s", k.fam, addrSet(remotes[k]), k.port, quote(what)))
	}
	return out
}

func pinholeRule(p ResolvedPinhole, lan string) string {
	var m []string
	m = append(m, "oifname "+lan)
	fam := "ip6"
	if p.IPv4() {
		fam = "ip"
	}
	m = append(m, fam+" daddr "+prefixSet(p.Dst))
	if p.From.IsValid() {
		m = append(m, fam+" saddr "+p.From.String())
	}
	switch p.Proto {
	case "tcp", "udp":
		if len(p.Ports) > 0 {
			ports := make([]string, len(p.Ports))
			for i, r := range p.Ports {
				ports[i] = r.String()
			}
			m = append(m, p.Proto+" dport { "+strings.Join(ports, ", ")+" }")
		} else {
			m = append(m, "meta l4proto "+p.Proto)
		}
	case "icmpv6":
		m = append(m, "meta l4proto icmpv6")
	case "icmp":
		m = append(m, "meta l4proto icmp")
	}
	what := fmt.Sprintf("pinhole allow[%d]", p.Index)
	if p.Comment != "" {
		what += " " + p.Comment
	}
	return rule(strings.Join(m, " "), fmt.Sprintf("allow_%d", p.Index), "accept", what)
}

// rule is one rule: match, a named counter, verdict and the comment that
// `xdprouter status` shows.
func rule(match, counter, verdict, comment string) string {
	r := fmt.Sprintf("counter name %s %s comment %s", counter, verdict, quote(comment))
	if match != "" {
		r = match + " " + r
	}
	return r
}

func when(ok bool, r string) string {
	if !ok {
		return ""
	}
	return r
}

func chain(b *strings.Builder, name, hook string, rules ...string) {
	fmt.Fprintf(b, "\tchain %s {\n", name)
	if hook != "" {
		fmt.Fprintf(b, "\t\t%s\n", hook)
	}
	for _, r := range rules {
		if r != "" {
			fmt.Fprintf(b, "\t\t%s\n", r)
		}
	}
	b.WriteString("\t}\n")
}

func lanNames(ls []LANSources) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Interface)
	}
	return out
}

// ifnameSet is an anonymous set of interface names: matched by name, so
// rules for a tunnel netdev hold before it exists and after it is made
// again.
func ifnameSet(names []string) string {
	if len(names) == 0 {
		return ""
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return "{ " + strings.Join(q, ", ") + " }"
}

func prefixSet(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
		if p.IsSingleIP() {
			s[i] = p.Addr().String()
		}
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

func addrSet(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

// quote makes s an nft string: nft has no escapes, so quotes are dropped.
func quote(s string) string {
	return `"` + strings.TrimSpace(strings.NewReplacer(`"`, "'", "\n", " ", `\`, "/").Replace(s)) + `"`
}
