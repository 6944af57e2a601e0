package loader

// Data-plane tests of the 6in4 paths (IPv6 in IPv4, protocol 41):
// BPF_PROG_TEST_RUN of xdpr_main and of the TC programs in the tunnel
// lab of tunnel_dataplane_test.go, plus 6in4 tunnel netdevs. Expected
// frames come from the models below, written from RFC 4213 and RFC 4443,
// not from the code under test.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// 6in4 tunnels of the lab: s0 to a broker behind wan0 (resolved next hop),
// s1 to one whose next hop is never resolved. Local: the router's WAN
// IPv4 address.
var lab6in4 = []struct {
	name, route, remote string
	mtu, ttl            int
}{
	{"s0", "2001:db8:470::/48", "198.51.100.1", 1480, 64},
	{"s1", "2001:db8:471::/48", "203.0.113.1", 1480, 255},
}

var (
	local6in4 = netip.MustParseAddr("10.0.2.1")
	// What control gives the filter for the lab router: lan0's prefix
	// and the router's own addresses.
	labSourceFilter6 = []SourceNet{
		{netip.MustParsePrefix("2001:db8:1::/64"), SourceLAN},
		{netip.MustParsePrefix("2001:db8:1::1/128"), SourceLocal},
		{netip.MustParsePrefix("2001:db8:2::1/128"), SourceLocal},
	}
)

// broker6 is an IPv6 host behind the s0 broker; lanHost6 the host on lan0.
const (
	broker6  = "2001:db8:900::5"
	lanHost6 = "2001:db8:1::2"
)

func newSixInFourLab(t testing.TB) (*routerLab, map[string]int) {
	rl, idx := newTunnelRouterLab(t)
	for _, s := range lab6in4 {
		if err := rl.lab.MustExec(rl.ns,
			[]string{"ip", "link", "add", s.name, "type", "ifb"},
			[]string{"sysctl", "-qw", "net.ipv6.conf." + s.name + ".forwarding=1"},
			[]string{"ip", "link", "set", s.name, "mtu", fmt.Sprint(s.mtu), "up"},
			[]string{"ip", "-6", "route", "add", s.route, "dev", s.name}); err != nil {
			t.Fatal(err)
		}
	}
	d := &Dataplane{maps: *rl.maps}
	err := rl.lab.Do(rl.ns, func() error {
		for _, s := range lab6in4 {
			ifc, err := net.InterfaceByName(s.name)
			if err != nil {
				return err
			}
			idx[s.name] = ifc.Index
			err = d.PutTunnel(Tunnel{Name: s.name, Mode: Mode6in4, Ifindex: ifc.Index, MAC: ifc.HardwareAddr,
				Local: local6in4, Remote: netip.MustParseAddr(s.remote), MTU: s.mtu, HopLimit: s.ttl})
			if err != nil {
				return err
			}
		}
		return d.SetTunnelSourceFilter(append(append([]SourceNet{}, labSourceFilter...), labSourceFilter6...))
	})
	if err != nil {
		t.Fatal(err)
	}
	return rl, idx
}

// model6in4Encap is what the WAN sends for the IPv6 packet in frame: an
// outer IPv4 header (RFC 4213 3.5) with TOS = inner traffic class, ID 0, DF,
// the tunnel's TTL, protocol 41, from local to remote; the inner hop
// limit less one; Ethernet padding dropped.
func model6in4Encap(frame []byte, remote string, ttl uint8) []byte {
	wan := labIfaceByName("wan0")
	n := 40 + int(binary.BigEndian.Uint16(frame[18:20]))
	inner := bytes.Clone(frame[14 : 14+n])
	inner[7]--
	ip := make([]byte, 20)
	ip[0] = 0x45
	ip[1] = inner[0]<<4 | inner[1]>>4
	binary.BigEndian.PutUint16(ip[2:], uint16(20+n))
	ip[6] = 0x40
	ip[8], ip[9] = ttl, 41
	l, r := local6in4.As4(), netip.MustParseAddr(remote).As4()
	copy(ip[12:], l[:])
	copy(ip[16:], r[:])
	fixIPv4Header(ip)
	out := append(append(append([]byte{}, mustMAC(wan.peerMAC)...), mustMAC(wan.mac)...), 0x08, 0x00)
	return append(append(out, ip...), inner...)
}

// sixInFour wraps the IPv6 packet of frame in IPv4 from remote to local
// with TOS tos, as a broker sends it to the router's WAN.
func sixInFour(frame []byte, remote, local string, tos uint8) []byte {
	n := 40 + int(binary.BigEndian.Uint16(frame[18:20]))
	inner := frame[14:min(len(frame), 14+n)]
	ip := make([]byte, 20)
	ip[0], ip[1] = 0x45, tos
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(inner)))
	binary.BigEndian.PutUint16(ip[4:], 0x3344)
	ip[8], ip[9] = 57, 41
	r, l := netip.MustParseAddr(remote).As4(), netip.MustParseAddr(local).As4()
	copy(ip[12:], r[:])
	copy(ip[16:], l[:])
	fixIPv4Header(ip)
	out := append(append(append([]byte{}, mustMAC(wanMAC)...), mustMAC(gwMAC)...), 0x08, 0x00)
	return append(append(out, ip...), inner...)
}

// model6in4Decap is what leaves lan0 for a 6in4 frame: the inner packet,
// ECN combined by RFC 6040 (ok false: drop), hop limit less one.
func model6in4Decap(frame []byte) (out []byte, ok bool) {
	lan := labIfaceByName("lan0")
	inner := bytes.Clone(frame[34:])
	inner = inner[:40+int(binary.BigEndian.Uint16(inner[4:6]))]
	tc := inner[0]<<4 | inner[1]>>4
	e := ecn6040[tc&3][frame[15]&3]
	if e < 0 {
		return nil, false
	}
	tc = tc&^3 | byte(e)
	inner[0] = 0x60 | tc>>4
	inner[1] = inner[1]&0x0f | tc<<4
	inner[7]--
	out = append(append(append([]byte{}, mustMAC(lan.peerMAC)...), mustMAC(lan.mac)...), 0x86, 0xdd)
	return append(out, inner...), true
}

// modelPacketTooBig is the ICMPv6 packet-too-big (RFC 4443 3.2) a router
// sends back to the source of frame from routerIP: hop limit 64, quoting
// as much of the packet as fits in 1280 octets.
func modelPacketTooBig(frame []byte, routerIP netip.Addr, mtu int) []byte {
	quote := frame[14 : 14+1280-48]
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(8+len(quote)))
	ip[6], ip[7] = 58, 64
	src := routerIP.As16()
	copy(ip[8:], src[:])
	copy(ip[24:], frame[14+8:14+24])
	icmp := []byte{2, 0, 0, 0}
	icmp = binary.BigEndian.AppendUint32(icmp, uint32(mtu))
	icmp = append(icmp, quote...)
	pseudo := append([]byte{}, ip[8:40]...)
	pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(icmp)))
	pseudo = append(pseudo, 0, 0, 0, 58)
	binary.BigEndian.PutUint16(icmp[2:], rfc1071(append(pseudo, icmp...)))
	out := append(append(append([]byte{}, frame[6:12]...), frame[0:6]...), 0x86, 0xdd)
	return append(append(out, ip...), icmp...)
}

func hopByHop() *layers.IPv6HopByHop {
	return &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{{OptionType: 0x1e, OptionData: make([]byte, 4)}}}
}

func sixInFourCases(t testing.TB) []tunCase {
	remote := lab6in4[0].remote
	local := local6in4.String()
	toBroker := func(dst string, opts ...frameOpt) []byte { return udp6(t, lanHost6, dst, opts...) }
	fromBroker := func(src string, opts ...frameOpt) []byte {
		return udp6(t, src, lanHost6, append([]frameOpt{to(wanMAC), from(gwMAC)}, opts...)...)
	}
	enc := func(name string, f []byte) tunCase {
		return tunCase{name, "lan0", f, xdpRedirect, "tun6in4_encap", model6in4Encap(f, remote, 64)}
	}
	dec := func(name string, inner []byte, tos uint8) tunCase {
		f := sixInFour(inner, remote, local, tos)
		want, ok := model6in4Decap(f)
		if !ok {
			return tunCase{name, "wan0", f, xdpDrop, "drop_tun_ecn", nil}
		}
		return tunCase{name, "wan0", f, xdpRedirect, "tun6in4_decap", want}
	}
	pass := func(name, ingress string, f []byte, counter string) tunCase {
		return tunCase{name, ingress, f, xdpPass, counter, nil}
	}
	drop := func(name string, f []byte, counter string) tunCase {
		return tunCase{name, "wan0", f, xdpDrop, counter, nil}
	}
	big := toBroker("2001:db8:470::9", totalLen(1481))
	routerIP := netip.MustParseAddr("2001:db8:1::1")
	return []tunCase{
		// Encapsulation.
		enc("encap udp", toBroker("2001:db8:470::9")),
		enc("encap tcp", toBroker("2001:db8:470::9", tcp())),
		enc("encap traffic class to tos", toBroker("2001:db8:470::9", ipv6(func(ip *layers.IPv6) { ip.TrafficClass = 0xb9 }))),
		enc("encap at the tunnel mtu", toBroker("2001:db8:470::9", totalLen(1480))),
		enc("encap hop limit 2", toBroker("2001:db8:470::9", ttl(2))),
		enc("encap padded minimum frame", toBroker("2001:db8:470::9", payload(0))),
		{"encap ttl of the tunnel", "lan0", toBroker("2001:db8:471::9"), xdpPass, "pass_no_neigh", nil},
		{"too big answered with packet too big", "lan0", big, xdpRedirect, "tun6in4_icmp_ptb", modelPacketTooBig(big, routerIP, 1480)},
		pass("no packet too big about an icmpv6 error", "lan0",
			set(set(toBroker("2001:db8:470::9", totalLen(1481+8), noL4()), 14+6, 58), 54, 1), "pass_frag_needed"),
		pass("hop limit 1 into the tunnel", "lan0", toBroker("2001:db8:470::9", ttl(1)), "pass_ttl_expired"),
		pass("hop-by-hop options to the slow path", "lan0", toBroker("2001:db8:470::9", ext(hopByHop())), "pass_ipv6_hop_by_hop"),

		// Decapsulation.
		dec("decap udp", fromBroker(broker6), 0),
		dec("decap tcp", fromBroker(broker6, tcp()), 0),
		dec("decap outer ce onto ect(0)", fromBroker(broker6, ipv6(func(ip *layers.IPv6) { ip.TrafficClass = 0x02 })), 0x03),
		dec("decap outer dscp ignored", fromBroker(broker6, ipv6(func(ip *layers.IPv6) { ip.TrafficClass = 0x28 })), 0xb8),
		dec("decap outer ce onto not-ect is dropped", fromBroker(broker6, ipv6(func(ip *layers.IPv6) { ip.TrafficClass = 0 })), 0x03),
		pass("6in4 from an unknown remote", "wan0", sixInFour(fromBroker(broker6), "198.51.100.99", local, 0), "pass_tun6in4_unknown_endpoint"),
		pass("6in4 to another local address", "wan0", sixInFour(fromBroker(broker6), remote, "10.0.2.9", 0), "pass_no_neigh"),
		pass("decap inner hop limit 1", "wan0", sixInFour(fromBroker(broker6, ttl(1)), remote, local, 0), "pass_ttl_expired"),
		pass("decap inner for the router", "wan0", sixInFour(udp6(t, broker6, "2001:db8:1::1", to(wanMAC), from(gwMAC)), remote, local, 0), "pass_local"),
		pass("decap inner link-local source", "wan0", sixInFour(fromBroker("fe80::1"), remote, local, 0), "pass_link_local"),
		pass("decap inner hop-by-hop", "wan0", sixInFour(fromBroker(broker6, ext(hopByHop())), remote, local, 0), "pass_ipv6_hop_by_hop"),
		pass("decap inner not ipv6", "wan0", set(sixInFour(fromBroker(broker6), remote, local, 0), 34, 0x45), "pass_malformed"),
		pass("decap inner longer than the outer", "wan0", set16(sixInFour(fromBroker(broker6), remote, local, 0), 34+4, 200), "pass_truncated"),
		// Outer fragments of a configured pair: the kernel reassembles,
		// the daemon decapsulates (control/reasm); counted apart.
		pass("outer first fragment of 6in4", "wan0", fixIPv4Checksum(set(sixInFour(fromBroker(broker6), remote, local, 0), 14+6, 0x20)), "pass_tun_fragment"),
		pass("outer last fragment of 6in4", "wan0", fixIPv4Checksum(set(sixInFour(fromBroker(broker6), remote, local, 0), 14+6, 0x00, 0xb9)), "pass_tun_fragment"),
		pass("outer fragment of 6in4 from an unknown remote", "wan0",
			fixIPv4Checksum(set(sixInFour(fromBroker(broker6), "198.51.100.99", local, 0), 14+6, 0x20)), "pass_fragment"),
		pass("outer fragment of 6in4 to another local address", "wan0",
			fixIPv4Checksum(set(sixInFour(fromBroker(broker6), remote, "10.0.2.9", 0), 14+6, 0x20)), "pass_fragment"),
		pass("outer fragment of udp from the broker", "wan0",
			fixIPv4Checksum(set(sixInFour(fromBroker(broker6), remote, local, 0), 14+6, 0x20, 0, 57, 17)), "pass_fragment"),
		drop("decap inner source the router's own", sixInFour(fromBroker("2001:db8:2::1"), remote, local, 0), "drop_tun6in4_src_local"),
		drop("decap inner source loopback", sixInFour(fromBroker("::1"), remote, local, 0), "drop_tun6in4_src_local"),
		drop("decap inner source multicast", sixInFour(fromBroker("ff02::1"), remote, local, 0), "drop_tun6in4_src_local"),
		drop("decap inner source a lan host", sixInFour(fromBroker("2001:db8:1::7"), remote, local, 0), "drop_tun6in4_src_lan"),
		dec("decap inner source next to the lan prefix", fromBroker("2001:db8:1:1::7"), 0),
	}
}

func TestTunnel6in4Dataplane(t *testing.T) {
	rl, _ := newSixInFourLab(t)
	for _, c := range sixInFourCases(t) {
		t.Run(c.name, func(t *testing.T) {
			if c.want != nil {
				if err := verifyChecksums(c.want); err != nil {
					t.Fatalf("model output: %v", err)
				}
			}
			wantCounter := rl.counterIndex(t, c.counter)
			err := rl.lab.Do(rl.ns, func() error {
				verdict, out, delta, err := rl.runOnce(c.frame, c.ingress)
				if err != nil {
					return err
				}
				if verdict != c.verdict {
					t.Errorf("verdict %s, want %s", verdictName(verdict), verdictName(c.verdict))
				}
				want := c.want
				if want == nil {
					want = c.frame
				}
				if verdict != xdpDrop && !bytes.Equal(out, want) {
					t.Errorf("output frame differs: %s\n got % x\nwant % x", diffBytes(out, want), out, want)
				}
				if verdict == xdpRedirect {
					if err := verifyChecksums(out); err != nil {
						t.Errorf("output frame: %v", err)
					}
				}
				return rl.checkCounters(delta, wantCounter, len(c.frame))
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// kernelForwarded6 is an IPv6 frame as the kernel's forward path leaves
// it: hop limit lowered.
func kernelForwarded6(frame []byte) []byte {
	f := bytes.Clone(frame)
	f[14+7]--
	return f
}

// TestTunnel6in4FastPathEqualsSlowPath: XDP's encapsulation and the
// tunnel netdev's TC egress program put the same bytes on the wire (from
// the ethertype on: bpf_redirect_neigh writes the MACs), and so do XDP's
// decapsulation and the WAN's TC ingress program followed by the kernel's
// forward path (hop limit less one).
func TestTunnel6in4FastPathEqualsSlowPath(t *testing.T) {
	rl, idx := newSixInFourLab(t)
	progs, err := loadTunnelPrograms(rl.maps)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() { progs.Close() })
	remote, local := lab6in4[0].remote, local6in4.String()
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"udp", udp6(t, lanHost6, "2001:db8:470::9")},
		{"tcp", udp6(t, lanHost6, "2001:db8:470::9", tcp())},
		{"traffic class", udp6(t, lanHost6, "2001:db8:470::9", ipv6(func(ip *layers.IPv6) { ip.TrafficClass = 0x2e }))},
		{"at the tunnel mtu", udp6(t, lanHost6, "2001:db8:470::9", totalLen(1480))},
	} {
		t.Run("encap "+c.name, func(t *testing.T) {
			err := rl.lab.Do(rl.ns, func() error {
				v, fast, _, err := rl.runOnce(c.frame, "lan0")
				if err != nil {
					return err
				}
				if v != xdpRedirect {
					t.Fatalf("XDP verdict %s, want XDP_REDIRECT", verdictName(v))
				}
				tv, slow, err := runTC(progs.XdprTunEgress, kernelForwarded6(c.frame), idx["s0"])
				if err != nil {
					return err
				}
				if tv != tcActRedirect {
					t.Fatalf("TC verdict %d, want TC_ACT_REDIRECT (7)", tv)
				}
				slow = slow[:len(fast)]
				sameAfterMACs(t, fast, slow)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
		t.Run("decap "+c.name, func(t *testing.T) {
			inner := udp6(t, broker6, lanHost6, to(wanMAC), from(gwMAC))
			if c.name == "tcp" {
				inner = udp6(t, broker6, lanHost6, to(wanMAC), from(gwMAC), tcp())
			}
			f := sixInFour(inner, remote, local, 0x01)
			err := rl.lab.Do(rl.ns, func() error {
				v, fast, _, err := rl.runOnce(f, "wan0")
				if err != nil {
					return err
				}
				if v != xdpRedirect {
					t.Fatalf("XDP verdict %s, want XDP_REDIRECT", verdictName(v))
				}
				tv, slow, err := runTC(progs.XdprTunIngress, f, rl.ifindex["wan0"])
				if err != nil {
					return err
				}
				if tv != tcActRedirect {
					t.Fatalf("TC verdict %d, want TC_ACT_REDIRECT (7)", tv)
				}
				slow = kernelForwarded6(slow[:len(fast)])
				sameAfterMACs(t, fast, slow)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTunnel6in4SlowPathChecks: the WAN's TC ingress program decapsulates
// only protocol 41 of a configured pair and drops what XDP drops; an
// ipip6 tunnel's netdev is no 6in4 one.
func TestTunnel6in4SlowPathChecks(t *testing.T) {
	rl, idx := newSixInFourLab(t)
	remote, local := lab6in4[0].remote, local6in4.String()
	from := func(src string) []byte { return udp6(t, src, lanHost6, to(wanMAC), from(gwMAC)) }
	ok := sixInFour(from(broker6), remote, local, 0)
	cases := []tcCase{
		{"configured pair", ok, tcActRedirect, "tc_decap_6in4", nil},
		{"unknown remote", sixInFour(from(broker6), "198.51.100.99", local, 0), tcxNext, "", nil},
		{"other local", sixInFour(from(broker6), remote, "10.0.2.9", 0), tcxNext, "", nil},
		{"bad outer checksum", set(ok, 14+10, 0, 0), tcxNext, "", nil},
		{"outer fragment", fixIPv4Checksum(set(bytes.Clone(ok), 14+6, 0x20)), tcxNext, "", nil},
		{"inner source the router's own", sixInFour(from("2001:db8:2::1"), remote, local, 0), tcActShot, "tc_drop_src6_local", nil},
		{"inner source a lan host", sixInFour(from("2001:db8:1::9"), remote, local, 0), tcActShot, "tc_drop_src6_lan", nil},
		{"inner source multicast", sixInFour(from("ff05::2"), remote, local, 0), tcActShot, "tc_drop_src6_local", nil},
		{"inner not ipv6", set(bytes.Clone(ok), 34, 0x45), tcActShot, "tc_drop_malformed", nil},
	}
	runTCCases(t, rl, idx, "xdpr_tun_ingress", cases)
}
