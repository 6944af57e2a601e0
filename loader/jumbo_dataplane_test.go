package loader

// Multi-buffer (jumbo) frames through xdpr_main with BPF_PROG_TEST_RUN. A
// frame longer than a page less the head- and tailroom (3520 octets on
// x86) reaches the program in several buffers, the first holding 3520
// octets, as a veth of MTU 9000 hands a jumbo frame over. The router lab's
// lan0 and wan0 get MTU 9000, and a tunnel tj the largest tunnel MTU over
// it, 8960. Expected frames come from the same models as the other tables.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

const (
	jumboMTU    = 9000
	jumboTunMTU = jumboMTU - 40
	// What BPF_PROG_TEST_RUN puts in the first buffer on x86: a 4 KiB
	// page less 256 octets of headroom and 320 of skb_shared_info.
	testRunLinear = 3520
)

var jumboTunnel = labTunnel{"tj", "02:00:00:00:0f:04", "100.104.0.0/16", "2001:db8:100::4", jumboTunMTU, 64, false}

// newJumboRouterLab is the tunnel lab with MTU 9000 on lan0 and wan0 and
// the jumbo tunnel tj.
func newJumboRouterLab(t testing.TB) *routerLab {
	rl, _ := newTunnelRouterLab(t)
	lt := jumboTunnel
	if err := rl.lab.MustExec(rl.ns,
		[]string{"ip", "link", "set", "lan0", "mtu", fmt.Sprint(jumboMTU)},
		[]string{"ip", "link", "set", "wan0", "mtu", fmt.Sprint(jumboMTU)},
		[]string{"ip", "link", "add", lt.name, "type", "ifb"},
		[]string{"ip", "link", "set", lt.name, "mtu", fmt.Sprint(lt.mtu), "up"},
		[]string{"ip", "route", "add", lt.route, "dev", lt.name}); err != nil {
		t.Fatal(err)
	}
	rl.multiBufferPorts(t, "lan0", "wan0")
	d := &Dataplane{maps: *rl.maps}
	err := rl.lab.Do(rl.ns, func() error {
		ifc, err := net.InterfaceByName(lt.name)
		if err != nil {
			return err
		}
		return d.PutTunnel(Tunnel{Name: lt.name, Ifindex: ifc.Index, MAC: ifc.HardwareAddr, Local: tunLocal,
			Remote: netip.MustParseAddr(lt.remote), MTU: lt.mtu, HopLimit: lt.hop})
	})
	if err != nil {
		t.Fatal(err)
	}
	return rl
}

// multiBufferPorts puts the ports into xdpr_tx_ports_mb: the tables test
// the program's multi-buffer paths whatever this kernel's redirect does
// with such frames (before 6.3 it takes none, so setTxPorts leaves them
// out: TestTransmitsMultiBuffer).
func (rl *routerLab) multiBufferPorts(t testing.TB, ports ...string) {
	t.Helper()
	err := rl.lab.Do(rl.ns, func() error {
		for _, port := range ports {
			ifindex := uint32(rl.ifindex[port])
			if err := rl.maps.XdprTxPortsMb.Put(ifindex, ifindex); err != nil {
				return fmt.Errorf("%s into xdpr_tx_ports_mb: %w", port, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// bigDstOpts is a destination options header of n options of 248 octets
// (n = 7: 1752 octets, a multiple of 8 as the header must be).
func bigDstOpts(n int) *layers.IPv6Destination {
	h := &layers.IPv6Destination{}
	for range n {
		h.Options = append(h.Options, &layers.IPv6DestinationOption{OptionType: 0x1e, OptionData: make([]byte, 248)})
	}
	return h
}

func jumboCases(t *testing.T) []tunCase {
	tj := jumboTunnel.model()
	lan := labIfaceByName("lan0")
	lanDst, lanSrc := mustMAC(lan.peerMAC), mustMAC(lan.mac)
	routerIP := netip.MustParseAddr(strings.Split(lan.v4, "/")[0])
	fwd := func(name string, f []byte, counter, egress string) tunCase {
		return tunCase{name, "lan0", f, xdpRedirect, counter, expectForward(f, egress)}
	}
	pass := func(name, ingress string, f []byte, counter string) tunCase {
		return tunCase{name, ingress, f, xdpPass, counter, nil}
	}
	enc := func(name string, f []byte) tunCase {
		return tunCase{name, "lan0", f, xdpRedirect, "tun_encap", modelEncap(f, tj)}
	}
	toHost := func(opts ...frameOpt) []byte {
		return udp4(t, "198.51.100.9", "10.0.1.2", append([]frameOpt{to(wanMAC), from(gwMAC)}, opts...)...)
	}
	dec := func(name string, inner []byte) tunCase {
		f := ipip6(inner, jumboTunnel.remote, tunLocal.String(), 0)
		want, _ := modelDecap(f, jumboTunMTU, lanDst, lanSrc)
		return tunCase{name, "wan0", f, xdpRedirect, "tun_decap", want}
	}
	overTun := udp4(t, "10.0.1.2", "100.104.1.1", totalLen(jumboTunMTU+1))
	noDF := udp4(t, "10.0.1.2", "100.104.1.1", totalLen(jumboTunMTU+1), ipv4(func(ip *layers.IPv4) { ip.Flags = 0 }))
	return []tunCase{
		fwd("ipv4 udp of the mtu forwarded", udp4(t, "10.0.1.2", "198.51.100.7", totalLen(jumboMTU)), "fwd_ipv4", "wan0"),
		fwd("ipv4 tcp forwarded", udp4(t, "10.0.1.2", "198.51.100.7", tcp(), totalLen(8000)), "fwd_ipv4", "wan0"),
		fwd("ipv6 udp of the mtu forwarded", udp6(t, "2001:db8:1::2", "2001:db8:100::7", totalLen(jumboMTU)), "fwd_ipv6", "wan0"),
		fwd("ipv6 tcp after destination options forwarded", udp6(t, "2001:db8:1::2", "2001:db8:100::7", tcp(), ext(dstOpts(12)), totalLen(jumboMTU-16)), "fwd_ipv6", "wan0"),
		fwd("just over the first buffer forwarded", udp4(t, "10.0.1.2", "198.51.100.7", totalLen(testRunLinear-14+1)), "fwd_ipv4", "wan0"),
		// Over the egress MTU: the kernel sends frag-needed / too-big.
		pass("ipv4 over the egress mtu", "lan0", udp4(t, "10.0.1.2", "10.0.4.2", totalLen(jumboMTU)), "pass_frag_needed"),
		pass("ipv6 over the egress mtu", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:4::2", totalLen(jumboMTU)), "pass_frag_needed"),
		pass("ipv4 shorter than its length", "lan0", cut(udp4(t, "10.0.1.2", "198.51.100.7", totalLen(jumboMTU)), 8000), "pass_truncated"),
		pass("ipv6 shorter than its length", "lan0", cut(udp6(t, "2001:db8:1::2", "2001:db8:100::7", totalLen(jumboMTU)), 8000), "pass_truncated"),
		pass("ipv6 extension headers past the first buffer", "lan0",
			udp6(t, "2001:db8:1::2", "2001:db8:100::7", ext(bigDstOpts(7), bigDstOpts(7)), totalLen(jumboMTU-2*1752)), "pass_mb_headers"),

		// Into the tunnel of MTU 8960: encapsulated to 9000 octets.
		enc("encap udp of the tunnel mtu", udp4(t, "10.0.1.2", "100.104.1.1", totalLen(jumboTunMTU))),
		enc("encap tcp", udp4(t, "10.0.1.2", "100.104.1.1", tcp(), totalLen(6000))),
		{"df over the tunnel mtu answered with frag needed", "lan0", overTun, xdpRedirect, "tun_icmp_frag_needed",
			modelFragNeeded(overTun, routerIP, jumboTunMTU)},
		pass("no df over the tunnel mtu to the slow path", "lan0", noDF, "pass_tun_oversize"),
		// Out of it: 9000 octets decapsulated to a LAN host.
		dec("decap udp of the tunnel mtu", toHost(totalLen(jumboTunMTU))),
		dec("decap tcp", toHost(tcp(), totalLen(7000))),
		// An outer fragment of ipip6 is the kernel's to reassemble, counted
		// with every buffer as all counters are.
		pass("outer fragment of ipip6 to the kernel", "wan0",
			outerFragment(ipip6(toHost(totalLen(jumboTunMTU-8)), jumboTunnel.remote, tunLocal.String(), 0), 0, true), "pass_tun_fragment"),
	}
}

// runJumboCase runs c in rl and checks verdict, output and counters.
func runJumboCase(t *testing.T, rl *routerLab, c tunCase) {
	t.Helper()
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
		if !bytes.Equal(out, want) {
			t.Errorf("output frame differs: %s", diffBytes(out, want))
		}
		if verdict == xdpRedirect {
			if err := verifyChecksums(out); err != nil {
				t.Errorf("output frame: %v", err)
			}
		}
		// Bytes of the whole frame, every buffer.
		return rl.checkCounters(delta, wantCounter, len(c.frame))
	})
	if err != nil {
		t.Error(err)
	}
}

// TestJumboDataplane: multi-buffer frames forwarded, encapsulated into and
// decapsulated from a tunnel of MTU 8960, or answered or left to the
// kernel as a single-buffer frame of their size would be.
func TestJumboDataplane(t *testing.T) {
	rl := newJumboRouterLab(t)
	for _, c := range jumboCases(t) {
		if len(c.frame) <= testRunLinear {
			t.Fatalf("%s: %d octets fit one buffer", c.name, len(c.frame))
		}
		t.Run(c.name, func(t *testing.T) { runJumboCase(t, rl, c) })
	}
}

// TestJumboEgressWithoutMultiBuffer: a port whose driver cannot transmit
// a multi-buffer frame (not in xdpr_tx_ports_mb) gets none by redirect,
// where the kernel would drop it: the kernel forwards it instead. Frames
// of one buffer still take the fast path to it.
func TestJumboEgressWithoutMultiBuffer(t *testing.T) {
	rl := newJumboRouterLab(t)
	if err := rl.maps.XdprTxPortsMb.Delete(uint32(rl.ifindex["wan0"])); err != nil {
		t.Fatalf("wan0 was not a multi-buffer egress: %v", err)
	}
	for _, c := range []tunCase{
		{"jumbo forward", "lan0", udp4(t, "10.0.1.2", "198.51.100.7", totalLen(jumboMTU)), xdpPass, "pass_mb_egress", nil},
		{"jumbo ipv6 forward", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::7", totalLen(jumboMTU)), xdpPass, "pass_mb_egress", nil},
		{"jumbo encap", "lan0", udp4(t, "10.0.1.2", "100.104.1.1", totalLen(jumboTunMTU)), xdpPass, "pass_mb_egress", nil},
		{"small forward still fast", "lan0", udp4(t, "10.0.1.2", "198.51.100.7"), xdpRedirect, "fwd_ipv4",
			expectForward(udp4(t, "10.0.1.2", "198.51.100.7"), "wan0")},
	} {
		t.Run(c.name, func(t *testing.T) { runJumboCase(t, rl, c) })
	}
}

// TestJumboShortFirstBuffer: a multi-buffer frame whose first buffer is
// shorter than XDPR_MB_LINEAR_MIN goes to the kernel untouched. Needs a
// kernel whose BPF_PROG_TEST_RUN takes the first buffer's length from
// xdp_md.data_end (6.18).
func TestJumboShortFirstBuffer(t *testing.T) {
	rl := newJumboRouterLab(t)
	frame := udp4(t, "10.0.1.2", "198.51.100.7", totalLen(jumboMTU))
	want := rl.counterIndex(t, "pass_mb_headers")
	prog := rl.progs["lan0"]
	err := rl.lab.Do(rl.ns, func() error {
		for _, linear := range []int{64, 128, 255} {
			before, err := counterSnapshot(rl.maps.XdprCounters)
			if err != nil {
				return err
			}
			opts := ebpf.RunOptions{
				Data:    frame,
				DataOut: make([]byte, len(frame)+256),
				Context: xdpMD{DataEnd: uint32(linear), IngressIfindex: uint32(rl.ifindex["lan0"])},
				Repeat:  1,
			}
			verdict, err := prog.Run(&opts)
			if errors.Is(err, unix.EINVAL) {
				t.Skipf("this kernel's BPF_PROG_TEST_RUN cannot make a first buffer of %d octets: %v", linear, err)
			}
			if err != nil {
				return err
			}
			after, err := counterSnapshot(rl.maps.XdprCounters)
			if err != nil {
				return err
			}
			for i := range after {
				after[i].Packets -= before[i].Packets
				after[i].Bytes -= before[i].Bytes
			}
			if verdict != xdpPass || !bytes.Equal(opts.DataOut, frame) {
				t.Errorf("first buffer %d: verdict %s, output %s; want XDP_PASS, untouched",
					linear, verdictName(verdict), diffBytes(opts.DataOut, frame))
			}
			if err := rl.checkCounters(after, want, len(frame)); err != nil {
				t.Errorf("first buffer %d: %v", linear, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestJumboNPT: NPTv6 of multi-buffer frames, checksum-neutral and
// preserve-host (which rewrites the L4 checksum in the first buffer).
func TestJumboNPT(t *testing.T) {
	rl := newJumboRouterLab(t)
	rules := []nptTestRule{nptTestRules[2], nptTestRules[4]}
	rl.setNPT(t, rules)
	var cases []nptCase
	const remote = "2001:db8:100::1"
	for i := range rules {
		r := &rules[i]
		in, out := r.host(false, "::1234:5678:9abc:def0"), r.host(true, "::1234:5678:9abc:def0")
		for _, c := range []struct {
			name    string
			ingress string
			frame   []byte
			counter string
			egress  string
			dnpt    bool
		}{
			{"snpt-udp", "lan0", udp6(t, in, remote, totalLen(jumboMTU)), "fwd_npt_snpt", "wan0", false},
			{"dnpt-tcp", "wan0", udp6(t, remote, out, tcp(), onWAN(), totalLen(jumboMTU)), "fwd_npt_dnpt", "lan0", true},
			{"snpt-dstopts-tcp", "lan0", udp6(t, in, remote, tcp(), ext(dstOpts(12)), totalLen(7000)), "fwd_npt_snpt", "wan0", false},
		} {
			cases = append(cases, nptCase{dpCase: dpCase{name: r.name + "/" + c.name, ingress: c.ingress, frame: c.frame,
				verdict: xdpRedirect, counter: c.counter, egress: c.egress}, rule: r, dnpt: c.dnpt})
		}
	}
	testNPTCases(t, rl, cases)
}
