package control

import (
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
)

// fwConfig is seed 002/003's router: PD for the LANs, a fixed-IPv4 tunnel
// with NAT44, a site-to-site tunnel, pinholes and a port forward.
const fwConfig = `
wan: {interface: wan0, token: "::feed", dhcpv6-pd: {prefix-length-hint: 56}}
lan:
  - {interface: lan0, sla-id: 1, ipv4: 192.168.1.1/24}
  - {interface: lan1, sla-id: 2}
tunnels:
  - {name: fixed, remote: "2404:8e00::feed:140", local: auto, ipv4-address: 203.0.113.7, nat44: true, routes: [0.0.0.0/0]}
  - {name: site, remote: "2001:db8:b::1", local: auto, routes: [10.20.0.0/16]}
firewall:
  allow:
    - {to: "::10", proto: tcp, port: 22, from: "2001:db8:ff::/48", comment: ssh}
    - {to: "2001:db8:99::1", proto: icmpv6}
    - {to: 192.168.1.0/24, from: 10.20.0.0/16}
  forward:
    - {tunnel: fixed, proto: tcp, port: 8080, to: 192.168.1.10, to-port: 80, comment: web}
`

// fwPlan is what the daemon learned: a /56 delegated, the WAN /64, and
// lan0's previous /64 still advertised deprecated.
func fwPlan(t *testing.T) (Inputs, Plan) {
	t.Helper()
	now := time.Now()
	life := func(p string) learned.Prefix {
		return learned.Prefix{Prefix: netip.MustParsePrefix(p), Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour), OnLink: true, Autonomous: true}
	}
	in := Inputs{Config: parse(t, fwConfig), Learned: Learned{
		RA: &learned.RA{Interface: "wan0", Prefixes: []learned.Prefix{life("2001:db8:0:1::/64")},
			Routers: []learned.Router{{Addr: netip.MustParseAddr("fe80::1"), Until: now.Add(time.Hour)}}},
		PD:      &learned.Delegation{Interface: "wan0", Prefixes: []learned.Prefix{life("2001:db8:100::/56")}},
		Retired: map[string][]learned.Prefix{"lan0": {life("2001:db8:200:1::/64")}},
	}}
	return in, NewPlan(in, now)
}

func fwScript(t *testing.T) (string, []string) {
	t.Helper()
	in, plan := fwPlan(t)
	cfg, _ := resolveLearned(in.Config, plan, in.Learned.Remotes)
	rs, pending := desiredRuleset(cfg)
	return rs.script(map[string]CounterValue{"inet/drop_invalid": {Packets: 7, Bytes: 700}}), pending
}

// chainBody returns the rules of one chain of the script.
func chainBody(t *testing.T, script, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)\tchain ` + name + ` \{\n(.*?)\n\t\}`).FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("no chain %s in:\n%s", name, script)
	}
	return m[1]
}

// The generated ruleset says what the defaults promise, in the order that
// makes them hold (established before drops, BCP 38 before accept).
func TestFirewallScript(t *testing.T) {
	s, pending := fwScript(t)
	t.Logf("script:\n%s", s)
	if len(pending) != 1 || !strings.Contains(pending[0], "firewall.allow[1].to: 2001:db8:99::1/128 is in no LAN prefix in force") {
		t.Errorf("pending %q: want allow[1] (outside every LAN prefix) left out", pending)
	}
	// Replaced whole, in one transaction, counters carried over.
	if !strings.HasPrefix(s, "table ip xdprouter\ndelete table ip xdprouter\ntable inet xdprouter\ndelete table inet xdprouter\n") {
		t.Error("script does not start by deleting both tables")
	}
	if !strings.Contains(s, "counter drop_invalid { packets 7 bytes 700 }") {
		t.Error("drop_invalid's previous value is not carried over")
	}
	for _, c := range dropCounters {
		if !strings.Contains(s, "counter "+c+" {") {
			t.Errorf("no counter %s", c)
		}
	}

	nat := chainBody(t, s, "prerouting")
	if !strings.Contains(nat, `iifname "fixed" ip daddr 203.0.113.7 tcp dport 8080 counter name forward_0 dnat to 192.168.1.10:80`) {
		t.Errorf("port forward DNAT missing:\n%s", nat)
	}
	if !strings.Contains(s, `oifname "fixed" snat to 203.0.113.7`) {
		t.Error("NAT44 masquerade missing")
	}

	for _, tc := range []struct {
		chain string
		want  []string // in this order
		not   []string
	}{
		{"wan_prerouting", []string{"fib saddr type local counter name drop_self_spoofed drop",
			"ip saddr { 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4, 240.0.0.0/4 } counter name drop_bogon_src drop",
			"ip6 saddr { ::1, ::ffff:0:0/96, ff00::/8 } counter name drop_bogon_src drop"}, nil},
		{"wan_input", []string{"ct state established,related accept",
			"icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept",
			"mld-listener-query", "ct state invalid counter name drop_invalid drop",
			"icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept",
			"icmpv6 type echo-request limit rate", "counter name drop_icmp_ratelimit drop",
			"ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept",
			"meta l4proto 4 ip6 saddr { 2404:8e00::feed:140, 2001:db8:b::1 } accept",
			"meta l4proto 4 counter name drop_ipip_remote drop", "counter name drop_wan_input drop"}, nil},
		{"lan_forward", []string{"counter name drop_bogon_src drop",
			`iifname "lan0" ip6 saddr != { fe80::/10, 2001:db8:100:1::/64, 2001:db8:200:1::/64 } counter name drop_lan_spoofed drop`,
			`iifname "lan0" ip saddr != 192.168.1.0/24 counter name drop_lan_spoofed drop`,
			`iifname "lan1" ip6 saddr != { fe80::/10, 2001:db8:100:2::/64 } counter name drop_lan_spoofed drop`,
			"ct state invalid counter name drop_invalid drop", "accept comment"},
			[]string{`iifname "lan1" ip saddr`}},
		{"wan_forward", []string{"ct state established,related accept", "ct state invalid counter name drop_invalid drop",
			"ct status dnat accept",
			`oifname { "lan0", "lan1" } ip6 daddr { 2001:db8:100:1::10, 2001:db8:200:1::10, 2001:db8:100:2::10 } ip6 saddr 2001:db8:ff::/48 tcp dport { 22 } counter name allow_0 accept`,
			`oifname { "lan0", "lan1" } ip daddr { 192.168.1.0/24 } ip saddr 10.20.0.0/16 counter name allow_2 accept`,
			"counter name drop_wan_forward drop"},
			[]string{"echo-request", "allow_1"}},
		{"forward", []string{"policy drop;", `iifname { "lan0", "lan1" } jump lan_forward`,
			`iifname { "wan0", "fixed", "site" } jump wan_forward`, "accept comment"}, nil},
		{"input", []string{"policy accept;", `iifname { "wan0", "fixed", "site" } jump wan_input`}, nil},
	} {
		body := chainBody(t, s, tc.chain)
		at := 0
		for _, w := range tc.want {
			i := strings.Index(body[at:], w)
			if i < 0 {
				t.Errorf("chain %s: %q missing or out of order:\n%s", tc.chain, w, body)
				break
			}
			at += i + len(w)
		}
		for _, n := range tc.not {
			if strings.Contains(body, n) {
				t.Errorf("chain %s has %q:\n%s", tc.chain, n, body)
			}
		}
	}
	nftCheck(t, s)
}

// nftCheck has the kernel parse and validate the script without
// committing it (`nft -c`), in a network namespace of its own, and with
// /etc/protocols and /etc/services empty, as on a Debian without netbase
// (a minimal install: nft then knows no protocol name it has no keyword
// for, such as ipip or ipv6-icmp). Where no mount namespace can be made
// (a chroot whose root is no mount point), the files stay as they are.
func nftCheck(t *testing.T, script string) {
	t.Helper()
	nft, err := exec.LookPath("nft")
	if err != nil || os.Geteuid() != 0 {
		t.Log("nft -c skipped: needs nft and root")
		return
	}
	hidden := exec.Command("unshare", "--net", "--mount", "sh", "-c",
		`for f in /etc/protocols /etc/services; do [ -e $f ] && mount --bind /dev/null $f; done; exec "$0" -c -f -`, nft)
	hidden.Stdin = strings.NewReader(script)
	out, err := hidden.CombinedOutput()
	if err != nil && strings.Contains(string(out), "cannot change root filesystem propagation") {
		t.Logf("nft -c with /etc/protocols as it is: no mount namespace here (%s)", strings.TrimSpace(string(out)))
		plain := exec.Command("unshare", "--net", nft, "-c", "-f", "-")
		plain.Stdin = strings.NewReader(script)
		out, err = plain.CombinedOutput()
	}
	if err != nil {
		t.Fatalf("nft -c -f rejects the script: %v\n%s", err, out)
	}
}

// Mode off keeps the NAT table and installs no filter rule, only the
// accept-all chain whose ct expression keeps conntrack tracking; with no
// LAN prefix source at all (no PD, no NPT) IPv6 sources are not checked.
func TestFirewallModes(t *testing.T) {
	off := parse(t, strings.Replace(fwConfig, "firewall:\n  allow:\n    - {to: \"::10\", proto: tcp, port: 22, from: \"2001:db8:ff::/48\", comment: ssh}\n    - {to: \"2001:db8:99::1\", proto: icmpv6}\n    - {to: 192.168.1.0/24, from: 10.20.0.0/16}\n",
		"firewall:\n  mode: \"off\"\n", 1))
	rs, _ := desiredRuleset(off)
	s := rs.script(nil)
	if rs.Firewall != nil || !rs.TrackOnly || strings.Contains(s, " drop") || strings.Contains(s, "policy drop") ||
		!strings.Contains(s, "table inet xdprouter {") || !strings.Contains(s, "ct state invalid counter name ct_invalid") ||
		!strings.Contains(s, "dnat to 192.168.1.10:80") {
		t.Errorf("mode off script:\n%s", s)
	}
	nftCheck(t, s)

	static := parse(t, "wan: {interface: wan0}\nlan: [{interface: lan0, ipv4: 192.168.1.1/24}]\n")
	rs, _ = desiredRuleset(static)
	s = rs.script(nil)
	if strings.Contains(s, "ip6 saddr !=") || !strings.Contains(s, `iifname "lan0" ip saddr != 192.168.1.0/24`) {
		t.Errorf("no IPv6 prefix source: want no IPv6 BCP 38 rule, the IPv4 one kept:\n%s", s)
	}
	nftCheck(t, s)

	// While the delegation is pending, a PD LAN may send from link-local
	// only: nothing global leaves it.
	pd := parse(t, "wan: {interface: wan0, dhcpv6-pd: {}}\nlan: [{interface: lan0}]\n")
	cfg, _ := resolveLearned(pd, NewPlan(Inputs{Config: pd}, time.Now()), nil)
	rs, _ = desiredRuleset(cfg)
	if s = rs.script(nil); !strings.Contains(s, `iifname "lan0" ip6 saddr != { fe80::/10 }`) {
		t.Errorf("pending PD: want only link-local from lan0:\n%s", s)
	}
	nftCheck(t, s)
}
