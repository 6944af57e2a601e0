package lab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/loader/benchprog"
	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// The differential lab (issue 12, item 5; DESIGN.md principles 1 and 7):
//
//	lan (host) — router (xdprouter apply) — wan (upstream host, tunnel remote)
//
// Each scenario applies one config (and, for a user's own ruleset, loads
// it first), then runs its table of flows twice under that same state:
//
//   - kernel: XDP_PASS swapped into xdprouter's pinned XDP links on wan0
//     and lan0 (one BPF_LINK_UPDATE each, as the benchmark's kernel
//     baselines do). Everything else apply set up stays: the nftables
//     ruleset, conntrack and its sysctls, the tunnel netdev and xdprouter's
//     TC programs (ipip6 decapsulation at wan0's TC ingress, encapsulation
//     on the tunnel netdev, NPT in TC). That is the slow path principle 1
//     compares the fast path with; the kernel here has no ip6_tunnel, so a
//     router without any xdprouter program could not carry the tunnel at
//     all, and detaching to load the ruleset again by hand would compare
//     against a different router.
//   - xdprouter: the links' own programs back, conntrack flushed, the same
//     flows again (new ephemeral ports, fresh conntrack).
//
// Every flow's outcome is what its receiver observed: a listener that
// accepted and answered, a UDP server that got the datagram (and the
// client the echo), ping, an ICMP error turned into ECONNREFUSED, or a raw
// socket in the receiving namespace that saw the crafted TCP segment. Both
// runs must agree with each other and with the expected outcome.
//
// The WAN host is also the ipip6 tunnel's remote: it reads and writes the
// inner IPv4 packets with a raw IPPROTO_IPIP socket (which also keeps its
// kernel from answering ipip6 with parameter problems), standing in for
// an AFTR: it echoes UDP to dfInternet4 port 7 back into the tunnel, and
// sends the crafted unsolicited and port-forwarded packets.
var (
	dfWANRouter6 = netip.MustParseAddr("2001:db8:f::1")
	dfWANPeer6   = netip.MustParseAddr("2001:db8:f::2")
	dfWANPeer4   = netip.MustParseAddr("100.64.0.2")
	dfLANHost6   = netip.MustParseAddr("2001:db8:1:1::10")  // routed, no translation
	dfLANHostIn6 = netip.MustParseAddr("2001:db8:bbbb::10") // NPT inside
	dfLANHost4   = netip.MustParseAddr("192.168.1.10")
	dfNPTInside  = netip.MustParsePrefix("2001:db8:bbbb::/64")
	dfNPTOutside = netip.MustParsePrefix("2001:db8:aaaa::/64")
	dfFixed4     = netip.MustParseAddr("203.0.113.7")
	dfInternet4  = netip.MustParseAddr("198.51.100.2") // behind the tunnel
	dfSpoof6     = netip.MustParseAddr("2001:db8:bad::10")
	dfSpoof4     = netip.MustParseAddr("10.99.0.5")
	// What the WAN host addresses the LAN host's inside address as.
	dfLANHostOut6 = outsideAddr(dfLANHostIn6, dfNPTInside, dfNPTOutside, "rfc6296")
)

const (
	dfTunnel      = "v4tun"
	dfFwdPort     = 5000 // forwarded on the fixed IPv4 (udp)
	dfFwdToPort   = 5001 // to this port of the LAN host
	dfPinholePort = 2222
	dfEchoPort    = 7  // UDP echo servers
	dfTCPPort     = 80 // TCP servers: read to EOF, answer the byte count
	dfClosedPort  = 9  // nothing listens: port unreachable
	// dfWait is how long a receiver waits before it calls a packet
	// dropped (veth loses nothing; the kernel queues packets while it
	// resolves a neighbour); a TCP connect gets its SYN retransmission.
	dfWait        = time.Second
	dfDialTimeout = 1500 * time.Millisecond
	// dfBulk and dfDatagrams are what an established flow carries, so
	// that the fast path has a flow's worth of packets to take.
	dfBulk      = 256 << 10
	dfDatagrams = 40
	// What the fast path must carry of them at least: the data segments
	// of the bulk (about 180 of 1448 bytes; the ACKs are few, GRO merges
	// the data on the receiver), each echoed datagram after the first
	// exchange confirmed the flow.
	dfBulkSegs = 100
	dfEchoed   = dfDatagrams - 2
)

const (
	delivered = "delivered"
	dropped   = "dropped"
)

// The configs. The default firewall checks IPv6 LAN sources against the
// LAN prefixes it knows (npt inside prefixes here; no PD with apply), so
// routed IPv6 and NPT are separate scenarios under it; with mode off they
// share one.
var (
	dfWANLAN = `wan: {interface: wan0}
lan: [{interface: lan0, ipv4: 192.168.1.1/24}]
`
	dfTunnelCfg = fmt.Sprintf(`tunnels:
  - {name: %s, mode: ipip6, remote: "%s", local: "%s", ipv4-address: %s, nat44: true, routes: [198.51.100.0/24]}
`, dfTunnel, dfWANPeer6, dfWANRouter6, dfFixed4)
	dfNPTCfg = fmt.Sprintf(`npt: [{interface: wan0, inside: "%s", outside: "%s", mode: rfc6296}]
`, dfNPTInside, dfNPTOutside)
	dfForwardCfg = fmt.Sprintf(`  forward: [{tunnel: %s, proto: udp, port: %d, to: %s, to-port: %d, comment: fwd}]
`, dfTunnel, dfFwdPort, dfLANHost4, dfFwdToPort)
)

// dfUserRuleset is the seed authors' firewall (seeds 002/003), as
// iptables-nft would hold it: ip and ip6 forward policy drop, invalid
// dropped, established/related accepted, everything from the LAN
// accepted. Nothing accepts DNAT, so a port forward is dropped.
const dfUserRuleset = `table ip seedfw {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state invalid drop
		ct state established,related accept
		iifname "lan0" accept
	}
}
table ip6 seedfw {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state invalid drop
		ct state established,related accept
		iifname "lan0" accept
	}
}
`

type diffCase struct {
	name string
	want string
	// fwd are data-plane counters that must grow by at least this much
	// in the xdprouter run: the flow's established packets took the fast
	// path.
	fwd map[string]uint64
	// nft is a named counter of xdprouter's firewall that must grow in
	// both runs (the drop was the firewall's, and the rule it should be).
	nft string
	run func(d *diffLab) (string, string) // outcome, detail
}

type diffScenario struct {
	name    string
	config  string
	ruleset string // loaded before apply; "" for none
	cases   []diffCase
}

// TestDifferentialFirewall runs tables of flows through a router with
// xdprouter applied, once with the kernel alone (XDP_PASS in xdprouter's
// links) and once with xdprouter's XDP programs, under the same ruleset:
// xdprouter's default firewall, and a user's own ruleset with firewall
// mode off. Every flow must be delivered or dropped alike in both runs
// and as expected; the established flows must have been carried in XDP.
//
// With the gate off (`xdprouter attach wan0 lan0 --ct-gate off` after
// apply) every unsolicited, INVALID, spoofed and tunnel/NPT inbound case
// fails: the kernel run drops it, the xdprouter run delivers it in XDP.
func TestDifferentialFirewall(t *testing.T) { forEachTCMode(t, testDifferentialFirewall) }

func testDifferentialFirewall(t *testing.T) {
	needRoot(t)
	for _, bin := range []string{"nft", "conntrack"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (make test installs nftables and conntrack): %v", bin, err)
		}
	}
	scenarios := []diffScenario{
		{
			name: "default firewall, routed IPv4/IPv6 and fixed-IPv4 tunnel",
			config: dfWANLAN + dfTunnelCfg + fmt.Sprintf(`firewall:
  allow: [{to: "%s", proto: tcp, port: %d, comment: pinhole}]
`, dfLANHost6, dfPinholePort) + dfForwardCfg,
			cases: append(append(dfRoutedCases(true), dfTunnelCases(true)...),
				diffCase{name: "LAN source outside the LAN subnet, UDP IPv4", want: dropped, nft: control.CtrDropLANSpoofed,
					run: func(d *diffLab) (string, string) {
						return d.udpOneWay(d.lan, dfSpoof4, netip.AddrPortFrom(dfWANPeer4, dfEchoPort))
					}},
				diffCase{name: "pinhole: WAN to LAN TCP IPv6 port 2222", want: delivered, nft: "allow_0", fwd: map[string]uint64{"fwd_ipv6": dfBulkSegs},
					run: func(d *diffLab) (string, string) {
						return d.tcpExchange(d.wan, netip.Addr{}, netip.AddrPortFrom(dfLANHost6, dfPinholePort), dfBulk)
					}},
			),
		},
		{
			name: "default firewall, NPTv6",
			config: dfWANLAN + dfNPTCfg + fmt.Sprintf(`firewall:
  allow: [{to: "::10", proto: tcp, port: %d, comment: pinhole}]
`, dfPinholePort),
			cases: append(dfNPTCases(true),
				diffCase{name: "NPT: LAN source outside the LAN prefixes, UDP IPv6", want: dropped, nft: control.CtrDropLANSpoofed,
					run: func(d *diffLab) (string, string) {
						return d.udpOneWay(d.lan, dfSpoof6, netip.AddrPortFrom(dfWANPeer6, dfEchoPort))
					}},
				diffCase{name: "NPT: pinhole ::10 port 2222 from the WAN", want: delivered, nft: "allow_0", fwd: map[string]uint64{"fwd_npt_dnpt": dfBulkSegs},
					run: func(d *diffLab) (string, string) {
						return d.tcpExchange(d.wan, netip.Addr{}, netip.AddrPortFrom(dfLANHostOut6, dfPinholePort), dfBulk)
					}},
			),
		},
		{
			name:    "user's ruleset (firewall mode off), routed IPv4/IPv6 and fixed-IPv4 tunnel",
			config:  dfWANLAN + dfTunnelCfg + "firewall:\n  mode: \"off\"\n" + dfForwardCfg,
			ruleset: dfUserRuleset,
			cases:   append(dfRoutedCases(false), dfTunnelCases(false)...),
		},
		{
			name:    "user's ruleset (firewall mode off), NPTv6",
			config:  dfWANLAN + dfNPTCfg + "firewall:\n  mode: \"off\"\n",
			ruleset: dfUserRuleset,
			cases:   dfNPTCases(false),
		},
		{
			// NPT and a tunnel on one WAN: xdprouter chains two tcx
			// programs on its ingress (ipip6 decapsulation, DNPT), and
			// each must hand what is not its own to the next one
			// (TCX_NEXT), or the other's slow path never runs.
			name:   "default firewall, NPTv6 and a tunnel on the same WAN",
			config: dfWANLAN + dfTunnelCfg + dfNPTCfg,
			cases: dfPick(append(dfNPTCases(true), dfTunnelCases(true)...),
				"NPT: LAN to WAN UDP, 40 datagrams echoed", "NPT: WAN to LAN UDP, unsolicited",
				"tunnel: LAN to internet UDP, masqueraded, 40 datagrams echoed", "tunnel: decapsulated UDP to a LAN host, unsolicited"),
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runDiffScenario(t, sc)
		})
	}
}

// dfPick returns the cases named, in that order.
func dfPick(cs []diffCase, names ...string) []diffCase {
	var out []diffCase
	for _, n := range names {
		for _, c := range cs {
			if c.name == n {
				out = append(out, c)
			}
		}
	}
	if len(out) != len(names) {
		panic(fmt.Sprintf("dfPick: %d of %d cases found", len(out), len(names)))
	}
	return out
}

// dfRoutedCases are the flows of plain forwarding, IPv4 and IPv6.
func dfRoutedCases(fw bool) []diffCase {
	ap := netip.AddrPortFrom
	nft := func(name string) string {
		if fw {
			return name
		}
		return ""
	}
	var cs []diffCase
	for _, f := range []struct {
		fam, fwd string
		wan, lan netip.Addr
	}{
		{"IPv6", "fwd_ipv6", dfWANPeer6, dfLANHost6},
		{"IPv4", "fwd_ipv4", dfWANPeer4, dfLANHost4},
	} {
		f := f
		cs = append(cs,
			diffCase{name: "LAN to WAN TCP " + f.fam + ", 256 KB and the answer", want: delivered, fwd: map[string]uint64{f.fwd: dfBulkSegs},
				run: func(d *diffLab) (string, string) {
					return d.tcpExchange(d.lan, f.lan, ap(f.wan, dfTCPPort), dfBulk)
				}},
			diffCase{name: "LAN to WAN UDP " + f.fam + ", 40 datagrams echoed", want: delivered, fwd: map[string]uint64{f.fwd: 2 * dfEchoed},
				run: func(d *diffLab) (string, string) {
					return d.udpExchange(d.lan, f.lan, ap(f.wan, dfEchoPort), dfDatagrams)
				}},
			diffCase{name: "related: port unreachable for LAN to WAN UDP " + f.fam, want: delivered,
				run: func(d *diffLab) (string, string) {
					return d.udpRefused(d.lan, f.lan, ap(f.wan, dfClosedPort))
				}},
			diffCase{name: "WAN to LAN TCP SYN " + f.fam + ", unsolicited", want: dropped, nft: nft(control.CtrDropWANForward),
				run: func(d *diffLab) (string, string) {
					return d.tcpExchange(d.wan, netip.Addr{}, ap(f.lan, dfTCPPort), 0)
				}},
			diffCase{name: "WAN to LAN UDP " + f.fam + ", unsolicited", want: dropped, nft: nft(control.CtrDropWANForward),
				run: func(d *diffLab) (string, string) {
					return d.udpOneWay(d.wan, netip.Addr{}, ap(f.lan, dfEchoPort))
				}},
			diffCase{name: "WAN to LAN ping " + f.fam + ", unsolicited", want: dropped, nft: nft(control.CtrDropWANForward),
				run: func(d *diffLab) (string, string) { return d.ping(d.wan, f.lan) }},
			// With nf_conntrack_tcp_loose (default 1) a bare ACK is picked
			// up as a new flow, dropped as unsolicited; a SYN-ACK that
			// answers no SYN is INVALID.
			diffCase{name: "WAN to LAN TCP ACK " + f.fam + " without a connection", want: dropped, nft: nft(control.CtrDropWANForward),
				run: func(d *diffLab) (string, string) {
					return d.rawTCP(d.wan, f.lan, ap(f.wan, 0), ap(f.lan, dfTCPPort), false, true, nil)
				}},
			diffCase{name: "WAN to LAN TCP SYN-ACK " + f.fam + " answering nothing (INVALID)", want: dropped, nft: nft(control.CtrDropInvalid),
				run: func(d *diffLab) (string, string) {
					return d.rawTCP(d.wan, f.lan, ap(f.wan, 0), ap(f.lan, dfTCPPort), true, true, nil)
				}},
		)
	}
	return cs
}

// dfTunnelCases are the flows through the fixed-IPv4 ipip6 tunnel.
func dfTunnelCases(fw bool) []diffCase {
	ap := netip.AddrPortFrom
	fwdWant, fwdNFT := dropped, "" // the user's ruleset accepts no DNAT
	if fw {
		fwdWant, fwdNFT = delivered, "forward_0"
	}
	unsolicited := ""
	if fw {
		unsolicited = control.CtrDropWANForward
	}
	return []diffCase{
		{name: "tunnel: LAN to internet UDP, masqueraded, 40 datagrams echoed", want: delivered,
			fwd: map[string]uint64{"fwd_nat44_snat": dfEchoed, "fwd_nat44_dnat": dfEchoed},
			run: func(d *diffLab) (string, string) {
				return d.udpExchange(d.lan, dfLANHost4, ap(dfInternet4, dfEchoPort), dfDatagrams)
			}},
		{name: "tunnel: decapsulated UDP to a LAN host, unsolicited", want: dropped, nft: unsolicited,
			run: func(d *diffLab) (string, string) {
				return d.tunnelUDP(ap(dfInternet4, 0), ap(dfLANHost4, dfEchoPort))
			}},
		{name: "tunnel: decapsulated TCP SYN to a LAN host, unsolicited", want: dropped, nft: unsolicited,
			run: func(d *diffLab) (string, string) {
				return d.rawTCP(d.wan, dfLANHost4, ap(dfInternet4, 0), ap(dfLANHost4, dfTCPPort), true, false, d.sendIPIP)
			}},
		{name: "tunnel: port forward udp 203.0.113.7:5000 to 192.168.1.10:5001", want: fwdWant, nft: fwdNFT,
			run: func(d *diffLab) (string, string) {
				return d.tunnelUDP(ap(dfInternet4, 0), ap(dfFixed4, dfFwdPort))
			}},
	}
}

// dfNPTCases are the flows through NPTv6 (inside 2001:db8:bbbb::/64,
// outside 2001:db8:aaaa::/64 on wan0).
func dfNPTCases(fw bool) []diffCase {
	ap := netip.AddrPortFrom
	unsolicited := ""
	if fw {
		unsolicited = control.CtrDropWANForward
	}
	invalid := ""
	if fw {
		invalid = control.CtrDropInvalid
	}
	return []diffCase{
		{name: "NPT: LAN to WAN TCP, 256 KB and the answer", want: delivered, fwd: map[string]uint64{"fwd_npt_snpt": dfBulkSegs},
			run: func(d *diffLab) (string, string) {
				return d.tcpExchange(d.lan, dfLANHostIn6, ap(dfWANPeer6, dfTCPPort), dfBulk)
			}},
		{name: "NPT: LAN to WAN UDP, 40 datagrams echoed", want: delivered, fwd: map[string]uint64{"fwd_npt_snpt": dfEchoed, "fwd_npt_dnpt": dfEchoed},
			run: func(d *diffLab) (string, string) {
				return d.udpExchange(d.lan, dfLANHostIn6, ap(dfWANPeer6, dfEchoPort), dfDatagrams)
			}},
		{name: "NPT: related port unreachable for LAN to WAN UDP", want: delivered,
			run: func(d *diffLab) (string, string) {
				return d.udpRefused(d.lan, dfLANHostIn6, ap(dfWANPeer6, dfClosedPort))
			}},
		{name: "NPT: WAN to LAN TCP SYN, unsolicited", want: dropped, nft: unsolicited,
			run: func(d *diffLab) (string, string) {
				return d.tcpExchange(d.wan, netip.Addr{}, ap(dfLANHostOut6, dfTCPPort), 0)
			}},
		{name: "NPT: WAN to LAN UDP, unsolicited", want: dropped, nft: unsolicited,
			run: func(d *diffLab) (string, string) {
				return d.udpOneWay(d.wan, netip.Addr{}, ap(dfLANHostOut6, dfEchoPort))
			}},
		{name: "NPT: WAN to LAN ping, unsolicited", want: dropped, nft: unsolicited,
			run: func(d *diffLab) (string, string) { return d.ping(d.wan, dfLANHostOut6) }},
		{name: "NPT: WAN to LAN TCP SYN-ACK answering nothing (INVALID)", want: dropped, nft: invalid,
			run: func(d *diffLab) (string, string) {
				// Seen at the LAN host with its inside address.
				return d.rawTCP(d.wan, dfLANHostIn6, ap(dfWANPeer6, 0), ap(dfLANHostOut6, dfTCPPort), true, true, nil)
			}},
	}
}

type diffResult struct {
	outcome, detail string
	delta           labkit.Counters
	nftDelta        uint64
}

func runDiffScenario(t *testing.T, sc diffScenario) {
	start := time.Now()
	d := newDiffLab(t)
	ctx := d.ctx
	if sc.ruleset != "" {
		d.nft(t, sc.ruleset)
	}
	path := filepath.Join(d.lab.RunDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(sc.config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("config:\n%s", sc.config)
	mustCLI(t, ctx, d.cli, "apply", "--config", path)
	st := mustStatus(t, ctx, d.cli)
	for _, dev := range []string{"wan0", "lan0"} {
		if i := mustIface(t, st, dev); i.CTGate != "on" {
			t.Fatalf("status: %s has ct_gate %q; the fast path must be gated where a ruleset exists", dev, i.CTGate)
		}
	}
	if progs, err := d.lab.Exec(d.router, "bpftool", "net", "show", "dev", "wan0"); err == nil {
		t.Logf("wan0's programs, in the order they run:\n%s", progs)
	}
	if ruleset, err := d.lab.Exec(d.router, "nft", "list", "ruleset"); err == nil {
		t.Logf("the ruleset both runs share:\n%s", ruleset)
	}

	results := map[string][2]diffResult{}
	for run, name := range []string{"kernel", "xdprouter"} {
		var restore func()
		if name == "kernel" {
			restore = d.useXDPPass(t)
		}
		for _, c := range sc.cases {
			before := d.counters(t)
			nftBefore := d.nftCounter(t, c.nft)
			outcome, detail := c.run(d)
			r := diffResult{outcome: outcome, detail: detail, delta: d.counters(t).Sub(before)}
			r.nftDelta = d.nftCounter(t, c.nft) - nftBefore
			res := results[c.name]
			res[run] = r
			results[c.name] = res
			t.Logf("[%s] %s: %s (%s); xdprouter counters: %s", name, c.name, outcome, detail, r.delta)
		}
		if restore != nil {
			restore()
		}
		if _, err := d.lab.Exec(d.router, "conntrack", "-F"); err != nil {
			t.Fatal(err)
		}
	}

	var summary strings.Builder
	fmt.Fprintf(&summary, "%-78s %-10s %-10s %-10s\n", "flow", "want", "kernel", "xdprouter")
	for _, c := range sc.cases {
		k, x := results[c.name][0], results[c.name][1]
		fmt.Fprintf(&summary, "%-78s %-10s %-10s %-10s\n", c.name, c.want, k.outcome, x.outcome)
		if k.outcome != x.outcome {
			t.Errorf("%s: kernel %s (%s), xdprouter %s (%s): the fast path changed the outcome; xdprouter counters: %s",
				c.name, k.outcome, k.detail, x.outcome, x.detail, x.delta)
		}
		if k.outcome != c.want {
			t.Errorf("%s: kernel %s (%s), want %s", c.name, k.outcome, k.detail, c.want)
		}
		if x.outcome != c.want && k.outcome == x.outcome {
			t.Errorf("%s: xdprouter %s (%s), want %s", c.name, x.outcome, x.detail, c.want)
		}
		// The kernel run had no xdprouter XDP program in the path.
		for name, v := range k.delta {
			if v.Packets != 0 && (strings.HasPrefix(name, "fwd_") || strings.HasPrefix(name, "pass_") || strings.HasPrefix(name, "tun_")) {
				t.Errorf("%s: kernel run: XDP counter %s +%d; XDP_PASS was not in the links", c.name, name, v.Packets)
			}
		}
		for ctr, min := range c.fwd {
			if n := x.delta[ctr].Packets; x.outcome == delivered && n < min {
				t.Errorf("%s: xdprouter run: %s +%d, want >= %d (the established flow carried in XDP); counters: %s",
					c.name, ctr, n, min, x.delta)
			}
		}
		if c.nft != "" {
			for i, r := range []diffResult{k, x} {
				if r.nftDelta == 0 {
					t.Errorf("%s: %s run: firewall counter %s did not grow", c.name, []string{"kernel", "xdprouter"}[i], c.nft)
				}
			}
		}
	}
	t.Logf("outcomes (%v):\n%s", time.Since(start).Round(time.Millisecond), summary.String())
}

// diffLab is one scenario's namespaces, servers and CLI.
type diffLab struct {
	t                *testing.T
	ctx              context.Context
	lab              *netlab.Lab
	lan, router, wan string
	bpffs            string
	cli              labkit.CLI
	ipip             *net.IPConn // the WAN host's ipip6 endpoint

	mu   sync.Mutex
	seen map[string]bool // tokens the UDP servers received
}

func newDiffLab(t *testing.T) *diffLab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	l := labkit.NewLab(t)
	d := &diffLab{t: t, ctx: ctx, lab: l, seen: map[string]bool{}}
	var err error
	for _, ns := range []struct {
		p   *string
		n   string
		fwd bool
	}{{&d.lan, "lan", false}, {&d.router, "router", true}, {&d.wan, "wan", false}} {
		if *ns.p, err = l.AddNS(ns.n, ns.fwd); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Veth(d.lan, "eth0", d.router, "lan0"); err != nil {
		t.Fatal(err)
	}
	if err := l.Veth(d.router, "wan0", d.wan, "eth0"); err != nil {
		t.Fatal(err)
	}
	must := func(ns string, cmds ...string) {
		t.Helper()
		for _, c := range cmds {
			if out, err := l.Exec(ns, strings.Fields(c)...); err != nil {
				t.Fatalf("%s: %s: %v %s", ns, c, err, out)
			}
		}
	}
	// Complete checksums from every sender whose frames XDP forwards as
	// bytes (see labkit.Topology), and no ICMP rate limit on the WAN host
	// (each run asks it for port unreachables).
	must(d.lan, "ethtool -K eth0 tx off",
		"ip addr add 2001:db8:1:1::10/64 dev eth0 nodad", "ip addr add 2001:db8:bbbb::10/64 dev eth0 nodad",
		"ip -6 route add default via 2001:db8:1:1::1", "ip addr add 192.168.1.10/24 dev eth0", "ip route add default via 192.168.1.1",
		"ip addr add 2001:db8:bad::10/128 dev lo", "ip addr add 10.99.0.5/32 dev lo")
	must(d.router, "ethtool -K wan0 tx off",
		"ip addr add 2001:db8:f::1/64 dev wan0 nodad", "ip addr add 100.64.0.1/24 dev wan0",
		"ip -6 route add default via 2001:db8:f::2", "ip route add default via 100.64.0.2",
		"ip addr add 2001:db8:1:1::1/64 dev lan0 nodad", "ip addr add 2001:db8:bbbb::1/64 dev lan0 nodad")
	must(d.wan, "ethtool -K eth0 tx off",
		"ip addr add 2001:db8:f::2/64 dev eth0 nodad", "ip addr add 100.64.0.2/24 dev eth0",
		"ip -6 route add 2001:db8:1::/48 via 2001:db8:f::1", "ip -6 route add 2001:db8:aaaa::/64 via 2001:db8:f::1",
		"ip route add 192.168.1.0/24 via 100.64.0.1",
		"sysctl -qw net.ipv4.icmp_ratelimit=0", "sysctl -qw net.ipv6.icmp.ratelimit=0")
	if d.bpffs, err = l.BPFFS("router"); err != nil {
		t.Fatal(err)
	}
	d.cli = labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: d.router, BPFFS: d.bpffs,
		Socket: filepath.Join(l.RunDir(), "xdprouter.sock")}

	ap := netip.AddrPortFrom
	d.tcpServer(d.wan, ap(netip.IPv6Unspecified(), dfTCPPort))
	d.tcpServer(d.lan, ap(netip.IPv6Unspecified(), dfTCPPort))
	d.tcpServer(d.lan, ap(netip.IPv6Unspecified(), dfPinholePort))
	for _, s := range []struct {
		ns string
		a  netip.AddrPort
	}{
		{d.wan, ap(dfWANPeer6, dfEchoPort)}, {d.wan, ap(dfWANPeer4, dfEchoPort)},
		{d.lan, ap(dfLANHost6, dfEchoPort)}, {d.lan, ap(dfLANHostIn6, dfEchoPort)}, {d.lan, ap(dfLANHost4, dfEchoPort)},
		{d.lan, ap(dfLANHost4, dfFwdToPort)},
	} {
		d.udpServer(s.ns, s.a)
	}
	d.tunnelPeer()
	return d
}

func (d *diffLab) nft(t *testing.T, script string) {
	t.Helper()
	if err := d.lab.NFT(d.router, script); err != nil {
		t.Fatal(err)
	}
}

func (d *diffLab) counters(t *testing.T) labkit.Counters {
	t.Helper()
	return mustCounters(t, d.ctx, d.cli)
}

// nftCounter reads a named counter of xdprouter's tables; 0 for "".
func (d *diffLab) nftCounter(t *testing.T, name string) uint64 {
	t.Helper()
	if name == "" {
		return 0
	}
	var st *control.FirewallStatus
	if err := d.lab.Do(d.router, func() error {
		st = control.ReadFirewall()
		return nil
	}); err != nil || st == nil || st.Error != "" {
		t.Fatalf("read the firewall: %v %+v", err, st)
	}
	for _, c := range st.Counters {
		if c.Name == name {
			return c.Packets
		}
	}
	t.Fatalf("no firewall counter %q in %+v", name, st.Counters)
	return 0
}

// useXDPPass swaps an XDP_PASS program into xdprouter's pinned XDP links
// of wan0 and lan0 (benchprog's swappable links, as the benchmark's kernel
// baselines do) and returns what swaps the links' own programs back.
func (d *diffLab) useXDPPass(t *testing.T) func() {
	t.Helper()
	pass, err := benchprog.NewPass()
	if err != nil {
		t.Fatal(err)
	}
	var links []*benchprog.Swappable
	restore := func() {
		for _, l := range links {
			if err := l.Close(); err != nil { // puts the own program back
				t.Errorf("put xdprouter's program back: %v", err)
			}
		}
		links = nil
		pass.Close()
	}
	for _, dev := range []string{"wan0", "lan0"} {
		var idx int
		if err := d.lab.Do(d.router, func() error {
			ifc, err := net.InterfaceByName(dev)
			if err == nil {
				idx = ifc.Index
			}
			return err
		}); err != nil {
			restore()
			t.Fatal(err)
		}
		l, err := benchprog.OpenSwappable(loader.XDPLinkPin(d.bpffs, idx))
		if err != nil {
			restore()
			t.Fatalf("open %s's XDP link: %v", dev, err)
		}
		links = append(links, l)
		if err := l.UsePass(pass); err != nil {
			restore()
			t.Fatalf("swap XDP_PASS into %s's link: %v", dev, err)
		}
	}
	t.Cleanup(func() {
		if links != nil {
			restore()
		}
	})
	return restore
}

func token() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "df-" + hex.EncodeToString(b)
}

func (d *diffLab) saw(tok string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[tok]
}

func (d *diffLab) waitSeen(tok string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if d.saw(tok) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d.saw(tok)
}

// tcpServer accepts on addr in ns: reads to EOF, answers the byte count.
func (d *diffLab) tcpServer(ns string, addr netip.AddrPort) {
	d.t.Helper()
	var ln net.Listener
	if err := d.lab.Do(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr.String())
		return err
	}); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				n, _ := io.Copy(io.Discard, c)
				fmt.Fprintf(c, "%d\n", n)
			}()
		}
	}()
}

// udpServer records every datagram's payload as seen and echoes it.
func (d *diffLab) udpServer(ns string, addr netip.AddrPort) {
	d.t.Helper()
	var pc net.PacketConn
	if err := d.lab.Do(ns, func() (err error) {
		pc, err = net.ListenPacket("udp", addr.String())
		return err
	}); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			d.mu.Lock()
			d.seen[string(buf[:n])] = true
			d.mu.Unlock()
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// tunnelPeer opens the WAN host's ipip6 endpoint and echoes UDP to
// dfInternet4 port 7 back through the tunnel (the AFTR's part).
func (d *diffLab) tunnelPeer() {
	d.t.Helper()
	if err := d.lab.Do(d.wan, func() (err error) {
		d.ipip, err = net.ListenIP("ip6:4", &net.IPAddr{IP: dfWANPeer6.AsSlice()})
		return err
	}); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { d.ipip.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := d.ipip.ReadFrom(buf)
			if err != nil {
				return
			}
			p := gopacket.NewPacket(buf[:n], layers.LayerTypeIPv4, gopacket.Default)
			ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if ip == nil || udp == nil || !ip.DstIP.Equal(dfInternet4.AsSlice()) || udp.DstPort != dfEchoPort {
				continue
			}
			src, _ := netip.AddrFromSlice(ip.SrcIP)
			reply, err := craftUDP(netip.AddrPortFrom(dfInternet4, dfEchoPort), netip.AddrPortFrom(src.Unmap(), uint16(udp.SrcPort)), udp.Payload)
			if err == nil {
				_ = d.sendIPIP(reply)
			}
		}
	}()
}

// sendIPIP sends an inner IPv4 packet from the tunnel's remote to its
// local address: ipip6, the kernel adds the outer header.
func (d *diffLab) sendIPIP(inner []byte) error {
	_, err := d.ipip.WriteTo(inner, &net.IPAddr{IP: dfWANRouter6.AsSlice()})
	return err
}

func craftUDP(src, dst netip.AddrPort, payload []byte) ([]byte, error) {
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, udp, gopacket.Payload(payload))
	return buf.Bytes(), err
}

// craftTCP is a TCP segment with its checksum, with the IPv4 header
// (whole packet) or without one (for an IPv6 raw socket).
func craftTCP(src, dst netip.AddrPort, syn, ack, withIPv4 bool) ([]byte, error) {
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: mrand.Uint32(), SYN: syn, ACK: ack, Window: 65535}
	if ack {
		tcp.Ack = mrand.Uint32()
	}
	var nl gopacket.SerializableLayer
	if dst.Addr().Is4() {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		nl = ip
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	var err error
	if withIPv4 && nl != nil {
		err = gopacket.SerializeLayers(buf, opts, nl, tcp)
	} else {
		err = gopacket.SerializeLayers(buf, opts, tcp)
	}
	return buf.Bytes(), err
}

func ephemeral() uint16 { return uint16(40000 + mrand.IntN(20000)) }

// tcpExchange connects from ns (from src when valid) to dst, sends size
// bytes, half-closes and reads the server's count: delivered when it
// matches, dropped when the connection timed out.
func (d *diffLab) tcpExchange(ns string, src netip.Addr, dst netip.AddrPort, size int) (string, string) {
	var conn net.Conn
	err := d.lab.Do(ns, func() (err error) {
		dl := net.Dialer{Timeout: dfDialTimeout}
		if src.IsValid() {
			dl.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		conn, err = dl.Dial("tcp", dst.String())
		return err
	})
	if err != nil {
		if isTimeout(err) {
			return dropped, "connect timed out"
		}
		return "error", err.Error()
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(make([]byte, size)); err != nil {
		return "partial", "write: " + err.Error()
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return "partial", "close write: " + err.Error()
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return "partial", "read the answer: " + err.Error()
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(size) {
		return "partial", fmt.Sprintf("server counted %q bytes, sent %d", got, size)
	}
	return delivered, fmt.Sprintf("%d bytes from %s, counted by the server", size, conn.LocalAddr())
}

// udpExchange sends n datagrams from ns (from src) to an echo server at
// dst, one at a time, each waiting for its echo.
func (d *diffLab) udpExchange(ns string, src netip.Addr, dst netip.AddrPort, n int) (string, string) {
	var conn *net.UDPConn
	if err := d.lab.Do(ns, func() (err error) {
		conn, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		return "error", err.Error()
	}
	defer conn.Close()
	sent, echoed := 0, 0
	buf := make([]byte, 2048)
	for i := 0; i < n; i++ {
		tok := token()
		if _, err := conn.Write([]byte(tok)); err != nil {
			return "error", err.Error()
		}
		sent++
		wait := 300 * time.Millisecond
		if i == 0 {
			wait = dfWait
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		for {
			m, err := conn.Read(buf)
			if err != nil {
				break
			}
			if string(buf[:m]) == tok {
				echoed++
				break
			}
		}
		if echoed == 0 {
			break // the first went unanswered: the flow is dropped
		}
	}
	detail := fmt.Sprintf("%d sent from %s, %d echoed", sent, conn.LocalAddr(), echoed)
	switch {
	case echoed == n:
		return delivered, detail
	case echoed == 0:
		return dropped, detail
	}
	return "partial", detail
}

// udpOneWay sends one datagram from ns (from src when valid) to a UDP
// server at dst and watches whether the server got it.
func (d *diffLab) udpOneWay(ns string, src netip.Addr, dst netip.AddrPort) (string, string) {
	tok := token()
	if err := d.lab.Do(ns, func() error {
		var laddr *net.UDPAddr
		if src.IsValid() {
			laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		c, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(tok))
		return err
	}); err != nil {
		return "error", err.Error()
	}
	if d.waitSeen(tok, dfWait) {
		return delivered, "the server got it"
	}
	return dropped, "the server got nothing"
}

// tunnelUDP sends one UDP datagram in ipip6 from the tunnel's remote and
// watches whether a LAN server got it.
func (d *diffLab) tunnelUDP(src, dst netip.AddrPort) (string, string) {
	tok := token()
	pkt, err := craftUDP(netip.AddrPortFrom(src.Addr(), ephemeral()), dst, []byte(tok))
	if err != nil {
		return "error", err.Error()
	}
	if err := d.sendIPIP(pkt); err != nil {
		return "error", err.Error()
	}
	if d.waitSeen(tok, dfWait) {
		return delivered, "the LAN server got it"
	}
	return dropped, "the LAN server got nothing"
}

// udpRefused sends a datagram to a closed port and waits for the ICMP
// port unreachable to come back as ECONNREFUSED.
func (d *diffLab) udpRefused(ns string, src netip.Addr, dst netip.AddrPort) (string, string) {
	var conn *net.UDPConn
	if err := d.lab.Do(ns, func() (err error) {
		conn, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		return "error", err.Error()
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(token())); err != nil {
		return "error", err.Error()
	}
	_ = conn.SetReadDeadline(time.Now().Add(dfWait))
	_, err := conn.Read(make([]byte, 64))
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return delivered, "ECONNREFUSED: the port unreachable reached the LAN host"
	case isTimeout(err):
		return dropped, "no ICMP error came back"
	}
	return "error", fmt.Sprintf("read: %v", err)
}

func (d *diffLab) ping(ns string, dst netip.Addr) (string, string) {
	out, err := d.lab.Command(ns, "ping", "-n", "-c", "1", "-W", "1", dst.String()).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return delivered, "echo reply"
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return dropped, "no reply"
	}
	return "error", fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
}

// rawTCP sends a crafted TCP segment from ns (or, with viaTunnel, in
// ipip6 from the tunnel's remote) to dst and watches for it with a raw
// socket at the LAN host, which sees it addressed to seenAs (NPT
// translates the destination).
func (d *diffLab) rawTCP(ns string, seenAs netip.Addr, src, dst netip.AddrPort, syn, ack bool, viaTunnel func([]byte) error) (string, string) {
	src = netip.AddrPortFrom(src.Addr(), ephemeral())
	network := "ip6:tcp"
	if seenAs.Is4() {
		network = "ip4:tcp"
	}
	var watch *net.IPConn
	if err := d.lab.Do(d.lan, func() (err error) {
		watch, err = net.ListenIP(network, &net.IPAddr{IP: seenAs.AsSlice()})
		return err
	}); err != nil {
		return "error", err.Error()
	}
	defer watch.Close()
	// A whole IPv4 packet for the tunnel, the bare segment for a raw
	// socket (the kernel adds the IP header).
	seg, err := craftTCP(src, dst, syn, ack, viaTunnel != nil)
	if err != nil {
		return "error", err.Error()
	}
	if viaTunnel != nil {
		err = viaTunnel(seg)
	} else {
		err = d.lab.Do(ns, func() error {
			rn := "ip6:tcp"
			if dst.Addr().Is4() {
				rn = "ip4:tcp"
			}
			c, err := net.ListenIP(rn, &net.IPAddr{IP: src.Addr().AsSlice()})
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.WriteTo(seg, &net.IPAddr{IP: dst.Addr().AsSlice()})
			return err
		})
	}
	if err != nil {
		return "error", "send: " + err.Error()
	}
	flags := map[[2]bool]string{{true, false}: "SYN", {false, true}: "ACK", {true, true}: "SYN-ACK"}[[2]bool{syn, ack}]
	_ = watch.SetReadDeadline(time.Now().Add(dfWait))
	buf := make([]byte, 2048)
	for {
		n, _, err := watch.ReadFrom(buf)
		if err != nil {
			return dropped, fmt.Sprintf("%s from port %d never reached the LAN host", flags, src.Port())
		}
		if n >= 4 && binary.BigEndian.Uint16(buf[0:]) == src.Port() && binary.BigEndian.Uint16(buf[2:]) == dst.Port() {
			return delivered, fmt.Sprintf("%s from port %d reached the LAN host", flags, src.Port())
		}
	}
}
