package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Baselines besides plain kernel forwarding:
//
//   - ceiling: the harness alone. r0 runs xdp_wire, which only decrements
//     the TTL and redirects to r1; what the generator reaches through it is
//     the most it can measure, and a router figure close to it would be
//     the harness's, not the router's.
//   - kernel-ct: kernel forwarding under the stateful firewall the seed
//     authors run (forward policy drop, accept from the LAN r0, accept
//     established/related), in nftables: the baseline a user with a
//     firewall actually has, and what the conntrack-gated fast path is
//     measured against.
//   - kernel-nat44: a fixed-IPv4 tunnel with nat44 as `xdprouter apply`
//     sets it up today: every LAN packet is passed to the kernel
//     (pass_tun_nat44), which masquerades it (conntrack + SNAT in
//     xdprouter's nftables table), routes it into the tunnel netdev, where
//     xdprouter's TC program encapsulates it.
const (
	scCeiling     = "ceiling"
	scKernelCT    = "kernel-ct"
	scKernelNAT44 = "kernel-nat44"
)

// ctRuleset is the stateful forward policy of kernel-ct.
const ctRuleset = `table inet benchfw {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "r0" accept
	}
}
`

// setupCeiling attaches the wire to both router ports, sending to r1.
func (b *liveBench) setupCeiling() (func() error, error) {
	if err := b.t.lab.Do(b.t.rtrNS, func() error { return b.wire.SetOut(b.t.r1.index) }); err != nil {
		return nil, err
	}
	return b.t.attachRouterPorts(b.wire.Attach)
}

// setupKernelCT loads the ruleset, puts XDP_PASS on the router's ports (as
// the kernel scenario) and primes the flow: one frame of the reply
// direction, sink -> gen, so that conntrack holds the benchmark flow as
// established (seen in both directions) like any flow a LAN host opened.
func (b *liveBench) setupKernelCT(f family) (func() error, error) {
	t := b.t
	undoPass, err := t.attachRouterPorts(b.pass.Attach)
	if err != nil {
		return nil, err
	}
	undo := func() error {
		_, err := t.lab.Exec(t.rtrNS, "nft", "delete", "table", "inet", "benchfw")
		return errors.Join(err, undoPass())
	}
	if err := b.nft(ctRuleset); err != nil {
		return nil, errors.Join(err, undo())
	}
	if err := b.primeReply(f); err != nil {
		return nil, errors.Join(err, undo())
	}
	return undo, nil
}

func (b *liveBench) nft(script string) error {
	path := filepath.Join(b.t.lab.RunDir(), "bench.nft")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		return err
	}
	if _, err := b.t.lab.Exec(b.t.rtrNS, "nft", "-f", path); err != nil {
		return fmt.Errorf("nft -f (Debian package nftables): %w", err)
	}
	return nil
}

// primeReply sends a few frames of f's reply direction from sink to gen,
// after one frame of the forward direction has created the entry.
func (b *liveBench) primeReply(f family) error {
	t := b.t
	var ip gopacket.NetworkLayer
	switch f.name {
	case "ipv4":
		ip = &layers.IPv4{Version: 4, IHL: 5, TTL: startTTL, Protocol: layers.IPProtocolUDP,
			SrcIP: sinkV4.AsSlice(), DstIP: genV4.AsSlice()}
	case "ipv6":
		ip = &layers.IPv6{Version: 6, HopLimit: startTTL, NextHeader: layers.IPProtocolUDP,
			SrcIP: sinkV6.AsSlice(), DstIP: genV6.AsSlice()}
	default:
		return fmt.Errorf("no reply frame for family %s", f.name)
	}
	et := layers.EthernetTypeIPv4
	if f.name == "ipv6" {
		et = layers.EthernetTypeIPv6
	}
	reply, err := udpFrame(t.s0.mac, t.r1.mac, ip, et)
	if err != nil {
		return err
	}
	if err := sendFrames(t, t.genNS, t.g0.index, f.frame, 1); err != nil {
		return err
	}
	return sendFrames(t, t.sinkNS, t.s0.index, reply, 3)
}

// sendFrames sends n copies of frame out of ifindex in namespace ns.
func sendFrames(t *topo, ns string, ifindex int, frame []byte, n int) error {
	return t.lab.Do(ns, func() error {
		s, err := newPacketSender(ifindex, frame, n)
		if err != nil {
			return err
		}
		defer s.Close()
		return inject(s, n)
	})
}

// nat44Addr is kernel-nat44's fixed IPv4 address.
var nat44Addr = netip.MustParseAddr("192.0.2.77")

// nat44Config is the encap scenario's tunnel with a fixed IPv4 address and
// nat44: LAN IPv4 leaves masqueraded behind nat44Addr.
func nat44Config() string {
	return strings.Replace(tunnelConfig(scEncap), "routes:",
		fmt.Sprintf("ipv4-address: %s, nat44: true, routes:", nat44Addr), 1)
}
