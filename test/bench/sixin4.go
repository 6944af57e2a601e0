package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket/layers"
)

// The 6in4 scenarios run xdprouter configured by `xdprouter apply` with one
// 6in4 tunnel (mode: 6in4, on an xdprouter-owned netdev), as the ipip6
// encap/decap scenarios do (gated, default firewall, flow primed):
//
//   - 6in4-encap: r0 faces the LAN, r1 the WAN; gen's IPv6 to sixin4EncDst
//     is routed into bench6e (remote sink's IPv4, local r1's, outer TTL
//     startTTL-1, which the sink counts as one forwarding hop), so sink
//     receives protocol 41.
//   - 6in4-decap: r0 is the WAN; gen sends protocol 41 (remote gen, local
//     r0) carrying IPv6 from sixin4FarSrc (a host behind the broker) to
//     sink, forwarded out of r1 with the inner hop limit less one.
//
// This kernel has no sit module, so the kernel's own 6in4 cannot be
// measured. Their baselines are xdprouter's own slow path on the same
// tunnel: tc-6in4-encap / tc-6in4-decap keep `apply`'s setup and swap
// XDP_PASS into its links on r0 and r1 (as kernel-nat44 does), so the
// kernel forwards (conntrack, the default firewall) into the netdev, whose
// TC egress program encapsulates, and the WAN's TC ingress program
// decapsulates onto the netdev: what xdprouter does without XDP.
const (
	sc6in4Encap   = "6in4-encap"
	scTC6in4Encap = "tc-6in4-encap"
	sc6in4Decap   = "6in4-decap"
	scTC6in4Decap = "tc-6in4-decap"
	sixin4EncDev  = "bench6e"
	sixin4DecDev  = "bench6d"
)

var (
	// sixin4EncDst is in the prefix routed into the encap tunnel.
	sixin4EncDst = netip.MustParseAddr("2001:db8:64::9")
	// sixin4FarSrc is the decap frames' inner source, in the prefix the
	// decap tunnel routes back (the primed flow's replies go there).
	sixin4FarSrc = netip.MustParseAddr("2001:db8:65::9")
)

// sixin4Scenario is the XDP scenario of a TC slow-path 6in4 one, or itself.
func sixin4Scenario(sc string) string {
	switch sc {
	case scTC6in4Encap:
		return sc6in4Encap
	case scTC6in4Decap:
		return sc6in4Decap
	}
	return sc
}

func is6in4Scenario(sc string) bool {
	return sixin4Scenario(sc) == sc6in4Encap || sixin4Scenario(sc) == sc6in4Decap
}

// sixin4Config is the scenario's `xdprouter apply` config.
func sixin4Config(sc string) string {
	if sixin4Scenario(sc) == sc6in4Encap {
		return fmt.Sprintf(`wan: {interface: r1}
lan: [{interface: r0}]
tunnels:
  - {name: %s, mode: 6in4, remote: "%s", local: "%s", address: "fd00:64::2/64", gateway: "fd00:64::1", routes: ["%s"], ttl: %d}
`, sixin4EncDev, sinkV4, r1V4, netip.PrefixFrom(sixin4EncDst, 48).Masked(), startTTL-1)
	}
	return fmt.Sprintf(`wan: {interface: r0}
lan: [{interface: r1}]
tunnels:
  - {name: %s, mode: 6in4, remote: "%s", local: "%s", address: "fd00:65::2/64", gateway: "fd00:65::1", routes: ["%s"]}
`, sixin4DecDev, genV4, r0V4, netip.PrefixFrom(sixin4FarSrc, 48).Masked())
}

// setupSixIn4 applies the scenario's config and primes f's flow; the TC
// scenarios then swap XDP_PASS into xdprouter's links. The undo is
// detach --all, which also removes the tunnel netdev.
func (b *liveBench) setupSixIn4(sc string, f family) (func() error, error) {
	t := b.t
	detach, err := t.applyConfig(b.cfg.xdprouter, b.bpffs, sc, sixin4Config(sc))
	if err != nil {
		return nil, err
	}
	if err := b.prime(f, f.reply); err != nil {
		return nil, errors.Join(err, detach())
	}
	if sixin4Scenario(sc) == sc {
		return detach, nil
	}
	restore, err := b.useKernelXDP()
	if err != nil {
		return nil, errors.Join(err, detach())
	}
	return func() error { return errors.Join(restore(), detach()) }, nil
}

// sixin4Counter is the counter that must count every frame a TC slow-path
// scenario forwarded ("" for the others).
func sixin4Counter(sc string) string {
	switch sc {
	case scTC6in4Encap:
		return "tc_encap_6in4"
	case scTC6in4Decap:
		return "tc_decap_6in4"
	}
	return ""
}

// sixin4Families are the frames of the 6in4 scenarios, with the reply
// direction that primes each flow: IPv6 from gen into bench6e (reply:
// protocol 41 from the tunnel's remote, sink, to its local address, r1);
// protocol 41 from gen to r0 carrying IPv6 to sink (reply: plain IPv6
// from sink, as the LAN host answers).
func (t *topo) sixin4Families() ([]family, error) {
	v6 := func(src, dst netip.Addr) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: startTTL, NextHeader: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	enc, err := udpFrame(t.g0.mac, t.r0.mac, v6(genV6, sixin4EncDst), layers.EthernetTypeIPv6)
	if err != nil {
		return nil, fmt.Errorf("build 6in4 encap frame: %w", err)
	}
	encReply, err := udpFrame(t.s0.mac, t.r1.mac, v6(sixin4EncDst, genV6), layers.EthernetTypeIPv6)
	if err != nil {
		return nil, fmt.Errorf("build 6in4 encap reply: %w", err)
	}
	inner, err := udpFrame(t.g0.mac, t.r0.mac, v6(sixin4FarSrc, sinkV6), layers.EthernetTypeIPv6)
	if err != nil {
		return nil, fmt.Errorf("build 6in4 decap frame: %w", err)
	}
	decReply, err := udpFrame(t.s0.mac, t.r1.mac, v6(sinkV6, sixin4FarSrc), layers.EthernetTypeIPv6)
	if err != nil {
		return nil, fmt.Errorf("build 6in4 decap reply: %w", err)
	}
	return []family{
		{name: "ipv6-in-6in4", frame: enc, fwdCounter: "tun6in4_encap", only: sc6in4Encap,
			reply: sixin4(encReply, sinkV4, r1V4)},
		{name: "6in4-to-ipv6", frame: sixin4(inner, genV4, r0V4), fwdCounter: "tun6in4_decap", only: sc6in4Decap,
			reply: decReply},
	}, nil
}

// sixin4 wraps an Ethernet/IPv6 frame's IPv6 packet in IPv4 from src to
// dst (protocol 41, TTL startTTL, DF set and ID 0 as Linux's sit sends
// it), keeping its Ethernet addresses.
func sixin4(inner []byte, src, dst netip.Addr) []byte {
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, startTTL, 41, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(inner)-14))
	ip = append(append(ip, src.AsSlice()...), dst.AsSlice()...)
	binary.BigEndian.PutUint16(ip[10:], inetChecksum(ip, 0))
	out := append(append([]byte(nil), inner[:12]...), 0x08, 0x00)
	return append(append(out, ip...), inner[14:]...)
}

// add6in4Ratios appends 6in4 in XDP against xdprouter's TC slow path on
// the same tunnel, and against xdprouter's and the kernel's plain IPv6
// forward, live.
func (r *report) add6in4Ratios(lb *liveBench) {
	for _, p := range []struct{ sc, tc, fam string }{
		{sc6in4Encap, scTC6in4Encap, "ipv6-in-6in4"},
		{sc6in4Decap, scTC6in4Decap, "6in4-to-ipv6"},
	} {
		r.addLiveRatio(lb, p.sc, p.fam, p.tc, p.fam, 0)
		r.addLiveRatio(lb, p.sc, p.fam, scXdprouter, "ipv6", 0)
		r.addLiveRatio(lb, p.sc, p.fam, scKernel, "ipv6", 0)
	}
}
