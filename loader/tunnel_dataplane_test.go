package loader

// Data-plane tests of the ipip6 paths: BPF_PROG_TEST_RUN of xdpr_main in
// the router namespace of dataplane_test.go, with tunnel netdevs (ifb)
// whose routes select the tunnels. Expected frames come from the reference
// model in tunnelmodel_test.go.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// Tunnels of the lab. t0 carries 100.100.0.0/16 to a remote behind wan0;
// t2 the longer 100.100.5.0/24 to another remote; t1 is a NAT44 tunnel;
// t3's remote has no resolved next hop.
type labTunnel struct {
	name, mac string
	route     string
	remote    string
	mtu, hop  int
	nat44     bool
}

var labTunnels = []labTunnel{
	{"t0", "02:00:00:00:0f:00", "100.100.0.0/16", "2001:db8:100::1", 1460, 64, false},
	{"t1", "02:00:00:00:0f:01", "100.101.0.0/16", "2001:db8:100::1:1", 1460, 64, true},
	{"t2", "02:00:00:00:0f:02", "100.100.5.0/24", "2001:db8:100::2", 1400, 32, false},
	{"t3", "02:00:00:00:0f:03", "100.103.0.0/16", "2001:db8:200::1", 1460, 64, false},
}

// The tunnels' local address: the router's WAN address.
var tunLocal = netip.MustParseAddr("2001:db8:2::1")

// labSourceFilter is what control gives the lab router: lan0's subnet, and
// the router's addresses on lan0 and wan0 with lan0's broadcast address.
var labSourceFilter = []SourceNet{
	{netip.MustParsePrefix("10.0.1.0/24"), SourceLAN},
	{netip.MustParsePrefix("10.0.1.1/32"), SourceLocal},
	{netip.MustParsePrefix("10.0.1.255/32"), SourceLocal},
	{netip.MustParsePrefix("10.0.2.1/32"), SourceLocal},
}

func (lt labTunnel) model() modelTunnel {
	wan := labIfaceByName("wan0")
	return modelTunnel{
		local: tunLocal, remote: netip.MustParseAddr(lt.remote), mtu: lt.mtu, hopLimit: uint8(lt.hop),
		nat44: lt.nat44, nextHopMAC: mustMAC(wan.peerMAC), egressMAC: mustMAC(wan.mac),
	}
}

func labTunnelByName(name string) labTunnel {
	for _, lt := range labTunnels {
		if lt.name == name {
			return lt
		}
	}
	panic("no lab tunnel " + name)
}

// newTunnelRouterLab is the router lab plus the tunnels, programmed with
// the loader's own PutTunnel.
func newTunnelRouterLab(t testing.TB) (*routerLab, map[string]int) {
	rl := newRouterLab(t)
	for _, lt := range labTunnels {
		if err := rl.lab.MustExec(rl.ns,
			[]string{"ip", "link", "add", lt.name, "type", "ifb"},
			[]string{"ip", "link", "set", lt.name, "mtu", fmt.Sprint(lt.mtu), "up"},
			[]string{"ip", "route", "add", lt.route, "dev", lt.name}); err != nil {
			t.Fatal(err)
		}
	}
	d := &Dataplane{maps: *rl.maps}
	idx := map[string]int{}
	err := rl.lab.Do(rl.ns, func() error {
		// Decapsulation happens on WAN ports only.
		wan, ok := d.iface(rl.ifindex["wan0"])
		if !ok {
			return fmt.Errorf("wan0 not in xdpr_ifaces")
		}
		wan.Role = routerXdprRoleXDPR_ROLE_WAN
		if err := d.putIface(wan); err != nil {
			return err
		}
		ifc, err := net.InterfaceByName("wan0")
		if err != nil {
			return err
		}
		rl.progs["wan0"] = loadTestProgram(t, ifc, RoleWAN, rl.maps)
		for _, lt := range labTunnels {
			ifc, err := net.InterfaceByName(lt.name)
			if err != nil {
				return err
			}
			idx[lt.name] = ifc.Index
			err = d.PutTunnel(Tunnel{Name: lt.name, Ifindex: ifc.Index, MAC: ifc.HardwareAddr, Local: tunLocal,
				Remote: netip.MustParseAddr(lt.remote), MTU: lt.mtu, HopLimit: lt.hop, NAT44: lt.nat44})
			if err != nil {
				return err
			}
		}
		return d.SetTunnelSourceFilter(labSourceFilter)
	})
	if err != nil {
		t.Fatal(err)
	}
	return rl, idx
}

// tunCase is one tunnel data-plane case; want is computed from the model
// unless the verdict is XDP_PASS or XDP_DROP (then the frame must come out
// unmodified, or not at all).
type tunCase struct {
	name    string
	ingress string
	frame   []byte
	verdict uint32
	counter string
	want    []byte
}

const (
	lanMAC  = "02:00:00:00:01:01"
	hostMAC = "02:00:00:00:01:02"
	wanMAC  = "02:00:00:00:02:01"
	gwMAC   = "02:00:00:00:02:02"
)

// ipip6 wraps the IPv4 packet of frame (from the WAN side) in an outer
// IPv6 header from remote to local with traffic class tc.
func ipip6(frame []byte, remote, local string, tc uint8) []byte {
	inner := frame[14:]
	tot := int(binary.BigEndian.Uint16(inner[2:4]))
	if tot <= len(inner) {
		inner = inner[:tot]
	}
	out := append(append(mustMAC(wanMAC), mustMAC(gwMAC)...), 0x86, 0xdd)
	out = binary.BigEndian.AppendUint32(out, 6<<28|uint32(tc)<<20|0x12345)
	out = binary.BigEndian.AppendUint16(out, uint16(len(inner)))
	out = append(out, 4, 60)
	r, l := netip.MustParseAddr(remote).As16(), netip.MustParseAddr(local).As16()
	out = append(out, r[:]...)
	out = append(out, l[:]...)
	return append(out, inner...)
}

// outerFragment turns an IPv6 frame into one fragment of itself: a
// fragment header (offset off in 8-octet units, M flag more) carrying the
// frame's next header, with the payload after the IPv6 header as the
// fragment's data.
func outerFragment(frame []byte, off int, more bool) []byte {
	out := bytes.Clone(frame[:14+40])
	fh := []byte{frame[14+6], 0, 0, 0, 0, 0, 0x12, 0x34}
	fo := uint16(off << 3)
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(fh[2:], fo)
	out[14+6] = 44
	out = append(append(out, fh...), frame[14+40:]...)
	binary.BigEndian.PutUint16(out[14+4:], uint16(len(out)-14-40))
	return out
}

// tcpSYN builds an IPv4 TCP SYN (or SYN-ACK) from host to dst with the
// given options.
func tcpSYN(t testing.TB, src, dst string, ack bool, opts []layers.TCPOption) []byte {
	f := frameSpec{ip4: &layers.IPv4{Version: 4, TOS: 0, Flags: layers.IPv4DontFragment, TTL: 64,
		Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}}
	b := f.build(t, []frameOpt{tcp(), payload(12)})
	// Rebuild the TCP header with options, by hand: frameSpec has none.
	ip := b[14:34]
	th := make([]byte, 20)
	binary.BigEndian.PutUint16(th[0:], 40001)
	binary.BigEndian.PutUint16(th[2:], 443)
	binary.BigEndian.PutUint32(th[4:], 0x01020304)
	th[13] = 0x02
	if ack {
		binary.BigEndian.PutUint32(th[8:], 0x0a0b0c0d)
		th[13] |= 0x10
	}
	binary.BigEndian.PutUint16(th[14:], 64240)
	for _, o := range opts {
		if o.OptionType == layers.TCPOptionKindNop || o.OptionType == layers.TCPOptionKindEndList {
			th = append(th, byte(o.OptionType))
			continue
		}
		th = append(th, byte(o.OptionType), o.OptionLength)
		th = append(th, o.OptionData...)
	}
	for len(th)%4 != 0 {
		th = append(th, 0)
	}
	th[12] = byte(len(th)/4) << 4
	ipb := bytes.Clone(ip)
	binary.BigEndian.PutUint16(ipb[2:], uint16(20+len(th)))
	fixIPv4Header(ipb)
	pseudo := append(append([]byte{}, ipb[12:20]...), 0, 6, byte(len(th)>>8), byte(len(th)))
	binary.BigEndian.PutUint16(th[16:], rfc1071(append(pseudo, th...)))
	return append(append(bytes.Clone(b[:14]), ipb...), th...)
}

func mssOpt(v uint16) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(v >> 8), byte(v)}}
}

var nop = layers.TCPOption{OptionType: layers.TCPOptionKindNop}

func tunnelCases(t testing.TB) []tunCase {
	fromWAN := []frameOpt{to(wanMAC), from(gwMAC)}
	_ = fromWAN
	t0, t2 := labTunnelByName("t0").model(), labTunnelByName("t2").model()
	lan := labIfaceByName("lan0")
	lanDst, lanSrc := mustMAC(lan.peerMAC), mustMAC(lan.mac)
	remote0 := labTunnelByName("t0").remote
	local := tunLocal.String()

	enc := func(name, dst string, m modelTunnel, opts ...frameOpt) tunCase {
		f := udp4(t, "10.0.1.2", dst, opts...)
		return tunCase{name, "lan0", f, xdpRedirect, "tun_encap", modelEncap(f, m)}
	}
	encF := func(name string, f []byte, m modelTunnel) tunCase {
		return tunCase{name, "lan0", f, xdpRedirect, "tun_encap", modelEncap(f, m)}
	}
	dec := func(name string, inner []byte, tc uint8) tunCase {
		f := ipip6(inner, remote0, local, tc)
		want, ok := modelDecap(f, 1460, lanDst, lanSrc)
		if !ok {
			return tunCase{name, "wan0", f, xdpDrop, "drop_tun_ecn", nil}
		}
		return tunCase{name, "wan0", f, xdpRedirect, "tun_decap", want}
	}
	decF := func(name string, f []byte) tunCase {
		want, _ := modelDecap(f, 1460, lanDst, lanSrc)
		return tunCase{name, "wan0", f, xdpRedirect, "tun_decap", want}
	}
	pass := func(name, ingress string, f []byte, counter string) tunCase {
		return tunCase{name, ingress, f, xdpPass, counter, nil}
	}
	toHost := func(opts ...frameOpt) []byte {
		return udp4(t, "198.51.100.9", "10.0.1.2", append([]frameOpt{to(wanMAC), from(gwMAC)}, opts...)...)
	}
	big := udp4(t, "10.0.1.2", "100.100.1.1", totalLen(1461))
	bigNoDF := udp4(t, "10.0.1.2", "100.100.1.1", totalLen(1461), ipv4(func(ip *layers.IPv4) { ip.Flags = 0 }))
	routerIP := netip.MustParseAddr(strings.Split(lan.v4, "/")[0])
	icmpErr := udp4(t, "10.0.1.2", "100.100.1.1", totalLen(1500), noL4(), ipv4(func(ip *layers.IPv4) { ip.Protocol = layers.IPProtocolICMPv4 }))
	icmpErr = fixIPv4Checksum(set(icmpErr, 34, 3, 1)) // type 3 code 1: an ICMP error

	synOpts := []layers.TCPOption{mssOpt(1460), nop, nop, {OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2}}
	oddOpts := []layers.TCPOption{nop, mssOpt(8960), nop, nop, nop}
	syn := tcpSYN(t, "10.0.1.2", "100.100.1.1", false, synOpts)
	synOdd := tcpSYN(t, "10.0.1.2", "100.100.1.1", false, oddOpts)
	synSmall := tcpSYN(t, "10.0.1.2", "100.100.1.1", false, []layers.TCPOption{mssOpt(1200)})
	synBadOpt := tcpSYN(t, "10.0.1.2", "100.100.1.1", false, []layers.TCPOption{{OptionType: 8, OptionLength: 40, OptionData: make([]byte, 2)}, mssOpt(1460)})
	synAckIn := tcpSYN(t, "198.51.100.9", "10.0.1.2", true, synOpts)
	synAckIn = set(synAckIn, 0, mustMAC(wanMAC)...)
	v4opts := udp4(t, "10.0.1.2", "100.100.1.1", ipv4(func(ip *layers.IPv4) {
		ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	}))
	frag := udp4(t, "10.0.1.2", "100.100.1.1", ipv4(func(ip *layers.IPv4) { ip.Flags = layers.IPv4MoreFragments }))
	inner := toHost(tcp())
	fromSrc := func(src string, opts ...frameOpt) []byte {
		return udp4(t, src, "10.0.1.2", append([]frameOpt{to(wanMAC), from(gwMAC)}, opts...)...)
	}
	dropSrc := func(name, src, counter string, opts ...frameOpt) tunCase {
		return tunCase{name, "wan0", ipip6(fromSrc(src, opts...), remote0, local, 0), xdpDrop, counter, nil}
	}

	cases := []tunCase{
		// Encapsulation.
		enc("encap udp", "100.100.1.1", t0),
		enc("encap tcp", "100.100.1.1", t0, tcp()),
		enc("encap dscp and ecn copied to traffic class", "100.100.1.1", t0, ipv4(func(ip *layers.IPv4) { ip.TOS = 0xb9 })),
		enc("encap icmp (no ports in the flow label)", "100.100.1.1", t0, noL4(), ipv4(func(ip *layers.IPv4) { ip.Protocol = layers.IPProtocolICMPv4 })),
		enc("encap longest prefix wins", "100.100.5.9", t2),
		enc("encap padded minimum frame", "100.100.1.1", t0, payload(0)),
		enc("encap at the tunnel mtu", "100.100.1.1", t0, totalLen(1460)),
		enc("encap ttl 2", "100.100.1.1", t0, ttl(2)),
		encF("mss clamped in a syn", syn, t0),
		encF("mss clamped at an odd offset", synOdd, t0),
		encF("mss below the limit untouched", synSmall, t0),
		encF("syn with malformed options untouched", synBadOpt, t0),
		// DF over the tunnel MTU: ICMP in XDP; no DF: the kernel fragments.
		{"df over tunnel mtu answered with frag needed", "lan0", big, xdpRedirect, "tun_icmp_frag_needed", modelFragNeeded(big, routerIP, 1460)},
		{"df over a smaller tunnel mtu", "lan0", udp4(t, "10.0.1.2", "100.100.5.9", totalLen(1401)), xdpRedirect, "tun_icmp_frag_needed",
			modelFragNeeded(udp4(t, "10.0.1.2", "100.100.5.9", totalLen(1401)), routerIP, 1400)},
		pass("no df over tunnel mtu to the slow path", "lan0", bigNoDF, "pass_tun_oversize"),
		pass("no frag needed about an icmp error", "lan0", icmpErr, "pass_frag_needed"),
		pass("nat44 tunnel to the slow path", "lan0", udp4(t, "10.0.1.2", "100.101.0.9"), "pass_tun_nat44"),
		pass("remote without neighbour", "lan0", udp4(t, "10.0.1.2", "100.103.0.9"), "pass_no_neigh"),
		pass("ipv4 options to the slow path", "lan0", v4opts, "pass_ipv4_options"),
		pass("fragment to the slow path", "lan0", frag, "pass_fragment"),
		pass("ttl 1 into a tunnel", "lan0", udp4(t, "10.0.1.2", "100.100.1.1", ttl(1)), "pass_ttl_expired"),
		pass("truncated inner", "lan0", cut(udp4(t, "10.0.1.2", "100.100.1.1"), 40), "pass_truncated"),
		pass("bad inner checksum", "lan0", set(udp4(t, "10.0.1.2", "100.100.1.1"), offV4Sum, 0, 0), "pass_bad_checksum"),

		// Decapsulation.
		dec("decap udp", toHost(), 0),
		dec("decap tcp", inner, 0),
		dec("decap mss clamped in a syn-ack", synAckIn, 0),
		dec("decap outer ce onto ect(0)", toHost(ipv4(func(ip *layers.IPv4) { ip.TOS = 0x02 })), 0x03),
		dec("decap outer ect(1) onto ect(0)", toHost(ipv4(func(ip *layers.IPv4) { ip.TOS = 0x02 })), 0x01),
		dec("decap outer ect(0) onto not-ect", toHost(), 0x02),
		dec("decap outer dscp ignored", toHost(ipv4(func(ip *layers.IPv4) { ip.TOS = 0x28 })), 0xb8),
		dec("decap outer ce onto not-ect is dropped", toHost(), 0x03),
		decF("decap after a linux encapsulation limit option", withEncapLimit(ipip6(inner, remote0, local, 0), linuxEncapLimit)),
		pass("ipip6 after other destination options is left to the kernel", "wan0",
			withEncapLimit(ipip6(toHost(), remote0, local, 0), []byte{4, 0, 0x1e, 4, 0, 0, 0, 0}), "pass_local"),
		{"ipip6 from an unknown remote", "wan0", ipip6(toHost(), "2001:db8:100::99", local, 0), xdpDrop, "drop_tun_unknown_endpoint", nil},
		{"ipip6 to another local address", "wan0", ipip6(toHost(), remote0, "2001:db8:2::1:1", 0), xdpPass, "pass_no_neigh", nil},
		pass("decap inner ttl 1", "wan0", ipip6(toHost(ttl(1)), remote0, local, 0), "pass_ttl_expired"),
		pass("decap inner for the router", "wan0", ipip6(udp4(t, "198.51.100.9", "10.0.1.1", to(wanMAC), from(gwMAC)), remote0, local, 0), "pass_local"),
		pass("decap inner options", "wan0", ipip6(toHost(ipv4(func(ip *layers.IPv4) {
			ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		})), remote0, local, 0), "pass_ipv4_options"),
		pass("decap inner fragment", "wan0", ipip6(toHost(ipv4(func(ip *layers.IPv4) { ip.Flags = layers.IPv4MoreFragments })), remote0, local, 0), "pass_fragment"),
		pass("decap inner bad checksum", "wan0", ipip6(set(toHost(), offV4Sum, 0, 0), remote0, local, 0), "pass_bad_checksum"),
		pass("decap inner not ipv4", "wan0", ipip6(set(toHost(), offIP, 0x65), remote0, local, 0), "pass_malformed"),
		pass("decap inner longer than the outer payload", "wan0", set16(ipip6(toHost(), remote0, local, 0), offV6Plen, 30), "pass_truncated"),
		pass("decap inner shorter than the outer payload", "wan0", set16(append(ipip6(toHost(), remote0, local, 0), 0, 0, 0, 0), offV6Plen, uint16(len(toHost())-14+4)), "pass_malformed"),
		pass("decap inner truncated to its first bytes", "wan0", set16(cut(ipip6(toHost(), remote0, local, 0), 14+40+12), offV6Plen, 12), "pass_truncated"),
		// Inner sources no tunnel may bring: dropped, as the kernel drops
		// martian and local sources and rp_filter a LAN host's.
		dropSrc("decap inner source loopback", "127.0.0.1", "drop_tun_src_local"),
		dropSrc("decap inner source 0/8", "0.0.0.0", "drop_tun_src_local"),
		dropSrc("decap inner source multicast", "224.0.0.5", "drop_tun_src_local"),
		dropSrc("decap inner source class e", "240.0.0.1", "drop_tun_src_local"),
		dropSrc("decap inner source limited broadcast", "255.255.255.255", "drop_tun_src_local"),
		dropSrc("decap inner source the router's lan address", "10.0.1.1", "drop_tun_src_local"),
		dropSrc("decap inner source the router's wan address", "10.0.2.1", "drop_tun_src_local"),
		dropSrc("decap inner source the lan broadcast", "10.0.1.255", "drop_tun_src_local"),
		dropSrc("decap inner source a lan host", "10.0.1.7", "drop_tun_src_lan"),
		dropSrc("decap inner fragment from a lan host", "10.0.1.7", "drop_tun_src_lan", ipv4(func(ip *layers.IPv4) { ip.Flags = layers.IPv4MoreFragments })),
		dec("decap inner source next to the lan subnet", fromSrc("10.0.0.255"), 0),
		dec("decap inner source next to the router's address", fromSrc("10.0.2.3"), 0),
		// Fragmented in the outer header: the kernel reassembles.
		pass("outer fragment of ipip6 from a configured pair", "wan0", outerFragment(ipip6(toHost(), remote0, local, 0), 0, true), "pass_tun_fragment"),
		pass("outer non-first fragment of ipip6", "wan0", outerFragment(ipip6(toHost(), remote0, local, 0), 16, false), "pass_tun_fragment"),
		pass("outer fragment of a linux peer's ipip6", "wan0", outerFragment(withEncapLimit(ipip6(inner, remote0, local, 0), linuxEncapLimit), 0, true), "pass_tun_fragment"),
		pass("outer fragment of ipip6 from an unknown remote", "wan0", outerFragment(ipip6(toHost(), "2001:db8:100::99", local, 0), 0, true), "pass_fragment"),
		pass("outer fragment of udp from the remote", "wan0", outerFragment(udp6(t, remote0, local, to(wanMAC), from(gwMAC)), 0, true), "pass_fragment"),
		pass("decap inner icmp error to the kernel path", "wan0", ipip6(fixIPv4Checksum(set(toHost(noL4(), ipv4(func(ip *layers.IPv4) { ip.Protocol = layers.IPProtocolICMPv4; ip.Flags = layers.IPv4MoreFragments })), 34, 3, 4)), remote0, local, 0), "pass_fragment"),
	}
	return cases
}

func TestTunnelDataplane(t *testing.T) {
	rl, _ := newTunnelRouterLab(t)
	for _, c := range tunnelCases(t) {
		t.Run(c.name, func(t *testing.T) {
			if c.want != nil {
				if err := verifyChecksums(c.want); err != nil && c.verdict == xdpRedirect {
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
				if verdict == xdpRedirect || verdict == xdpTX {
					if err := verifyChecksums(out); err != nil {
						t.Errorf("output frame: %v", err)
					}
				}
				if err := rl.checkCounters(delta, wantCounter, len(c.frame)); err != nil {
					t.Error(err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// expectRun runs frame on ingress once (in the router namespace) and says
// how the verdict, or the output when want is not nil, differs.
func (rl *routerLab) expectRun(frame []byte, ingress string, verdict uint32, want []byte) error {
	v, out, _, err := rl.runOnce(frame, ingress)
	if err != nil {
		return err
	}
	if v != verdict {
		return fmt.Errorf("verdict %s, want %s", verdictName(v), verdictName(verdict))
	}
	if want != nil && !bytes.Equal(out, want) {
		return fmt.Errorf("output differs: %s", diffBytes(out, want))
	}
	return nil
}

// TestTunnelLocalChange: the daemon moves a tunnel's local address when
// the WAN prefix changes. The next packet is encapsulated from the new
// address (the cached outer next hop is dropped), ipip6 to the new address
// is decapsulated and ipip6 to the old one no longer is.
func TestTunnelLocalChange(t *testing.T) {
	rl, idx := newTunnelRouterLab(t)
	d := &Dataplane{maps: *rl.maps}
	newLocal := netip.MustParseAddr("2001:db8:2::5")
	lt := labTunnelByName("t0")
	m := lt.model()
	in := udp4(t, "10.0.1.2", "100.100.1.1")
	host := udp4(t, "198.51.100.9", "10.0.1.2", to(wanMAC), from(gwMAC))
	err := rl.lab.Do(rl.ns, func() error {
		run := func(frame []byte, ingress string, wantVerdict uint32, want []byte) {
			t.Helper()
			if err := rl.expectRun(frame, ingress, wantVerdict, want); err != nil {
				t.Error(err)
			}
		}
		run(in, "lan0", xdpRedirect, modelEncap(in, m))
		if err := d.SetTunnelLocal(idx["t0"], newLocal); err != nil {
			return err
		}
		m.local = newLocal
		run(in, "lan0", xdpRedirect, modelEncap(in, m))
		lan := labIfaceByName("lan0")
		want, _ := modelDecap(ipip6(host, lt.remote, newLocal.String(), 0), lt.mtu, mustMAC(lan.peerMAC), mustMAC(lan.mac))
		run(ipip6(host, lt.remote, newLocal.String(), 0), "wan0", xdpRedirect, want)
		run(ipip6(host, lt.remote, tunLocal.String(), 0), "wan0", xdpDrop, nil)
		st, err := d.Tunnels()
		if err != nil {
			return err
		}
		for _, x := range st {
			if x.Name == "t0" && x.Local != newLocal {
				t.Errorf("Tunnels() says t0 local %s, want %s", x.Local, newLocal)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
