package loader

// FuzzTunnel runs xdpr_main on mutated frames arriving on the LAN port
// (encapsulation) or the WAN port (decapsulation) and checks the data plane
// against the reference model in tunnelmodel_test.go: where the model
// makes a claim (a clean packet into a tunnel, a clean ipip6 packet for a
// LAN host) the verdict and the bytes must match; everywhere else a passed
// frame must be untouched, nothing may be encapsulated that the model does
// not encapsulate, and exactly one counter must count the packet.
//
//	go test -run '^$' -fuzz FuzzTunnel -fuzztime 60s -fuzzminimizetime 5s ./loader   (as root)
//
// Each execution switches into the lab namespace and reads every counter,
// so minimising a new interesting input with the default one-minute budget
// looks like a stall ("0/sec"); -fuzzminimizetime keeps that short.
// Plain `go test` runs the seed corpus: every frame of the tunnel table.

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

const (
	fuzzLAN = 0
	fuzzWAN = 1
)

type prediction struct {
	claim   bool
	verdict uint32
	out     []byte
	// alt is a second acceptable outcome: a frag-needed may be dropped
	// by the ICMP rate limiter instead.
	altVerdict uint32
	altCounter string
}

func martian4(src, dst [4]byte) bool {
	switch {
	case dst[0]&0xf0 == 0xe0 || dst == [4]byte{255, 255, 255, 255}:
		return true
	case src[0] == 127 || dst[0] == 127 || src[0] == 0 || dst[0] == 0:
		return true
	case src[0]&0xf0 == 0xe0 || src == [4]byte{255, 255, 255, 255}:
		return true
	}
	return false
}

// innerSourceDenied is the model of the tunnels' inner source filter: 0/8,
// 127/8, 224/3 and the lab's labSourceFilter.
func innerSourceDenied(src [4]byte) bool {
	if src[0] == 0 || src[0] == 127 || src[0] >= 224 {
		return true
	}
	for _, n := range labSourceFilter {
		if n.Prefix.Contains(netip.AddrFrom4(src)) {
			return true
		}
	}
	return false
}

// cleanIPv4 is the model's notion of a packet XDP may rewrite: option-less,
// whole, checksummed, not a fragment, not martian, TTL > 1.
func cleanIPv4(ip []byte) bool {
	if len(ip) < 20 || ip[0] != 0x45 {
		return false
	}
	tot := int(binary.BigEndian.Uint16(ip[2:4]))
	if tot < 20 || tot > len(ip) || onesSum(ip[:20]) != 0xffff {
		return false
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
		return false
	}
	if martian4([4]byte(ip[12:16]), [4]byte(ip[16:20])) {
		return false
	}
	return ip[8] > 1
}

// tunnelFor is the lab's routing table for tunnel prefixes.
func tunnelFor(dst netip.Addr) (labTunnel, bool) {
	best, bits := labTunnel{}, -1
	for _, lt := range labTunnels {
		p := netip.MustParsePrefix(lt.route)
		if p.Contains(dst) && p.Bits() > bits {
			best, bits = lt, p.Bits()
		}
	}
	return best, bits >= 0
}

func predictEncap(frame []byte) prediction {
	if len(frame) < 34 || !bytes.Equal(frame[0:6], mustMAC(lanMAC)) || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return prediction{}
	}
	ip := frame[14:]
	if !cleanIPv4(ip) {
		return prediction{}
	}
	lt, ok := tunnelFor(netip.AddrFrom4([4]byte(ip[16:20])))
	if !ok {
		return prediction{}
	}
	if lt.nat44 || lt.name == "t3" {
		return prediction{claim: true, verdict: xdpPass}
	}
	tot := int(binary.BigEndian.Uint16(ip[2:4]))
	if tot > lt.mtu {
		if binary.BigEndian.Uint16(ip[6:8])&0x4000 == 0 {
			return prediction{claim: true, verdict: xdpPass}
		}
		if ip[9] == 1 && tot >= 21 {
			switch ip[20] {
			case 3, 4, 5, 11, 12:
				return prediction{claim: true, verdict: xdpPass}
			}
		}
		if tot < 28 {
			return prediction{} // nothing to quote: the model makes no claim
		}
		return prediction{claim: true, verdict: xdpRedirect, out: modelFragNeeded(frame, netip.MustParseAddr("10.0.1.1"), lt.mtu),
			altVerdict: xdpDrop, altCounter: "drop_tun_icmp_ratelimit"}
	}
	return prediction{claim: true, verdict: xdpRedirect, out: modelEncap(frame, lt.model())}
}

func predictDecap(frame []byte) prediction {
	if len(frame) < 54 || !bytes.Equal(frame[0:6], mustMAC(wanMAC)) || binary.BigEndian.Uint16(frame[12:14]) != 0x86dd {
		return prediction{}
	}
	ip6 := frame[14:]
	plen := int(binary.BigEndian.Uint16(ip6[4:6]))
	if ip6[0]>>4 != 6 || 54+plen > len(frame) {
		return prediction{}
	}
	ext := 0
	switch {
	case ip6[6] == 4:
	case ip6[6] == 60 && plen >= 8 && frame[54] == 4 && frame[55] == 0 && frame[56] == 4 && frame[57] == 1 &&
		frame[59] == 1 && frame[60] == 1 && frame[61] == 0:
		// The encapsulation limit header of a Linux peer, any limit.
		ext = 8
	default:
		return prediction{}
	}
	src, dst := netip.AddrFrom16([16]byte(ip6[8:24])), netip.AddrFrom16([16]byte(ip6[24:40]))
	var lt labTunnel
	found := false
	for _, c := range labTunnels {
		if netip.MustParseAddr(c.remote) == src && dst == tunLocal {
			lt, found = c, true
		}
	}
	if !found {
		if dst == tunLocal {
			return prediction{claim: true, verdict: xdpDrop}
		}
		return prediction{}
	}
	inner := frame[54+ext : 54+plen]
	// A whole, checksummed header with a source no tunnel may bring is
	// dropped before anything else is looked at.
	if len(inner) >= 20 && inner[0] == 0x45 && int(binary.BigEndian.Uint16(inner[2:4])) == plen-ext &&
		onesSum(inner[:20]) == 0xffff && innerSourceDenied([4]byte(inner[12:16])) {
		return prediction{claim: true, verdict: xdpDrop}
	}
	if !cleanIPv4(inner) || int(binary.BigEndian.Uint16(inner[2:4])) != plen-ext {
		return prediction{claim: true, verdict: xdpPass}
	}
	if netip.AddrFrom4([4]byte(inner[16:20])) != netip.MustParseAddr("10.0.1.2") {
		return prediction{}
	}
	lan := labIfaceByName("lan0")
	out, ok := modelDecap(frame[:54+plen], lt.mtu, mustMAC(lan.peerMAC), mustMAC(lan.mac))
	if !ok {
		return prediction{claim: true, verdict: xdpDrop}
	}
	return prediction{claim: true, verdict: xdpRedirect, out: out}
}

func FuzzTunnel(f *testing.F) {
	rl, _ := newTunnelRouterLab(f)
	for _, c := range tunnelCases(f) {
		dir := byte(fuzzLAN)
		if c.ingress == "wan0" {
			dir = fuzzWAN
		}
		f.Add(dir, c.frame)
	}
	altIdx := map[string]int{}
	for i, n := range rl.names {
		altIdx[n] = i
	}
	f.Fuzz(func(t *testing.T, dir byte, frame []byte) {
		if len(frame) < 14 || len(frame) > 3000 {
			return
		}
		ingress, pred := "lan0", prediction{}
		if dir%2 == fuzzWAN {
			ingress, pred = "wan0", predictDecap(frame)
		} else {
			pred = predictEncap(frame)
		}
		err := rl.lab.Do(rl.ns, func() error {
			verdict, out, delta, err := rl.runOnce(frame, ingress)
			if err != nil {
				return err
			}
			total := 0
			for _, d := range delta {
				total += int(d.Packets)
			}
			if total != 1 {
				t.Errorf("%d counter increments, want exactly 1", total)
			}
			if verdict == xdpPass && !bytes.Equal(out, frame) {
				t.Errorf("passed frame was modified: %s", diffBytes(out, frame))
			}
			if !pred.claim {
				// No claim: at most a plain forward, never a tunnel.
				if verdict == xdpRedirect && len(out) >= 14 && ingress == "lan0" &&
					binary.BigEndian.Uint16(out[12:14]) == 0x86dd && len(out) > 20 && out[20] == 4 {
					t.Errorf("encapsulated a packet the model does not: % x", frame)
				}
				if verdict != xdpPass && verdict != xdpRedirect && verdict != xdpDrop {
					t.Errorf("verdict %s", verdictName(verdict))
				}
				return nil
			}
			if pred.altCounter != "" && verdict == pred.altVerdict && delta[altIdx[pred.altCounter]].Packets == 1 {
				return nil
			}
			if verdict != pred.verdict {
				t.Errorf("verdict %s, model says %s (frame % x)", verdictName(verdict), verdictName(pred.verdict), frame)
				return nil
			}
			if pred.out != nil && !bytes.Equal(out, pred.out) {
				t.Errorf("output differs from the model: %s\n got % x\nwant % x", diffBytes(out, pred.out), out, pred.out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
