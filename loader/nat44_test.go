package loader

// NAT44 in XDP (bpf/include/nat44.h), as BPF_PROG_TEST_RUN cases in the
// tunnel data-plane lab with the conntrack gate on: conntrack entries with
// SNAT or DNAT are made with the conntrack CLI (whose NAT options make the
// kernel compute the reply tuple, as a real binding would), and a frame of
// the flow must leave translated and encapsulated (LAN -> nat44 tunnel) or
// decapsulated and translated back (tunnel -> LAN). The expected frames
// are built translated from scratch by gopacket (every checksum computed
// afresh, not updated) and passed through the tunnel reference model, so
// the incremental checksum arithmetic of the data plane is checked against
// an independent computation, and the output's IPv4 and TCP/UDP checksums
// are verified by summing. Every case that must not be translated leaves
// the frame untouched for the kernel, under its counter.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The nat44 tunnel of the lab (t1) gets this fixed IPv4.
const natFixed4 = "203.0.113.7"

// natLab is the tunnel lab with gated programs on lan0 and wan0 and t1's
// fixed IPv4 programmed.
type natLab struct {
	*ctLab
}

func newNATLab(t *testing.T) *natLab {
	t.Helper()
	rl, idx := newTunnelRouterLab(t)
	cl := &ctLab{routerLab: rl, gated: map[string]*ebpf.Program{}}
	lt := labTunnelByName("t1")
	if err := rl.lab.MustExec(rl.ns, []string{"ip", "addr", "add", natFixed4 + "/32", "dev", lt.name}); err != nil {
		t.Fatal(err)
	}
	d := &Dataplane{maps: *rl.maps}
	err := rl.lab.Do(rl.ns, func() error {
		ifc, err := net.InterfaceByName(lt.name)
		if err != nil {
			return err
		}
		err = d.PutTunnel(Tunnel{Name: lt.name, Ifindex: idx[lt.name], MAC: ifc.HardwareAddr, Local: tunLocal,
			Remote: netip.MustParseAddr(lt.remote), MTU: lt.mtu, HopLimit: lt.hop, NAT44: true,
			IPv4Address: netip.MustParseAddr(natFixed4)})
		if err != nil {
			return err
		}
		return cl.loadGated(t)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Fatalf("NAT44 test needs the conntrack CLI (Debian package conntrack; make test installs it): %v", err)
	}
	return &natLab{cl}
}

// natFrame builds an IPv4 TCP (ACK) or UDP frame from src:sport to
// dst:dport with every checksum computed by gopacket. Frames from the WAN
// side are wrapped by ipip6, which keeps only the IP packet.
func natFrame(t *testing.T, proto, src, dst string, sport, dport uint16) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TOS: 0x10, Id: 0x2a2a, Flags: layers.IPv4DontFragment, TTL: 64,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	var l4 gopacket.SerializableLayer
	switch proto {
	case "udp":
		ip.Protocol = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		if err := u.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		l4 = u
	case "tcp":
		ip.Protocol = layers.IPProtocolTCP
		c := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 0x11223344,
			Ack: 0x55667788, ACK: true, PSH: true, Window: 501}
		if err := c.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		l4 = c
	default:
		t.Fatalf("proto %q", proto)
	}
	pl := make([]byte, 61) // odd: the checksums' trailing octet
	for i := range pl {
		pl[i] = byte(i*13 + 5)
	}
	eth := &layers.Ethernet{DstMAC: mustMAC(lanMAC), SrcMAC: mustMAC(hostMAC), EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, l4, gopacket.Payload(pl)); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// toWAN0 addresses a frame to wan0 from its neighbour.
func toWAN0(b []byte) []byte { return set(set(b, 0, mustMAC(wanMAC)...), 6, mustMAC(gwMAC)...) }

// noUDPSum zeroes the UDP checksum of an IPv4 frame: "no checksum".
func noUDPSum(b []byte) []byte { return set(b, 14+20+6, 0, 0) }

// verifyInner checks the checksums of the IPv4 packet inside an ipip6
// frame, as verifyChecksums does for a plain one.
func verifyInner(frame []byte) error {
	if len(frame) < 14+40 || binary.BigEndian.Uint16(frame[12:14]) != uint16(layers.EthernetTypeIPv6) || frame[20] != 4 {
		return fmt.Errorf("not ipip6")
	}
	return verifyChecksums(append(bytes.Clone(frame[:12]), append([]byte{0x08, 0x00}, frame[54:]...)...))
}

// natCase is one NAT44 case: the conntrack entries present, the frame and
// its ingress, the verdict and counter, and the expected output (nil: the
// input, untouched).
type natCase struct {
	name    string
	entries [][]string
	ingress string
	frame   []byte
	verdict uint32
	counter string
	want    []byte
}

func natCases(t *testing.T) []natCase {
	const (
		host   = "10.0.1.2"    // behind lan0
		far    = "100.101.0.9" // routed into t1 (nat44)
		farT0  = "100.100.1.1" // routed into t0 (no nat44)
		wanFar = "198.51.100.9"
		natPt  = 61000
		fwdPt  = 8080 // port forward on the fixed IPv4
	)
	t1, t0 := labTunnelByName("t1"), labTunnelByName("t0")
	m1 := t1.model()
	lan := labIfaceByName("lan0")
	local := tunLocal.String()
	replied := []string{"-u", "SEEN_REPLY,ASSURED"}
	est := append([]string{"--state", "ESTABLISHED"}, replied...)
	snatUDP := ctEntry("udp", host, far, udpSport, udpDport, append([]string{"--src-nat", natFixed4 + ":" + strconv.Itoa(natPt)}, replied...)...)
	snatTCP := ctEntry("tcp", host, far, tcpSport, tcpDport, append([]string{"--src-nat", natFixed4 + ":" + strconv.Itoa(natPt)}, est...)...)
	// A port forward: fixed IPv4:8080 -> host:443 (TCP), 8080 -> 5353 (UDP).
	dnatTCP := ctEntry("tcp", far, natFixed4, tcpSport, fwdPt, append([]string{"--dst-nat", host + ":" + strconv.Itoa(tcpDport)}, est...)...)
	dnatUDP := ctEntry("udp", far, natFixed4, udpSport, fwdPt, append([]string{"--dst-nat", host + ":" + strconv.Itoa(udpDport)}, replied...)...)

	out := func(f []byte) []byte { return modelEncap(f, m1) }
	in := func(f []byte) []byte {
		w, ok := modelDecap(ipip6(f, t1.remote, local, 0), t1.mtu, mustMAC(lan.peerMAC), mustMAC(lan.mac))
		if !ok {
			t.Fatal("model drops")
		}
		return w
	}
	fromT1 := func(f []byte) []byte { return ipip6(f, t1.remote, local, 0) }
	fwd := func(name string, entries [][]string, ingress string, f []byte, counter string, want []byte) natCase {
		return natCase{name, entries, ingress, f, xdpRedirect, counter, want}
	}
	pass := func(name string, entries [][]string, ingress string, f []byte, counter string) natCase {
		return natCase{name, entries, ingress, f, xdpPass, counter, nil}
	}

	udpOut := natFrame(t, "udp", host, far, udpSport, udpDport)
	tcpOut := natFrame(t, "tcp", host, far, tcpSport, tcpDport)
	udpBack := natFrame(t, "udp", far, natFixed4, udpDport, natPt)
	tcpBack := natFrame(t, "tcp", far, natFixed4, tcpDport, natPt)
	tcpFwdIn := natFrame(t, "tcp", far, natFixed4, tcpSport, fwdPt)
	udpFwdIn := natFrame(t, "udp", far, natFixed4, udpSport, fwdPt)
	tcpFwdOut := natFrame(t, "tcp", host, far, tcpDport, tcpSport)
	udpFwdOut := natFrame(t, "udp", host, far, udpDport, udpSport)
	offFlags := 14 + 20 + 13

	return []natCase{
		// Masquerade: out translated and encapsulated, back decapsulated
		// and translated.
		fwd("snat udp out", [][]string{snatUDP}, "lan0", udpOut, "fwd_nat44_snat",
			out(natFrame(t, "udp", natFixed4, far, natPt, udpDport))),
		fwd("snat tcp out", [][]string{snatTCP}, "lan0", tcpOut, "fwd_nat44_snat",
			out(natFrame(t, "tcp", natFixed4, far, natPt, tcpDport))),
		fwd("snat udp out without checksum keeps none", [][]string{snatUDP}, "lan0", noUDPSum(udpOut), "fwd_nat44_snat",
			out(noUDPSum(natFrame(t, "udp", natFixed4, far, natPt, udpDport)))),
		fwd("un-snat udp reply in", [][]string{snatUDP}, "wan0", fromT1(udpBack), "fwd_nat44_dnat",
			in(natFrame(t, "udp", far, host, udpDport, udpSport))),
		fwd("un-snat tcp reply in", [][]string{snatTCP}, "wan0", fromT1(tcpBack), "fwd_nat44_dnat",
			in(natFrame(t, "tcp", far, host, tcpDport, tcpSport))),
		fwd("un-snat udp reply without checksum", [][]string{snatUDP}, "wan0", fromT1(noUDPSum(udpBack)), "fwd_nat44_dnat",
			in(noUDPSum(natFrame(t, "udp", far, host, udpDport, udpSport)))),
		// Port forwards on the fixed IPv4: in translated, the LAN host's
		// answer translated back and encapsulated.
		fwd("dnat tcp port forward in", [][]string{dnatTCP}, "wan0", fromT1(tcpFwdIn), "fwd_nat44_dnat",
			in(natFrame(t, "tcp", far, host, tcpSport, tcpDport))),
		fwd("dnat udp port forward in", [][]string{dnatUDP}, "wan0", fromT1(udpFwdIn), "fwd_nat44_dnat",
			in(natFrame(t, "udp", far, host, udpSport, udpDport))),
		fwd("un-dnat tcp answer out", [][]string{dnatTCP}, "lan0", tcpFwdOut, "fwd_nat44_snat",
			out(natFrame(t, "tcp", natFixed4, far, fwdPt, tcpSport))),
		fwd("un-dnat udp answer out", [][]string{dnatUDP}, "lan0", udpFwdOut, "fwd_nat44_snat",
			out(natFrame(t, "udp", natFixed4, far, fwdPt, udpSport))),

		// What stays the kernel's, untouched.
		pass("no entry", nil, "lan0", udpOut, "pass_ct_new"),
		pass("no entry back", nil, "wan0", fromT1(udpBack), "pass_ct_new"),
		pass("unreplied snat entry", [][]string{ctEntry("udp", host, far, udpSport, udpDport, "--src-nat", natFixed4+":"+strconv.Itoa(natPt))},
			"lan0", udpOut, "pass_ct_unreplied"),
		pass("snat tcp fin", [][]string{snatTCP}, "lan0", fixTCP(set(tcpOut, offFlags, 0x11)), "pass_ct_tcp_flags"),
		pass("snat tcp syn", [][]string{snatTCP}, "lan0", fixTCP(set(tcpOut, offFlags, 0x02)), "pass_ct_tcp_flags"),
		pass("snat tcp not established", [][]string{ctEntry("tcp", host, far, tcpSport, tcpDport,
			append([]string{"--src-nat", natFixed4, "--state", "SYN_RECV"}, replied...)...)}, "lan0", tcpOut, "pass_ct_tcp_state"),
		pass("snat to another address than the tunnel's", [][]string{ctEntry("udp", host, far, udpSport, udpDport,
			append([]string{"--src-nat", "203.0.113.99"}, replied...)...)}, "lan0", udpOut, "pass_ct_nat"),
		pass("snat into a tunnel without nat44", [][]string{ctEntry("udp", host, farT0, udpSport, udpDport,
			append([]string{"--src-nat", natFixed4}, replied...)...)}, "lan0", natFrame(t, "udp", host, farT0, udpSport, udpDport), "pass_ct_nat"),
		pass("snat out of a plain wan", [][]string{ctEntry("udp", host, wanFar, udpSport, udpDport,
			append([]string{"--src-nat", natFixed4}, replied...)...)}, "lan0", natFrame(t, "udp", host, wanFar, udpSport, udpDport), "pass_ct_nat"),
		pass("snat reply from a tunnel without nat44", [][]string{snatUDP}, "wan0",
			ipip6(udpBack, t0.remote, local, 0), "pass_ct_nat"),
		pass("snat reply to the fixed ipv4 arriving without a tunnel", [][]string{snatUDP}, "wan0",
			toWAN0(natFrame(t, "udp", far, natFixed4, udpDport, natPt)), "pass_ct_nat"),
		pass("port forward arriving without a tunnel", [][]string{dnatTCP}, "wan0",
			toWAN0(natFrame(t, "tcp", far, natFixed4, tcpSport, fwdPt)), "pass_ct_nat"),
		pass("snat and dnat on one entry", [][]string{ctEntry("udp", far, natFixed4, udpSport, fwdPt,
			append([]string{"--dst-nat", host + ":" + strconv.Itoa(udpDport), "--src-nat", "10.0.1.1"}, replied...)...)},
			"wan0", fromT1(udpFwdIn), "pass_ct_nat"),
		pass("established entry without nat into the nat44 tunnel", [][]string{ctEntry("udp", host, far, udpSport, udpDport, replied...)},
			"lan0", udpOut, "pass_tun_nat44"),
	}
}

func TestNAT44(t *testing.T) {
	nl := newNATLab(t)
	for _, c := range natCases(t) {
		t.Run(c.name, func(t *testing.T) {
			nl.conntrack(t, "-F")
			for _, e := range c.entries {
				nl.conntrack(t, e...)
			}
			verdict, out, delta, err := nl.run(nl.gated[c.ingress], c.frame, c.ingress)
			if err != nil {
				t.Fatal(err)
			}
			if verdict != c.verdict {
				t.Errorf("verdict %s, want %s", verdictName(verdict), verdictName(c.verdict))
			}
			want := c.want
			if want == nil {
				want = c.frame
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output frame differs: %s\n got % x\nwant % x", diffBytes(out, want), out, want)
			}
			if verdict == xdpRedirect {
				check := verifyChecksums
				if c.ingress == "lan0" {
					check = verifyInner
				}
				// A UDP checksum of 0 (none) is what those cases send.
				if err := check(out); err != nil && err.Error() != "UDP checksum absent" {
					t.Errorf("output frame: %v", err)
				}
			}
			if err := nl.checkCounters(delta[:routerXdprCounterXDPR_CNT__MAX], nl.counterIndex(t, c.counter), len(c.frame)); err != nil {
				t.Error(err)
			}
		})
	}
	nl.conntrack(t, "-F")
}
