package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	xdpconfig "github.com/xdprouter/xdprouter/control/config"
)

// checkSixIn4 fails t unless frame is inner's IPv6 packet in a 20-octet
// IPv4 header from src to dst (protocol 41, TTL startTTL, DF, ID 0, a
// header checksum that verifies), with inner's Ethernet addresses.
func checkSixIn4(t *testing.T, frame, inner []byte, src, dst netip.Addr) {
	t.Helper()
	if len(frame) != len(inner)+20 {
		t.Fatalf("frame is %d bytes, want %d (the inner frame's %d + 20)", len(frame), len(inner)+20, len(inner))
	}
	if !bytes.Equal(frame[:12], inner[:12]) || frame[12] != 0x08 || frame[13] != 0x00 {
		t.Errorf("Ethernet header %x, want the inner frame's addresses %x and type 0800", frame[:14], inner[:12])
	}
	h := frame[14:34]
	if h[0] != 0x45 || binary.BigEndian.Uint16(h[2:]) != uint16(len(inner)-14+20) ||
		binary.BigEndian.Uint16(h[4:]) != 0 || binary.BigEndian.Uint16(h[6:]) != 0x4000 || h[8] != startTTL || h[9] != 41 {
		t.Errorf("IPv4 header %x: want version 4, IHL 5, total length %d, ID 0, DF, TTL %d, protocol 41", h, len(inner)-14+20, startTTL)
	}
	if !bytes.Equal(h[12:16], src.AsSlice()) || !bytes.Equal(h[16:20], dst.AsSlice()) {
		t.Errorf("IPv4 addresses %v -> %v, want %v -> %v", net.IP(h[12:16]), net.IP(h[16:20]), src, dst)
	}
	// The header sums to 0xffff with its checksum in it.
	var s uint32
	for i := 0; i < 20; i += 2 {
		s += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	if s != 0xffff {
		t.Errorf("IPv4 header checksum %#04x does not verify (sum %#04x)", binary.BigEndian.Uint16(h[10:]), s)
	}
	if !bytes.Equal(frame[34:], inner[14:]) {
		t.Errorf("payload is not the inner IPv6 packet:\n got %x\nwant %x", frame[34:], inner[14:])
	}
	// And gopacket reads it as IPv4 carrying that IPv6 packet.
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip4, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	ip6, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if ip4 == nil || ip6 == nil || ip4.Protocol != layers.IPProtocolIPv6 || pkt.ErrorLayer() != nil {
		t.Errorf("gopacket does not read IPv6 in IPv4: %v", pkt)
	}
}

// TestSixIn4Frame: sixin4 wraps an Ethernet/IPv6 frame as a 6in4 sender
// does (the bytes, checked one by one).
func TestSixIn4Frame(t *testing.T) {
	inner, err := udpFrame(net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}, &layers.IPv6{
		Version: 6, HopLimit: startTTL, NextHeader: layers.IPProtocolUDP, SrcIP: sixin4FarSrc.AsSlice(), DstIP: sinkV6.AsSlice(),
	}, layers.EthernetTypeIPv6)
	if err != nil {
		t.Fatal(err)
	}
	checkSixIn4(t, sixin4(inner, genV4, r0V4), inner, genV4, r0V4)
}

// TestSixIn4Families: the 6in4 scenarios' frames and replies go where the
// scenarios' configs route them: gen's IPv6 to the encap tunnel's routed
// prefix, protocol 41 from the decap tunnel's remote (gen) to its local
// address (r0), and each reply the other way.
func TestSixIn4Families(t *testing.T) {
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, b} }
	tp := &topo{g0: iface{mac: mac(1)}, r0: iface{mac: mac(2)}, r1: iface{mac: mac(3)}, s0: iface{mac: mac(4)}}
	fams, err := tp.sixin4Families()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 2 || fams[0].only != sc6in4Encap || fams[1].only != sc6in4Decap {
		t.Fatalf("families %+v, want the encap one and the decap one", fams)
	}
	v6 := func(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr) []byte {
		f, err := udpFrame(srcMAC, dstMAC, &layers.IPv6{Version: 6, HopLimit: startTTL, NextHeader: layers.IPProtocolUDP,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}, layers.EthernetTypeIPv6)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	enc, dec := fams[0], fams[1]
	if want := v6(tp.g0.mac, tp.r0.mac, genV6, sixin4EncDst); !bytes.Equal(enc.frame, want) {
		t.Errorf("encap frame\n got %x\nwant %x", enc.frame, want)
	}
	t.Run("encap reply", func(t *testing.T) {
		checkSixIn4(t, enc.reply, v6(tp.s0.mac, tp.r1.mac, sixin4EncDst, genV6), sinkV4, r1V4)
	})
	t.Run("decap frame", func(t *testing.T) {
		checkSixIn4(t, dec.frame, v6(tp.g0.mac, tp.r0.mac, sixin4FarSrc, sinkV6), genV4, r0V4)
	})
	if want := v6(tp.s0.mac, tp.r1.mac, sinkV6, sixin4FarSrc); !bytes.Equal(dec.reply, want) {
		t.Errorf("decap reply\n got %x\nwant %x", dec.reply, want)
	}
}

// TestSixIn4Configs: the scenarios' configs are valid, and their tunnels
// are the frames': the encap tunnel from r1 to sink with outer TTL
// startTTL-1 (the sink's one hop), routing the encap frames' destination;
// the decap tunnel from r0 to gen, routing the decap flow's replies.
func TestSixIn4Configs(t *testing.T) {
	for _, c := range []struct {
		sc, dev       string
		local, remote netip.Addr
		routed        netip.Addr
		ttl           int
	}{
		{sc6in4Encap, sixin4EncDev, r1V4, sinkV4, sixin4EncDst, int(startTTL - 1)},
		{scTC6in4Decap, sixin4DecDev, r0V4, genV4, sixin4FarSrc, 64},
	} {
		cfg, err := xdpconfig.Parse(strings.NewReader(sixin4Config(c.sc)))
		if err != nil {
			t.Fatalf("%s: %v", c.sc, err)
		}
		if len(cfg.Tunnels) != 1 {
			t.Fatalf("%s: %d tunnels, want 1", c.sc, len(cfg.Tunnels))
		}
		tun := cfg.Tunnels[0]
		if tun.Name != c.dev || tun.Mode != "6in4" || tun.Local != c.local || tun.Remote != c.remote || tun.HopLimit != c.ttl {
			t.Errorf("%s: tunnel %+v, want %s, 6in4 from %v to %v, TTL %d", c.sc, tun, c.dev, c.local, c.remote, c.ttl)
		}
		if len(tun.Routes) != 1 || !tun.Routes[0].Contains(c.routed) {
			t.Errorf("%s: routes %v do not hold %v", c.sc, tun.Routes, c.routed)
		}
	}
}
