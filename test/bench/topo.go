package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// Addresses of the gen — router — sink line, from the documentation (RFC
// 5737) and ULA ranges. The generator's frames go from gen's address to
// sink's, so the router forwards them r0 -> r1.
var (
	genV4    = netip.MustParseAddr("192.0.2.2")
	r0V4     = netip.MustParseAddr("192.0.2.1")
	r1V4     = netip.MustParseAddr("198.51.100.1")
	sinkV4   = netip.MustParseAddr("198.51.100.2")
	genV6    = netip.MustParseAddr("fd00:b1::2")
	r0V6     = netip.MustParseAddr("fd00:b1::1")
	r1V6     = netip.MustParseAddr("fd00:b2::1")
	sinkV6   = netip.MustParseAddr("fd00:b2::2")
	startTTL = uint8(64)
	// tunDstV4 is routed into the encap scenario's tunnel.
	tunDstV4 = netip.MustParseAddr("203.0.113.9")
)

// frameLen is the benchmark frame: 64 bytes without FCS, the classic
// small-packet size (IPv6 + UDP headers leave 2 bytes of payload).
const frameLen = 64

type iface struct {
	name  string
	index int
	mac   net.HardwareAddr
}

type topo struct {
	lab                  *netlab.Lab
	genNS, rtrNS, sinkNS string
	g0, r0, r1, s0       iface
}

// buildTopo creates the namespaces, veths, addresses, routes and static
// neighbours. Neighbours are permanent so that no lookup ever comes back
// NO_NEIGH (which would send frames to the kernel and measure ND instead).
func buildTopo(lab *netlab.Lab) (*topo, error) {
	t := &topo{lab: lab}
	var err error
	if t.genNS, err = lab.AddNS("gen", false); err != nil {
		return nil, err
	}
	if t.rtrNS, err = lab.AddNS("router", true); err != nil {
		return nil, err
	}
	if t.sinkNS, err = lab.AddNS("sink", false); err != nil {
		return nil, err
	}
	// gen's port can have a second queue, for the NS flood only (flood.go);
	// every other measurement runs on one, as a veth has by default.
	if err := lab.VethQueues(t.genNS, "g0", t.rtrNS, "r0", portQueues); err != nil {
		return nil, err
	}
	if err := t.setQueues(1); err != nil {
		return nil, err
	}
	if err := lab.Veth(t.rtrNS, "r1", t.sinkNS, "s0"); err != nil {
		return nil, err
	}
	for _, x := range []struct {
		ns   string
		name string
		dst  *iface
	}{{t.genNS, "g0", &t.g0}, {t.rtrNS, "r0", &t.r0}, {t.rtrNS, "r1", &t.r1}, {t.sinkNS, "s0", &t.s0}} {
		if *x.dst, err = lookupIface(lab, x.ns, x.name); err != nil {
			return nil, err
		}
	}

	p := func(a netip.Addr, bits int) string { return netip.PrefixFrom(a, bits).String() }
	neigh := func(a netip.Addr, mac net.HardwareAddr, dev string) []string {
		return []string{"ip", "neigh", "replace", a.String(), "lladdr", mac.String(), "dev", dev, "nud", "permanent"}
	}
	if err := lab.MustExec(t.genNS,
		[]string{"ip", "addr", "add", p(genV4, 24), "dev", "g0"},
		[]string{"ip", "-6", "addr", "add", p(genV6, 64), "dev", "g0", "nodad"},
		[]string{"ip", "route", "add", "default", "via", r0V4.String()},
		[]string{"ip", "-6", "route", "add", "default", "via", r0V6.String()},
		neigh(r0V4, t.r0.mac, "g0"),
		neigh(r0V6, t.r0.mac, "g0"),
	); err != nil {
		return nil, err
	}
	if err := lab.MustExec(t.rtrNS,
		[]string{"ip", "addr", "add", p(r0V4, 24), "dev", "r0"},
		[]string{"ip", "-6", "addr", "add", p(r0V6, 64), "dev", "r0", "nodad"},
		[]string{"ip", "addr", "add", p(r1V4, 24), "dev", "r1"},
		[]string{"ip", "-6", "addr", "add", p(r1V6, 64), "dev", "r1", "nodad"},
		neigh(genV4, t.g0.mac, "r0"),
		neigh(genV6, t.g0.mac, "r0"),
		neigh(sinkV4, t.s0.mac, "r1"),
		neigh(sinkV6, t.s0.mac, "r1"),
	); err != nil {
		return nil, err
	}
	if err := lab.MustExec(t.sinkNS,
		[]string{"ip", "addr", "add", p(sinkV4, 24), "dev", "s0"},
		[]string{"ip", "-6", "addr", "add", p(sinkV6, 64), "dev", "s0", "nodad"},
		[]string{"ip", "route", "add", "default", "via", r1V4.String()},
		[]string{"ip", "-6", "route", "add", "default", "via", r1V6.String()},
		neigh(r1V4, t.r1.mac, "s0"),
		neigh(r1V6, t.r1.mac, "s0"),
	); err != nil {
		return nil, err
	}
	return t, nil
}

// portQueues is the most RX/TX queues g0 and r0 have.
const portQueues = 2

// setQueues sets how many RX and TX queues g0 and r0 use. A veth frame sent
// from CPU c lands in the peer's RX queue c modulo that count, and that
// queue's NAPI runs where it was first scheduled; so with one queue two
// senders on two CPUs share one 256-frame ring and one NAPI. Call it only
// while neither end has an XDP program (veth refuses some changes then).
func (t *topo) setQueues(n int) error {
	q := strconv.Itoa(n)
	if _, err := t.lab.Exec(t.genNS, "ethtool", "-L", "g0", "rx", q, "tx", q); err != nil {
		return fmt.Errorf("g0 to %d queues: %w", n, err)
	}
	if _, err := t.lab.Exec(t.rtrNS, "ethtool", "-L", "r0", "rx", q, "tx", q); err != nil {
		return fmt.Errorf("r0 to %d queues: %w", n, err)
	}
	return nil
}

func lookupIface(lab *netlab.Lab, ns, name string) (iface, error) {
	var out iface
	err := lab.Do(ns, func() error {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("interface %s in %s: %w", name, ns, err)
		}
		out = iface{name: name, index: ifc.Index, mac: ifc.HardwareAddr}
		return nil
	})
	return out, err
}

// family is one address family's benchmark frame.
type family struct {
	name  string // "ipv4" or "ipv6"
	frame []byte
	// fwdCounter is xdprouter's counter for this family's XDP forwards.
	fwdCounter string
	// only names the one scenario that runs this family (the tunnel
	// families); empty: every plain forwarding scenario.
	only string
	// reply is a frame of the flow's other direction, from sink to r1,
	// which primes conntrack for the gated scenarios.
	reply []byte
}

// applies says whether scenario sc runs family f.
func applies(sc string, f family) bool {
	if f.only != "" {
		// kernel-nat44 takes the encap family's frames into its tunnel;
		// each kernel VXLAN scenario (and each NPT-on-VXLAN one) its XDP
		// one's, each TC 6in4 scenario its XDP one's.
		return sc == f.only || (f.only == scEncap && (sc == scKernelNAT44 || sc == scNAT44)) ||
			(isVXLANScenario(sc) && vxlanScenario(sc) == f.only) ||
			(is6in4Scenario(sc) && sixin4Scenario(sc) == f.only)
	}
	if isVXLANScenario(sc) || is6in4Scenario(sc) {
		return false
	}
	switch sc {
	case scEncap, scDecap, scKernelNAT44, scNAT44:
		return false
	case scKernelNPT, scNPT:
		return f.name == "ipv6" // NPTv6 translates IPv6 only
	}
	return true
}

// families builds the 64-byte UDP frames gen -> sink, addressed to r0's MAC.
func (t *topo) families() ([]family, error) {
	v4, err := udpFrame(t.g0.mac, t.r0.mac, &layers.IPv4{
		Version: 4, IHL: 5, TTL: startTTL, Protocol: layers.IPProtocolUDP,
		SrcIP: genV4.AsSlice(), DstIP: sinkV4.AsSlice(),
	}, layers.EthernetTypeIPv4)
	if err != nil {
		return nil, fmt.Errorf("build IPv4 frame: %w", err)
	}
	v6, err := udpFrame(t.g0.mac, t.r0.mac, &layers.IPv6{
		Version: 6, HopLimit: startTTL, NextHeader: layers.IPProtocolUDP,
		SrcIP: genV6.AsSlice(), DstIP: sinkV6.AsSlice(),
	}, layers.EthernetTypeIPv6)
	if err != nil {
		return nil, fmt.Errorf("build IPv6 frame: %w", err)
	}
	// Into the tunnel: the same IPv4 frame, to a prefix routed into it.
	enc, err := udpFrame(t.g0.mac, t.r0.mac, &layers.IPv4{
		Version: 4, IHL: 5, TTL: startTTL, Protocol: layers.IPProtocolUDP,
		SrcIP: genV4.AsSlice(), DstIP: tunDstV4.AsSlice(),
	}, layers.EthernetTypeIPv4)
	if err != nil {
		return nil, fmt.Errorf("build encap frame: %w", err)
	}
	// Out of the tunnel: the IPv4 frame to sink inside ipip6 from gen
	// (the tunnel's remote) to r0 (its local address): 104 bytes.
	inner, err := udpFrame(t.g0.mac, t.r0.mac, &layers.IPv4{
		Version: 4, IHL: 5, TTL: startTTL, Protocol: layers.IPProtocolUDP,
		SrcIP: genV4.AsSlice(), DstIP: sinkV4.AsSlice(),
	}, layers.EthernetTypeIPv4)
	if err != nil {
		return nil, fmt.Errorf("build decap frame: %w", err)
	}
	fams := []family{
		{name: "ipv4", frame: v4, fwdCounter: "fwd_ipv4"},
		{name: "ipv6", frame: v6, fwdCounter: "fwd_ipv6"},
		{name: "ipv4-in-ipip6", frame: enc, fwdCounter: "tun_encap", only: scEncap},
		{name: "ipip6-to-ipv4", frame: ipip6(inner, genV6, r0V6), fwdCounter: "tun_decap", only: scDecap},
	}
	vx, err := t.vxlanFamilies()
	if err != nil {
		return nil, err
	}
	fams = append(fams, vx...)
	s4, err := t.sixin4Families()
	if err != nil {
		return nil, err
	}
	fams = append(fams, s4...)
	return fams, t.replyFrames(fams)
}

// ipip6 wraps an Ethernet/IPv4 frame's IPv4 packet in IPv6 from src to dst
// (next header 4, hop limit startTTL), keeping its Ethernet addresses.
func ipip6(inner []byte, src, dst netip.Addr) []byte {
	out := append([]byte(nil), inner[:12]...)
	out = append(out, 0x86, 0xdd, 0x60, 0, 0, 0, byte((len(inner)-14)>>8), byte(len(inner)-14), 4, startTTL)
	out = append(out, src.AsSlice()...)
	out = append(out, dst.AsSlice()...)
	return append(out, inner[14:]...)
}

// udpFrame serializes Ethernet / ip / UDP (discard port) padded with payload
// to exactly frameLen bytes, checksums computed by gopacket.
func udpFrame(src, dst net.HardwareAddr, ip gopacket.NetworkLayer, et layers.EthernetType) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: et}
	udp := &layers.UDP{SrcPort: 9, DstPort: 9}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	hdr := 14 + 8
	switch ip.(type) {
	case *layers.IPv4:
		hdr += 20
	case *layers.IPv6:
		hdr += 40
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	err := gopacket.SerializeLayers(buf, opts, eth, ip.(gopacket.SerializableLayer), udp,
		gopacket.Payload(make([]byte, frameLen-hdr)))
	if err != nil {
		return nil, err
	}
	if n := len(buf.Bytes()); n != frameLen {
		return nil, fmt.Errorf("frame is %d bytes, want %d", n, frameLen)
	}
	return buf.Bytes(), nil
}

// detachAll is `xdprouter detach --all` in the router namespace: links,
// maps, tunnel netdevs and xdprouter's nftables tables go.
func (t *topo) detachAll(bin, bpffs string) func() error {
	return func() error {
		if _, err := t.lab.Exec(t.rtrNS, bin, "--bpffs", bpffs, "detach", "--all"); err != nil {
			return fmt.Errorf("xdprouter detach: %w", err)
		}
		return nil
	}
}

// applyConfig writes text to name.yaml, runs `xdprouter apply` with it in
// the router namespace, as a user would, and returns what takes it all off
// again; on error nothing stays.
func (t *topo) applyConfig(bin, bpffs, name, text string) (func() error, error) {
	path := filepath.Join(t.lab.RunDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, err
	}
	detach := t.detachAll(bin, bpffs)
	if _, err := t.lab.Exec(t.rtrNS, bin, "--bpffs", bpffs, "apply", "--config", path); err != nil {
		return nil, errors.Join(fmt.Errorf("xdprouter apply (%s): %w", name, err), detach())
	}
	return detach, nil
}
