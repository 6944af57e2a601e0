package loader

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// vxlanComparable is an encapsulated frame with what the kernel picks at
// random zeroed: the UDP source port (udp_flow_src_port hashes the inner
// flow with skb_get_hash, keyed by a secret the kernel draws at boot, so
// no program can reproduce it; XDP hashes the same flow into the same
// range) and with it the UDP checksum, and over IPv4 the identification
// (ip_select_ident's per-destination counters) and with it the header
// checksum. Both checksums are verified before (verifyChecksums).
func vxlanComparable(f []byte) []byte {
	f = bytes.Clone(f)
	if len(f) < 14+40+8 {
		return f
	}
	udp := 14 + 40
	if binary.BigEndian.Uint16(f[12:14]) == uint16(layers.EthernetTypeIPv4) {
		udp = 14 + 20
		copy(f[14+4:14+6], []byte{0, 0})
		copy(f[14+10:14+12], []byte{0, 0})
	}
	copy(f[udp:udp+2], []byte{0, 0})
	copy(f[udp+6:udp+8], []byte{0, 0})
	return f
}

// TestVXLANFastPathEqualsSlowPath: the same inner packet, once forwarded
// by the kernel into the vxlan netdev (the slow path: the netdev
// encapsulates, captured on the wire behind wan0) and once through XDP
// (prog.Run), must give the same frame but for the fields vxlanComparable
// names. The kernel computes the UDP checksum in software here (checksum
// offload off on wan0), so the captured frame carries it whole.
func TestVXLANFastPathEqualsSlowPath(t *testing.T) {
	rl := newVXLANRouterLab(t)
	if err := rl.lab.MustExec(rl.ns, []string{"ethtool", "-K", "wan0", "tx", "off"}); err != nil {
		t.Fatal(err)
	}
	peer := rl.lab.NS("p")
	lanSock, wanSock := openLANWAN(t, rl, peer)
	cases := []struct {
		name  string
		frame []byte
	}{
		{"ipv6 into vxlan over ipv4", udp6(t, "2001:db8:1::2", "2001:db8:b40::9")},
		{"ipv4 into vxlan over ipv4", udp4(t, "10.0.1.2", "10.45.0.9")},
		{"ipv6 into vxlan over ipv6", udp6(t, "2001:db8:1::2", "2001:db8:b60::9")},
		{"ipv4 into vxlan over ipv6", udp4(t, "10.0.1.2", "10.67.0.9")},
		{"tcp", udp6(t, "2001:db8:1::2", "2001:db8:b40::9", tcp())},
		{"ecn ce", udp6(t, "2001:db8:1::2", "2001:db8:b60::9", ipv6(func(ip *layers.IPv6) { ip.TrafficClass = 0x2b }))},
		{"ecn ect(0) over ipv4", udp4(t, "10.0.1.2", "10.45.0.9", ipv4(func(ip *layers.IPv4) { ip.TOS = 0x2a }))},
		{"odd length", udp6(t, "2001:db8:1::2", "2001:db8:b40::9", payload(33))},
		{"at the vxlan mtu", udp6(t, "2001:db8:1::2", "2001:db8:b40::9", payload(1450-40-8))},
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7348))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A nonce in the payload finds the kernel's frame on the wire;
			// the UDP or TCP checksum is made right again.
			frame := bytes.Clone(c.frame)
			l4 := 14 + 40
			if binary.BigEndian.Uint16(frame[12:14]) == uint16(layers.EthernetTypeIPv4) {
				l4 = 14 + 20
			}
			hdr := 8
			if frame[l4-40+6] == 6 || (l4 == 14+20 && frame[14+9] == 6) {
				hdr = 20
			}
			nonce := make([]byte, 12)
			for i := range nonce {
				nonce[i] = byte(rng.Uint32())
			}
			copy(frame[l4+hdr:], nonce)
			frame = fixL4Checksum(t, frame)
			fast, slow := fastAndSlow(t, rl, frame, "lan0", lanSock, wanSock, nonce)
			for what, f := range map[string][]byte{"XDP": fast, "kernel": slow} {
				if err := verifyChecksums(f); err != nil {
					t.Errorf("%s: %v", what, err)
				}
			}
			ks, _ := vxlanFields(slow)
			xs, _ := vxlanFields(fast)
			t.Logf("%d octets on the wire; source port: kernel %d, XDP %d", len(slow), ks, xs)
			if !bytes.Equal(vxlanComparable(fast), vxlanComparable(slow)) {
				t.Errorf("XDP and the kernel's vxlan differ (source port, checksums, IPv4 ID aside): %s\nxdp    % x\nkernel % x",
					diffBytes(vxlanComparable(fast), vxlanComparable(slow)), fast, slow)
			}
		})
	}
}

// fixL4Checksum recomputes the UDP or TCP checksum of an IPv4 or IPv6
// frame without extension headers.
func fixL4Checksum(t *testing.T, f []byte) []byte {
	t.Helper()
	var pseudo, l4 []byte
	var proto byte
	if binary.BigEndian.Uint16(f[12:14]) == uint16(layers.EthernetTypeIPv4) {
		ip := f[14:]
		proto, l4 = ip[9], ip[20:binary.BigEndian.Uint16(ip[2:4])]
		pseudo = append(append([]byte{}, ip[12:20]...), 0, proto, byte(len(l4)>>8), byte(len(l4)))
	} else {
		ip := f[14:]
		proto, l4 = ip[6], ip[40:40+binary.BigEndian.Uint16(ip[4:6])]
		pseudo = append([]byte{}, ip[8:40]...)
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(l4)))
		pseudo = append(pseudo, 0, 0, 0, proto)
	}
	off := map[byte]int{6: 16, 17: 6}[proto]
	if off == 0 {
		t.Fatalf("protocol %d", proto)
	}
	l4[off], l4[off+1] = 0, 0
	binary.BigEndian.PutUint16(l4[off:], rfc1071(append(pseudo, l4...)))
	return f
}

// TestVXLANDecapFastPathEqualsSlowPath: VXLAN from the configured remote,
// once received by the kernel (the netdev decapsulates, the kernel
// forwards the inner packet out of lan0, captured there) and once through
// XDP, must give the same frame, byte for byte.
func TestVXLANDecapFastPathEqualsSlowPath(t *testing.T) {
	rl := newVXLANRouterLab(t)
	peer := rl.lab.NS("p")
	lanSock, wanSock := openLANWAN(t, rl, peer)
	vx4, vx6 := labVXLANByName("vx4"), labVXLANByName("vx6")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7349))
	for _, c := range []struct {
		name          string
		inner         []byte
		remote, local string
		vni           uint32
		csum          bool
	}{
		{"ipv6 in vxlan over ipv4", udp6(t, "2001:db8:b40::5", "2001:db8:1::2", overlay(vx4)), "10.0.2.2", "10.0.2.1", 100, true},
		{"ipv4 in vxlan over ipv4", udp4(t, "10.45.0.5", "10.0.1.2", overlay(vx4)), "10.0.2.2", "10.0.2.1", 100, true},
		{"ipv4 in vxlan over ipv4, no checksum", udp4(t, "10.45.0.5", "10.0.1.2", overlay(vx4), tcp()), "10.0.2.2", "10.0.2.1", 100, false},
		{"ipv6 in vxlan over ipv6", udp6(t, "2001:db8:b60::5", "2001:db8:1::2", overlay(vx6), tcp()), "2001:db8:2::2", "2001:db8:2::1", 200, true},
		{"ipv4 in vxlan over ipv6, ect(1)", udp4(t, "10.67.0.5", "10.0.1.2", overlay(vx6), ipv4(func(ip *layers.IPv4) { ip.TOS = 0x29 })),
			"2001:db8:2::2", "2001:db8:2::1", 200, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			inner := bytes.Clone(c.inner)
			l4 := 14 + 40
			if binary.BigEndian.Uint16(inner[12:14]) == uint16(layers.EthernetTypeIPv4) {
				l4 = 14 + 20
			}
			nonce := make([]byte, 12)
			for i := range nonce {
				nonce[i] = byte(rng.Uint32())
			}
			copy(inner[l4+20:], nonce)
			inner = fixL4Checksum(t, inner)
			frame := vxlanFrame(inner, c.remote, c.local, c.vni, 4789, c.csum)
			fast, slow := fastAndSlow(t, rl, frame, "wan0", wanSock, lanSock, nonce)
			if !bytes.Equal(fast, slow) {
				t.Errorf("XDP and the kernel differ: %s\nxdp    % x\nkernel % x", diffBytes(fast, slow), fast, slow)
			}
		})
	}
}

// fastAndSlow runs frame through XDP (prog.Run on port ingress, which
// must redirect) and through the kernel's path (sent on in, caught on out
// by the nonce it carries), and returns both outputs.
func fastAndSlow(t *testing.T, rl *routerLab, frame []byte, ingress string, in, out *rawSock, nonce []byte) ([]byte, []byte) {
	t.Helper()
	var fast []byte
	err := rl.lab.Do(rl.ns, func() error {
		v, o, _, err := rl.runOnce(frame, ingress)
		if err != nil {
			return err
		}
		if v != xdpRedirect {
			t.Fatalf("XDP verdict %s, want XDP_REDIRECT", verdictName(v))
		}
		fast = o
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.send(frame); err != nil {
		t.Fatal(err)
	}
	slow := out.recvMatching(nonce, time.Second)
	if slow == nil {
		t.Fatalf("the kernel sent nothing out of the port after %s", ingress)
	}
	return fast, slow
}
