package loader

// Data-plane tests of VXLAN in XDP (bpf/include/vxlan.h): BPF_PROG_TEST_RUN
// of xdpr_main in the router namespace of dataplane_test.go, with real
// kernel vxlan netdevs whose routes and neighbours select them, recorded
// by the loader's own PutKernelTunnel. Expected frames are built here byte
// by byte, checksums verified independently of the code under test.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// A vxlan netdev of the lab: over IPv4 (vx4, no local address: the route
// gives it) or IPv6 (vx6, with one), each with an overlay neighbour
// (peer) and routes through it; vx4's 2001:db8:b41::/48 goes to a
// neighbour that is never resolved.
type labVXLAN struct {
	name, mac, peerMAC string
	vni                uint32
	remote, local      netip.Addr // underlay: the peer behind wan0, wan0's own address
	mtu                int
}

var labVXLANs = []labVXLAN{
	{"vx4", "02:00:00:00:0b:01", "02:00:00:00:0b:02", 100, netip.MustParseAddr("10.0.2.2"), netip.MustParseAddr("10.0.2.1"), 1450},
	{"vx6", "02:00:00:00:0c:01", "02:00:00:00:0c:02", 200, netip.MustParseAddr("2001:db8:2::2"), netip.MustParseAddr("2001:db8:2::1"), 1430},
}

var vxlanSetup = [][]string{
	// As xdprouter makes them (control/vxlandev.go): no learning, UDP
	// checksums.
	{"ip", "link", "add", "vx4", "address", "02:00:00:00:0b:01", "type", "vxlan", "id", "100", "dstport", "4789",
		"remote", "10.0.2.2", "dev", "wan0", "udpcsum", "nolearning"},
	{"ip", "link", "add", "vx6", "address", "02:00:00:00:0c:01", "type", "vxlan", "id", "200", "dstport", "4789",
		"remote", "2001:db8:2::2", "local", "2001:db8:2::1", "dev", "wan0", "nolearning"},
	{"ip", "link", "set", "vx4", "up"},
	{"ip", "link", "set", "vx6", "up"},
	{"ip", "-6", "addr", "add", "2001:db8:b4::1/64", "dev", "vx4", "nodad"},
	{"ip", "addr", "add", "10.44.0.1/24", "dev", "vx4"},
	{"ip", "-6", "neigh", "replace", "2001:db8:b4::2", "lladdr", "02:00:00:00:0b:02", "dev", "vx4", "nud", "permanent"},
	{"ip", "neigh", "replace", "10.44.0.2", "lladdr", "02:00:00:00:0b:02", "dev", "vx4", "nud", "permanent"},
	{"ip", "-6", "route", "add", "2001:db8:b40::/48", "via", "2001:db8:b4::2", "dev", "vx4"},
	{"ip", "route", "add", "10.45.0.0/16", "via", "10.44.0.2", "dev", "vx4"},
	{"ip", "-6", "route", "add", "2001:db8:b41::/48", "via", "2001:db8:b4::3", "dev", "vx4"},
	{"ip", "-6", "addr", "add", "2001:db8:b6::1/64", "dev", "vx6", "nodad"},
	{"ip", "addr", "add", "10.66.0.1/24", "dev", "vx6"},
	{"ip", "-6", "neigh", "replace", "2001:db8:b6::2", "lladdr", "02:00:00:00:0c:02", "dev", "vx6", "nud", "permanent"},
	{"ip", "neigh", "replace", "10.66.0.2", "lladdr", "02:00:00:00:0c:02", "dev", "vx6", "nud", "permanent"},
	{"ip", "-6", "route", "add", "2001:db8:b60::/48", "via", "2001:db8:b6::2", "dev", "vx6"},
	{"ip", "route", "add", "10.67.0.0/16", "via", "10.66.0.2", "dev", "vx6"},
}

func labVXLANByName(name string) labVXLAN {
	for _, v := range labVXLANs {
		if v.name == name {
			return v
		}
	}
	panic("no lab vxlan " + name)
}

// newVXLANRouterLab is the router lab with the vxlan netdevs, recorded
// as the control plane records them.
func newVXLANRouterLab(t testing.TB) *routerLab {
	rl := newRouterLab(t)
	if err := rl.lab.MustExec(rl.ns, vxlanSetup...); err != nil {
		t.Fatal(err)
	}
	d := &Dataplane{maps: *rl.maps}
	err := rl.lab.Do(rl.ns, func() error {
		for _, v := range labVXLANs {
			ifc, err := net.InterfaceByName(v.name)
			if err != nil {
				return err
			}
			rl.ifindex[v.name] = ifc.Index
			kt := KernelTunnel{Name: v.name, Ifindex: ifc.Index, Kind: "vxlan", VNI: v.vni, Port: 4789, Remote: v.remote}
			if v.name == "vx6" {
				kt.Local = v.local
			}
			if err := d.PutKernelTunnel(kt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rl
}

// The kernel's default source port range (ip_local_port_range of a new
// namespace), of which udp_flow_src_port never picks the top.
const vxlanSportMin, vxlanSportMax = 32768, 60999

// vxlanEncapModel is what the netdev v sends for the inner frame routed
// into it: the inner frame to the overlay neighbour with one hop less,
// behind outer Ethernet (to wan0's next hop), IP (TTL 64, no DF, the inner
// ECN field in the TOS), UDP to 4789 with a checksum, and VXLAN with v's
// VNI. sport and (over IPv4) id are the two fields the kernel picks at
// random; the caller takes them from the frame under test.
func vxlanEncapModel(inner []byte, v labVXLAN, sport, id uint16) []byte {
	in := bytes.Clone(inner)
	copy(in[0:6], mustMAC(v.peerMAC))
	copy(in[6:12], mustMAC(v.mac))
	var tos byte
	switch binary.BigEndian.Uint16(in[12:14]) {
	case uint16(layers.EthernetTypeIPv4):
		ip := in[14:]
		in = in[:14+int(binary.BigEndian.Uint16(ip[2:4]))] // no Ethernet padding inside
		ip = in[14:]
		ip[8]--
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:12], rfc1071(ip[:20]))
		tos = ip[1]
	case uint16(layers.EthernetTypeIPv6):
		in[14+7]--
		tos = byte(binary.BigEndian.Uint32(in[14:18]) >> 20)
	}
	ecn := tos & 3
	if ecn == 3 {
		ecn = 2 // CE outside becomes ECT(0) (RFC 6040 4.1)
	}
	udp := binary.BigEndian.AppendUint16(nil, sport)
	udp = binary.BigEndian.AppendUint16(udp, 4789)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+8+len(in)))
	udp = append(udp, 0, 0)
	udp = binary.BigEndian.AppendUint32(udp, 0x08000000)
	udp = binary.BigEndian.AppendUint32(udp, v.vni<<8)
	udp = append(udp, in...)
	out := append(append(mustMAC(gwMAC), mustMAC(wanMAC)...), 0, 0)
	var pseudo []byte
	if v.remote.Is4() {
		binary.BigEndian.PutUint16(out[12:], uint16(layers.EthernetTypeIPv4))
		ip := []byte{0x45, ecn, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
		binary.BigEndian.PutUint16(ip[4:], id)
		ip = append(append(ip, v.local.AsSlice()...), v.remote.AsSlice()...)
		binary.BigEndian.PutUint16(ip[10:], rfc1071(ip))
		out = append(out, ip...)
		pseudo = append(append(pseudo, v.local.AsSlice()...), v.remote.AsSlice()...)
		pseudo = append(pseudo, 0, 17, byte(len(udp)>>8), byte(len(udp)))
	} else {
		binary.BigEndian.PutUint16(out[12:], uint16(layers.EthernetTypeIPv6))
		ip := binary.BigEndian.AppendUint32(nil, 6<<28|uint32(ecn)<<20)
		ip = binary.BigEndian.AppendUint16(ip, uint16(len(udp)))
		ip = append(ip, 17, 64)
		ip = append(append(ip, v.local.AsSlice()...), v.remote.AsSlice()...)
		out = append(out, ip...)
		pseudo = append(append(pseudo, v.local.AsSlice()...), v.remote.AsSlice()...)
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(udp)))
		pseudo = append(pseudo, 0, 0, 0, 17)
	}
	c := rfc1071(append(pseudo, udp...))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], c)
	return append(out, udp...)
}

// vxlanFields reads the source port and (IPv4) identification of an
// encapsulated frame.
func vxlanFields(out []byte) (sport, id uint16) {
	if len(out) < 14+40+8 {
		return 0, 0
	}
	if binary.BigEndian.Uint16(out[12:14]) == uint16(layers.EthernetTypeIPv4) {
		return binary.BigEndian.Uint16(out[14+20:]), binary.BigEndian.Uint16(out[14+4:])
	}
	return binary.BigEndian.Uint16(out[14+40:]), 0
}

// vxlanFrame is the VXLAN frame the peer behind wan0 sends: inner (whose
// Ethernet header is kept) from remote to local at port with vni; csum:
// with a UDP checksum (over IPv6 there must be one).
func vxlanFrame(inner []byte, remote, local string, vni uint32, port uint16, csum bool) []byte {
	r, l := netip.MustParseAddr(remote), netip.MustParseAddr(local)
	udp := binary.BigEndian.AppendUint16(nil, 51234)
	udp = binary.BigEndian.AppendUint16(udp, port)
	udp = binary.BigEndian.AppendUint16(udp, uint16(16+len(inner)))
	udp = append(udp, 0, 0)
	udp = binary.BigEndian.AppendUint32(udp, 0x08000000)
	udp = binary.BigEndian.AppendUint32(udp, vni<<8)
	udp = append(udp, inner...)
	out := append(append(mustMAC(wanMAC), mustMAC(gwMAC)...), 0, 0)
	var pseudo []byte
	if r.Is4() {
		binary.BigEndian.PutUint16(out[12:], uint16(layers.EthernetTypeIPv4))
		ip := []byte{0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 17, 0, 0}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
		ip = append(append(ip, r.AsSlice()...), l.AsSlice()...)
		binary.BigEndian.PutUint16(ip[10:], rfc1071(ip))
		out = append(out, ip...)
		pseudo = append(append(pseudo, r.AsSlice()...), l.AsSlice()...)
		pseudo = append(pseudo, 0, 17, byte(len(udp)>>8), byte(len(udp)))
	} else {
		binary.BigEndian.PutUint16(out[12:], uint16(layers.EthernetTypeIPv6))
		ip := binary.BigEndian.AppendUint32(nil, 6<<28)
		ip = binary.BigEndian.AppendUint16(ip, uint16(len(udp)))
		ip = append(ip, 17, 64)
		ip = append(append(ip, r.AsSlice()...), l.AsSlice()...)
		out = append(out, ip...)
		pseudo = append(append(pseudo, r.AsSlice()...), l.AsSlice()...)
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(udp)))
		pseudo = append(pseudo, 0, 0, 0, 17)
	}
	if csum {
		c := rfc1071(append(pseudo, udp...))
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(udp[6:], c)
	}
	return append(out, udp...)
}

// overlay gives an inner frame the MACs of the overlay: from the peer to
// the netdev v.
func overlay(v labVXLAN) frameOpt {
	return func(f *frameSpec) { f.dst, f.src = mustMAC(v.mac), mustMAC(v.peerMAC) }
}

type vxCase struct {
	name    string
	frame   []byte
	verdict uint32
	counter string
	// encap: the netdev the model encapsulates for; want: the expected
	// output otherwise (nil: the frame unchanged).
	encap string
	want  []byte
}

func vxlanCases(t *testing.T) []vxCase {
	vx4, vx6 := labVXLANByName("vx4"), labVXLANByName("vx6")
	big := udp6(t, "2001:db8:1::2", "2001:db8:b40::9", payload(1450-40-8+1))
	atMTU := udp6(t, "2001:db8:1::2", "2001:db8:b40::9", payload(1450-40-8))
	short := udp4(t, "10.0.1.2", "10.45.0.9", payload(2))
	padded := append(bytes.Clone(short), make([]byte, 60-len(short))...)
	in6 := udp6(t, "2001:db8:b40::5", "2001:db8:1::2", overlay(vx4))
	in4 := udp4(t, "10.45.0.5", "10.0.1.2", overlay(vx4))
	in6b := udp6(t, "2001:db8:b60::5", "2001:db8:1::2", overlay(vx6))
	toRouter := udp6(t, "2001:db8:b40::5", "2001:db8:b4::1", overlay(vx4))
	otherMAC := udp6(t, "2001:db8:b40::5", "2001:db8:1::2", to("02:00:00:00:0b:99"), from(vx4.peerMAC))
	hop1 := udp6(t, "2001:db8:b40::5", "2001:db8:1::2", overlay(vx4), ttl(1))
	notECT := udp6(t, "2001:db8:b40::5", "2001:db8:1::2", overlay(vx4), ipv6(func(ip *layers.IPv6) { ip.TrafficClass = 0x20 }))
	badSum := vxlanFrame(in6, "10.0.2.2", "10.0.2.1", 100, 4789, true)
	badSum[len(badSum)-1] ^= 0x55
	ce := vxlanFrame(notECT, "10.0.2.2", "10.0.2.1", 100, 4789, true)
	ce[14+1] = 3 // outer CE
	ce[14+10], ce[14+11] = 0, 0
	binary.BigEndian.PutUint16(ce[14+10:], rfc1071(ce[14:14+20]))
	return []vxCase{
		// Encapsulation: routed into vx4 (IPv4 underlay) and vx6 (IPv6).
		{name: "ipv6 into vxlan over ipv4", frame: udp6(t, "2001:db8:1::2", "2001:db8:b40::9"), verdict: xdpRedirect, counter: "vxlan_encap", encap: "vx4"},
		{name: "ipv4 into vxlan over ipv4", frame: udp4(t, "10.0.1.2", "10.45.0.9"), verdict: xdpRedirect, counter: "vxlan_encap", encap: "vx4"},
		{name: "ipv6 into vxlan over ipv6", frame: udp6(t, "2001:db8:1::2", "2001:db8:b60::9"), verdict: xdpRedirect, counter: "vxlan_encap", encap: "vx6"},
		{name: "ipv4 into vxlan over ipv6", frame: udp4(t, "10.0.1.2", "10.67.0.9"), verdict: xdpRedirect, counter: "vxlan_encap", encap: "vx6"},
		{name: "tcp", frame: udp6(t, "2001:db8:1::2", "2001:db8:b40::9", tcp()), verdict: xdpRedirect, counter: "vxlan_encap", encap: "vx4"},
		{name: "ecn ect(0) inner", frame: udp4(t, "10.0.1.2", "10.45.0.9", ipv4(func(ip *layers.IPv4) { ip.TOS = 0x2a })), verdict: xdpRedirect, counter: "vxlan_encap", encap: "vx4"},
		{name: "ecn ce inner", frame: udp6(t, "2001:db8:1::2", "2001:db8:b60::9", ipv6(func(ip *layers.IPv6) { ip.TrafficClass = 0x2b })), verdict: xdpRedirect, counter: "vxlan_encap", encap: "vx6"},
		{name: "at the vxlan mtu", frame: atMTU, verdict: xdpRedirect, counter: "vxlan_encap", encap: "vx4"},
		{name: "ethernet padding is not encapsulated", frame: padded, verdict: xdpRedirect, counter: "vxlan_encap", encap: "vx4"},
		{name: "over the vxlan mtu", frame: big, verdict: xdpPass, counter: "pass_vxlan_too_big"},
		{name: "overlay neighbour unresolved", frame: udp6(t, "2001:db8:1::2", "2001:db8:b41::9"), verdict: xdpPass, counter: "pass_vxlan_no_neigh"},
		{name: "hop limit 1 into vxlan", frame: udp6(t, "2001:db8:1::2", "2001:db8:b40::9", ttl(1)), verdict: xdpPass, counter: "pass_ttl_expired"},
		{name: "ttl 1 into vxlan", frame: udp4(t, "10.0.1.2", "10.45.0.9", ttl(1)), verdict: xdpPass, counter: "pass_ttl_expired"},

		// Decapsulation: from the configured remote with the VNI.
		{name: "vxlan over ipv4, ipv6 inside", frame: vxlanFrame(in6, "10.0.2.2", "10.0.2.1", 100, 4789, true), verdict: xdpRedirect,
			counter: "vxlan_decap", want: expectForward(in6, "lan0")},
		{name: "vxlan over ipv4, ipv4 inside", frame: vxlanFrame(in4, "10.0.2.2", "10.0.2.1", 100, 4789, true), verdict: xdpRedirect,
			counter: "vxlan_decap", want: expectForward(in4, "lan0")},
		{name: "vxlan over ipv4 without checksum", frame: vxlanFrame(in6, "10.0.2.2", "10.0.2.1", 100, 4789, false), verdict: xdpRedirect,
			counter: "vxlan_decap", want: expectForward(in6, "lan0")},
		{name: "vxlan over ipv6", frame: vxlanFrame(in6b, "2001:db8:2::2", "2001:db8:2::1", 200, 4789, true), verdict: xdpRedirect,
			counter: "vxlan_decap", want: expectForward(in6b, "lan0")},
		{name: "wrong vni", frame: vxlanFrame(in6, "10.0.2.2", "10.0.2.1", 101, 4789, true), verdict: xdpPass, counter: "pass_vxlan_unknown"},
		{name: "vni of the other netdev", frame: vxlanFrame(in6, "10.0.2.2", "10.0.2.1", 200, 4789, true), verdict: xdpPass, counter: "pass_vxlan_unknown"},
		{name: "wrong remote", frame: vxlanFrame(in6, "10.0.2.9", "10.0.2.1", 100, 4789, true), verdict: xdpPass, counter: "pass_vxlan_unknown"},
		{name: "wrong port", frame: vxlanFrame(in6, "10.0.2.2", "10.0.2.1", 100, 4790, true), verdict: xdpPass, counter: "pass_local"},
		{name: "bad outer checksum", frame: badSum, verdict: xdpPass, counter: "pass_vxlan_csum"},
		{name: "no checksum over ipv6", frame: vxlanFrame(in6b, "2001:db8:2::2", "2001:db8:2::1", 200, 4789, false), verdict: xdpPass, counter: "pass_vxlan_csum"},
		{name: "inner frame for another mac", frame: vxlanFrame(otherMAC, "10.0.2.2", "10.0.2.1", 100, 4789, true), verdict: xdpPass, counter: "pass_vxlan_inner"},
		{name: "inner packet for the router", frame: vxlanFrame(toRouter, "10.0.2.2", "10.0.2.1", 100, 4789, true), verdict: xdpPass, counter: "pass_vxlan_local"},
		{name: "inner hop limit 1", frame: vxlanFrame(hop1, "10.0.2.2", "10.0.2.1", 100, 4789, true), verdict: xdpPass, counter: "pass_ttl_expired"},
		{name: "outer ce on a not-ect packet", frame: ce, verdict: xdpDrop, counter: "drop_tun_ecn"},
	}
}

func TestVXLANDataplane(t *testing.T) {
	rl := newVXLANRouterLab(t)
	for _, c := range vxlanCases(t) {
		t.Run(c.name, func(t *testing.T) {
			wantCounter := rl.counterIndex(t, c.counter)
			err := rl.lab.Do(rl.ns, func() error {
				// VXLAN comes from the underlay, to wan0's MAC.
				ingress := "lan0"
				if bytes.Equal(c.frame[0:6], mustMAC(wanMAC)) {
					ingress = "wan0"
				}
				verdict, out, delta, err := rl.runOnce(c.frame, ingress)
				if err != nil {
					return err
				}
				if verdict != c.verdict {
					t.Errorf("verdict %s, want %s", verdictName(verdict), verdictName(c.verdict))
				}
				want := c.want
				if c.encap != "" {
					sport, id := vxlanFields(out)
					if sport < vxlanSportMin || sport >= vxlanSportMax {
						t.Errorf("source port %d outside [%d, %d)", sport, vxlanSportMin, vxlanSportMax)
					}
					want = vxlanEncapModel(c.frame, labVXLANByName(c.encap), sport, id)
				}
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

// TestVXLANSourcePort: the source port is a hash of the inner flow (RFC
// 7348 5): the same for every packet of a flow, spread over the range
// for different flows.
func TestVXLANSourcePort(t *testing.T) {
	rl := newVXLANRouterLab(t)
	ports := map[uint16]bool{}
	err := rl.lab.Do(rl.ns, func() error {
		for i := 0; i < 64; i++ {
			frame := udp6(t, fmt.Sprintf("2001:db8:1::%x", i+2), "2001:db8:b40::9")
			var first uint16
			for j := 0; j < 2; j++ {
				v, out, _, err := rl.runOnce(frame, "lan0")
				if err != nil {
					return err
				}
				if v != xdpRedirect {
					return fmt.Errorf("flow %d: verdict %s", i, verdictName(v))
				}
				sport, _ := vxlanFields(out)
				if j == 1 && sport != first {
					t.Errorf("flow %d: source port %d, then %d", i, first, sport)
				}
				first = sport
			}
			ports[first] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) < 60 {
		t.Errorf("64 flows got %d source ports", len(ports))
	}
}

// TestVXLANOuterRouteChange: a CPU reuses its last outer route for at
// most 100 ms (xdpr_vxlan_cache_jiffies), so a change of the underlay's
// next hop reaches the fast path within that.
func TestVXLANOuterRouteChange(t *testing.T) {
	rl := newVXLANRouterLab(t)
	frame := udp6(t, "2001:db8:1::2", "2001:db8:b40::9")
	dmac := func() net.HardwareAddr {
		var out []byte
		err := rl.lab.Do(rl.ns, func() error {
			v, o, _, err := rl.runOnce(frame, "lan0")
			if err == nil && v != xdpRedirect {
				err = fmt.Errorf("verdict %s", verdictName(v))
			}
			out = o
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return net.HardwareAddr(out[0:6])
	}
	if got := dmac(); got.String() != gwMAC {
		t.Fatalf("outer destination MAC %s, want %s", got, gwMAC)
	}
	if err := rl.lab.MustExec(rl.ns, []string{"ip", "neigh", "replace", "10.0.2.2", "lladdr", "02:00:00:00:02:09",
		"dev", "wan0", "nud", "permanent"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if got := dmac(); got.String() != "02:00:00:00:02:09" {
		t.Errorf("150 ms after the next hop changed, the outer destination MAC is %s, want 02:00:00:00:02:09", got)
	}
}

// TestVXLANDecapGate: on a gated port the decapsulated packet passes the
// conntrack gate as the netdev's own traffic would: without an entry, or
// as a SYN, it goes to the kernel untouched (where the netdev decapsulates
// and the firewall judges it as arriving on it); established, XDP carries
// it.
func TestVXLANDecapGate(t *testing.T) {
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Fatalf("needs the conntrack CLI (Debian package conntrack; make test installs it): %v", err)
	}
	rl := newVXLANRouterLab(t)
	err := rl.lab.Do(rl.ns, func() error {
		ifc, err := net.InterfaceByName("wan0")
		if err != nil {
			return err
		}
		rl.progs["wan0"] = loadTestProgramGate(t, ifc, RoleWAN, CTGateOn, rl.maps)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	vx4 := labVXLANByName("vx4")
	in := udp6(t, "2001:db8:b40::5", "2001:db8:1::2", overlay(vx4))
	syn := udp6(t, "2001:db8:b40::5", "2001:db8:1::2", overlay(vx4), tcp())
	syn[14+40+13] = 0x02
	syn = fixL4Checksum(t, syn)
	for _, c := range []struct {
		name    string
		entry   []string
		inner   []byte
		verdict uint32
		counter string
	}{
		{"no conntrack entry", nil, in, xdpPass, "pass_ct_new"},
		{"established", ctEntry("udp", "2001:db8:b40::5", "2001:db8:1::2", udpSport, udpDport, "-u", "SEEN_REPLY,ASSURED"),
			in, xdpRedirect, "vxlan_decap"},
		{"syn", nil, syn, xdpPass, "pass_ct_tcp_flags"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := rl.lab.MustExec(rl.ns, []string{"conntrack", "-F"}); err != nil {
				t.Fatal(err)
			}
			if c.entry != nil {
				if err := rl.lab.MustExec(rl.ns, append([]string{"conntrack"}, c.entry...)); err != nil {
					t.Fatal(err)
				}
			}
			frame := vxlanFrame(c.inner, "10.0.2.2", "10.0.2.1", 100, 4789, true)
			want := frame
			if c.verdict == xdpRedirect {
				want = expectForward(c.inner, "lan0")
			}
			err := rl.lab.Do(rl.ns, func() error {
				v, out, delta, err := rl.runOnce(frame, "wan0")
				if err != nil {
					return err
				}
				if v != c.verdict {
					t.Errorf("verdict %s, want %s", verdictName(v), verdictName(c.verdict))
				}
				if !bytes.Equal(out, want) {
					t.Errorf("output differs: %s", diffBytes(out, want))
				}
				return rl.checkCounters(delta, rl.counterIndex(t, c.counter), len(frame))
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
}
