package reasm

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// TestFrame: the frame written to the tap is what the data plane's
// decapsulation reads: Ethernet to the tap's MAC, an IPv6 header with the
// reassembled packet's source, destination and traffic class, next header
// 4 and the payload length, then the inner packet untouched. Decoded with
// gopacket, not with the code under test.
func TestFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0xfa, 0x01}
	inner := bytes.Repeat([]byte{0x45, 1, 2, 3}, 375) // 1500 bytes
	src := &net.IPAddr{IP: net.ParseIP("2404:8e00::feed:140")}
	cm := &ipv6.ControlMessage{Dst: net.ParseIP("2001:db8:1::feed"), TrafficClass: 0xb9}
	f, err := Frame(make([]byte, 70000), mac, src, cm, inner)
	if err != nil {
		t.Fatal(err)
	}
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip6, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if eth == nil || ip6 == nil {
		t.Fatalf("not Ethernet + IPv6: %v", p)
	}
	if !bytes.Equal(eth.DstMAC, mac) || eth.EthernetType != layers.EthernetTypeIPv6 {
		t.Errorf("ethernet %v -> %v type %v, want to %v, IPv6", eth.SrcMAC, eth.DstMAC, eth.EthernetType, mac)
	}
	if !ip6.SrcIP.Equal(src.IP) || !ip6.DstIP.Equal(cm.Dst) || ip6.TrafficClass != 0xb9 ||
		ip6.NextHeader != layers.IPProtocolIPv4 || int(ip6.Length) != len(inner) || ip6.HopLimit == 0 {
		t.Errorf("ipv6 header %+v", ip6)
	}
	if !bytes.Equal(f[14+40:], inner) {
		t.Error("inner packet changed")
	}
	if _, err := Frame(make([]byte, 70000), mac, src, &ipv6.ControlMessage{}, inner); err == nil {
		t.Error("framed a packet without its destination address")
	}
	if _, err := Frame(make([]byte, 100), mac, src, cm, inner); err == nil {
		t.Error("framed into a buffer too small")
	}
}

// sixInFour is a 6in4 packet as a raw IPv4 socket gives one the kernel
// reassembled: an outer header with options (the relay drops them), the
// reassembled length, DF clear, an ID, then the inner IPv6 packet.
func sixInFour(t *testing.T, inner []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TOS: 0xb9, Id: 0x1234, TTL: 57, Protocol: layers.IPProtocolIPv6,
		SrcIP: net.ParseIP("203.0.113.1").To4(), DstIP: net.ParseIP("203.0.113.2").To4(),
		Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}}
	b := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(b, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, gopacket.Payload(inner)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestFrame4: the frame written to the tap for reassembled 6in4 is what
// the data plane's decapsulation reads (tc_6in4_decap): Ethernet to the
// tap's MAC, an option-less IPv4 header with the received addresses, TOS
// and TTL, protocol 41, the whole length, no fragment flags and a valid
// checksum, then the inner packet untouched. Decoded and checksummed with
// gopacket, not with the code under test.
func TestFrame4(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0xfa, 0x01}
	inner := append([]byte{0x60}, bytes.Repeat([]byte{1, 2, 3, 4}, 749)...) // 2997 bytes
	pkt := sixInFour(t, inner)
	f, err := Frame4(make([]byte, 70000), mac, pkt)
	if err != nil {
		t.Fatal(err)
	}
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if eth == nil || ip == nil {
		t.Fatalf("not Ethernet + IPv4: %v", p)
	}
	if !bytes.Equal(eth.DstMAC, mac) || !bytes.Equal(eth.SrcMAC, mac) || eth.EthernetType != layers.EthernetTypeIPv4 {
		t.Errorf("ethernet %v -> %v type %v, want the tap's %v both ways, IPv4", eth.SrcMAC, eth.DstMAC, eth.EthernetType, mac)
	}
	if ip.IHL != 5 || len(ip.Options) != 0 || ip.TOS != 0xb9 || ip.TTL != 57 || ip.Protocol != layers.IPProtocolIPv6 ||
		int(ip.Length) != 20+len(inner) || ip.Flags != 0 || ip.FragOffset != 0 ||
		!ip.SrcIP.Equal(net.ParseIP("203.0.113.1")) || !ip.DstIP.Equal(net.ParseIP("203.0.113.2")) {
		t.Errorf("ipv4 header %+v", ip)
	}
	want := ip.Checksum
	ip.Checksum = 0
	b := gopacket.NewSerializeBuffer()
	if err := ip.SerializeTo(b, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
		t.Fatal(err)
	}
	if got := ip.Checksum; got != want {
		t.Errorf("header checksum %#04x, want %#04x", want, got)
	}
	if !bytes.Equal(f[14+20:], inner) {
		t.Error("inner packet changed")
	}
	for name, bad := range map[string][]byte{
		"too short":            pkt[:19],
		"ipv6":                 append([]byte{0x60}, pkt[1:]...),
		"not protocol 41":      append(append(bytes.Clone(pkt[:9]), 4), pkt[10:]...),
		"length is not whole":  pkt[:len(pkt)-1],
		"header over the data": append([]byte{0x4f}, pkt[1:40]...),
	} {
		if _, err := Frame4(make([]byte, 70000), mac, bad); err == nil {
			t.Errorf("%s: framed", name)
		}
	}
	if _, err := Frame4(make([]byte, 100), mac, pkt); err == nil {
		t.Error("framed into a buffer too small")
	}
}

// fragSize is the ancillary data the kernel adds for a reassembled packet
// on a socket with IP_RECVFRAGSIZE (ip_cmsg_recv_fragsize).
func fragSize(level, typ int32, size uint32) []byte {
	b := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], size)
	return b
}

// TestReassembled: only a packet the kernel reassembled (the largest
// fragment's size in the ancillary data) is handed over; protocol 41 that
// arrived whole (no such message) is left alone.
func TestReassembled(t *testing.T) {
	for _, c := range []struct {
		name string
		oob  []byte
		want bool
	}{
		{"fragment size 1280", fragSize(unix.IPPROTO_IP, unix.IP_RECVFRAGSIZE, 1280), true},
		{"nothing: arrived whole", nil, false},
		{"another message", fragSize(unix.IPPROTO_IP, unix.IP_TTL, 64), false},
		{"ipv6's fragment size", fragSize(unix.IPPROTO_IPV6, unix.IPV6_RECVFRAGSIZE, 1280), false},
		{"two messages, the second the size", append(fragSize(unix.IPPROTO_IP, unix.IP_TTL, 64),
			fragSize(unix.IPPROTO_IP, unix.IP_RECVFRAGSIZE, 548)...), true},
		{"truncated", fragSize(unix.IPPROTO_IP, unix.IP_RECVFRAGSIZE, 1280)[:10], false},
	} {
		if got := Reassembled(c.oob); got != c.want {
			t.Errorf("%s: Reassembled %t, want %t", c.name, got, c.want)
		}
	}
}
