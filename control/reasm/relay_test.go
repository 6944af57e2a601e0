package reasm

import (
	"bytes"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/ipv6"
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
