package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/loader/benchprog"
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
//   - kernel-nat44: a fixed-IPv4 tunnel with nat44 set up by `xdprouter
//     apply`, with XDP_PASS swapped in on the router's ports (the same
//     pinned links): every LAN packet goes to the kernel, which
//     masquerades it (conntrack + SNAT in xdprouter's nftables table) and
//     routes it into the tunnel netdev, where xdprouter's TC program
//     encapsulates it: the slow path of every fixed-IPv4 packet before
//     NAT44 was carried in XDP.
//
// And the fast path under the same firewall:
//
//   - xdprouter-nat44: the same tunnel as `xdprouter apply` leaves it: the
//     established, masqueraded flow NATed and encapsulated in XDP.
//   - xdprouter-ct: kernel-ct's ruleset with `xdprouter attach --ct-gate on
//     r0 r1`: XDP forwards the flow only because conntrack holds it as
//     established, looked up per packet (bpf_xdp_ct_lookup).
const (
	scCeiling     = "ceiling"
	scKernelCT    = "kernel-ct"
	scKernelNAT44 = "kernel-nat44"
	scXdprouterCT = "xdprouter-ct"
	scNAT44       = "xdprouter-nat44"
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
// the kernel scenario) and primes the flow, so that conntrack holds it as
// established like any flow a LAN host opened.
func (b *liveBench) setupKernelCT(f family) (func() error, error) {
	return b.withRuleset(f, func() (func() error, error) { return b.t.attachRouterPorts(b.pass.Attach) })
}

// setupXdprouterCT is kernel-ct with xdprouter attached, gated.
func (b *liveBench) setupXdprouterCT(f family) (func() error, error) {
	return b.withRuleset(f, func() (func() error, error) { return b.attachCLI("on") })
}

// withRuleset loads ctRuleset, runs attach and primes f's flow.
func (b *liveBench) withRuleset(f family, attach func() (func() error, error)) (func() error, error) {
	t := b.t
	if err := b.nft(ctRuleset); err != nil {
		return nil, err
	}
	dropTable := func() error {
		_, err := t.lab.Exec(t.rtrNS, "nft", "delete", "table", "inet", "benchfw")
		return err
	}
	undoAttach, err := attach()
	if err != nil {
		return nil, errors.Join(err, dropTable())
	}
	undo := func() error { return errors.Join(undoAttach(), dropTable()) }
	if err := b.prime(f, f.reply); err != nil {
		return nil, errors.Join(err, undo())
	}
	return undo, nil
}

// attachCLI runs `xdprouter attach --ct-gate GATE r0 r1` in the router
// namespace and returns what detaches it again.
func (b *liveBench) attachCLI(gate string) (func() error, error) {
	t := b.t
	detach := t.detachAll(b.cfg.xdprouter, b.bpffs)
	if _, err := t.lab.Exec(t.rtrNS, b.cfg.xdprouter, "--bpffs", b.bpffs, "attach", "--ct-gate", gate, "r0", "r1"); err != nil {
		_ = detach() // r0 may be attached already
		return nil, fmt.Errorf("xdprouter attach: %w", err)
	}
	return detach, nil
}

// attachLANWAN runs `xdprouter attach --ct-gate off` with r0 as a LAN port
// and r1 as the WAN, as a config's roles are, and returns what detaches
// it again.
func (b *liveBench) attachLANWAN() (func() error, error) {
	t := b.t
	detach := t.detachAll(b.cfg.xdprouter, b.bpffs)
	for _, p := range []struct{ role, ifname string }{{"lan", t.r0.name}, {"wan", t.r1.name}} {
		if _, err := t.lab.Exec(t.rtrNS, b.cfg.xdprouter, "--bpffs", b.bpffs, "attach", "--ct-gate", "off", "--role", p.role, p.ifname); err != nil {
			return nil, errors.Join(fmt.Errorf("xdprouter attach --role %s %s: %w", p.role, p.ifname, err), detach())
		}
	}
	return detach, nil
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

// prime makes conntrack hold f's flow as established: one frame of the
// benchmark direction (from gen), three of the reply direction (from sink),
// one more from gen. Whichever side the firewall lets open the flow, it
// ends up established: if gen's first frame is dropped as unsolicited
// (the decap scenario's gen is on the WAN side), sink's frames open it.
func (b *liveBench) prime(f family, reply []byte) error {
	t := b.t
	if reply == nil {
		return fmt.Errorf("no reply frame for family %s", f.name)
	}
	for _, step := range []struct {
		ns      string
		ifindex int
		frame   []byte
		n       int
	}{{t.genNS, t.g0.index, f.frame, 1}, {t.sinkNS, t.s0.index, reply, 3}, {t.genNS, t.g0.index, f.frame, 1}} {
		if err := sendFrames(t, step.ns, step.ifindex, step.frame, step.n); err != nil {
			return fmt.Errorf("prime %s: %w", f.name, err)
		}
		time.Sleep(10 * time.Millisecond) // through the kernel's slow path
	}
	return nil
}

// replyFrames builds each family's reply-direction frame, sink -> r1: the
// benchmark frame's addresses and ports swapped (for the encap family, the
// tunnel's remote sending the inner reply in ipip6 to the tunnel's local
// address; for the decap family, plain IPv4 from sink, as the LAN host
// answers).
func (t *topo) replyFrames(fams []family) error {
	v4 := func(src, dst netip.Addr) gopacket.NetworkLayer {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: startTTL, Protocol: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	var err error
	for i := range fams {
		f := &fams[i]
		switch f.name {
		case "ipv4", "ipip6-to-ipv4":
			f.reply, err = udpFrame(t.s0.mac, t.r1.mac, v4(sinkV4, genV4), layers.EthernetTypeIPv4)
		case "ipv6":
			f.reply, err = udpFrame(t.s0.mac, t.r1.mac, &layers.IPv6{Version: 6, HopLimit: startTTL,
				NextHeader: layers.IPProtocolUDP, SrcIP: sinkV6.AsSlice(), DstIP: genV6.AsSlice()}, layers.EthernetTypeIPv6)
		case "ipv4-in-ipip6":
			var inner []byte
			if inner, err = udpFrame(t.s0.mac, t.r1.mac, v4(tunDstV4, genV4), layers.EthernetTypeIPv4); err == nil {
				f.reply = ipip6(inner, sinkV6, r1V6)
			}
		}
		if err != nil {
			return fmt.Errorf("%s reply frame: %w", f.name, err)
		}
	}
	return nil
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

// useKernelXDP swaps XDP_PASS into xdprouter's links on r0 and r1 and
// returns what puts xdprouter's programs back.
func (b *liveBench) useKernelXDP() (func() error, error) {
	t := b.t
	var links []*benchprog.Swappable
	restore := func() error {
		var errs []error
		for _, l := range links {
			errs = append(errs, l.Close())
		}
		return errors.Join(errs...)
	}
	for _, ifc := range []iface{t.r0, t.r1} {
		l, err := benchprog.OpenSwappable(loader.XDPLinkPin(b.bpffs, ifc.index))
		if err != nil {
			return nil, errors.Join(err, restore())
		}
		links = append(links, l)
		if err := l.UsePass(b.pass); err != nil {
			return nil, errors.Join(err, restore())
		}
	}
	return restore, nil
}

// nat44Reply is the reply of the masqueraded flow: from the tunnel's
// remote, ipip6 carrying tunDstV4 -> nat44Addr (the masquerade keeps port 9).
func (t *topo) nat44Reply() ([]byte, error) {
	inner, err := udpFrame(t.s0.mac, t.r1.mac, &layers.IPv4{Version: 4, IHL: 5, TTL: startTTL, Protocol: layers.IPProtocolUDP,
		SrcIP: tunDstV4.AsSlice(), DstIP: nat44Addr.AsSlice()}, layers.EthernetTypeIPv4)
	if err != nil {
		return nil, err
	}
	return ipip6(inner, sinkV6, r1V6), nil
}

// checkMasqueraded says what is wrong if conntrack does not hold the NAT44
// scenarios' flow as masqueraded to nat44Addr: without the binding, the
// figure would be of plain encapsulation.
func (b *liveBench) checkMasqueraded() string {
	out, err := b.t.lab.Exec(b.t.rtrNS, "conntrack", "-L", "-p", "udp", "-s", genV4.String(), "-d", tunDstV4.String())
	if err != nil {
		return fmt.Sprintf("conntrack -L: %v", err)
	}
	if !strings.Contains(out, "dst="+nat44Addr.String()) {
		return fmt.Sprintf("the flow is not masqueraded to %s in conntrack: %q", nat44Addr, strings.TrimSpace(out))
	}
	return ""
}

// nat44Config is the encap scenario's tunnel with a fixed IPv4 address and
// nat44: LAN IPv4 leaves masqueraded behind nat44Addr.
func nat44Config() string {
	return strings.Replace(tunnelConfig(scEncap), "routes:",
		fmt.Sprintf("ipv4-address: %s, nat44: true, routes:", nat44Addr), 1)
}
