package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/gopacket/gopacket/layers"

	"github.com/xdprouter/xdprouter/loader"
)

// The VXLAN scenarios (issue 15, item 6) compare VXLAN in XDP with the
// kernel's vxlan netdev on the same topology, in the same run, and with
// xdprouter's plain IPv6 forward:
//
//   - vxlan-encap / kernel-vxlan-encap: gen's IPv6 to vxlanEncDst is routed
//     into benchvxe (remote sink's IPv4, out of r1, outer TTL startTTL-1
//     so that the sink counts one forwarding hop), so sink receives VXLAN.
//   - vxlan-decap / kernel-vxlan-decap: gen sends VXLAN (from gen's IPv4
//     to r0's, VNI vxlanDecVNI) whose inner IPv6 to sink is forwarded out
//     of r1 with one hop less, as if it came in on benchvxd.
//
// The kernel scenarios keep XDP_PASS on the router's ports, as the kernel
// scenario does; the XDP ones attach xdprouter ungated (as the xdprouter
// scenario) and record the netdev as the daemon does.
const (
	scKernelVXLANEncap = "kernel-vxlan-encap"
	scVXLANEncap       = "vxlan-encap"
	scKernelVXLANDecap = "kernel-vxlan-decap"
	scVXLANDecap       = "vxlan-decap"
	vxlanEncDev        = "benchvxe"
	vxlanDecDev        = "benchvxd"
	vxlanEncVNI        = 10
	vxlanDecVNI        = 20
)

var (
	vxlanEncDst  = netip.MustParseAddr("2001:db8:7e::9")
	vxlanDecMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0x7d, 0x01}
	vxlanPeerMAC = net.HardwareAddr{0x02, 0, 0, 0, 0x7d, 0x02}
)

// vxlanScenario is the XDP scenario of a kernel VXLAN one, or itself.
func vxlanScenario(sc string) string {
	switch sc {
	case scKernelVXLANEncap, scVXLANEncapNPT, scKernelVXLANEncapNPT, scIP6tVXLANEncapNPT:
		return scVXLANEncap
	case scKernelVXLANDecap:
		return scVXLANDecap
	}
	return sc
}

func isVXLANScenario(sc string) bool {
	return vxlanScenario(sc) == scVXLANEncap || vxlanScenario(sc) == scVXLANDecap
}

// vxlanNetdev is how the router makes the scenario's netdev (as xdprouter
// makes them: no learning, UDP checksums).
func vxlanNetdev(sc string) [][]string {
	if vxlanScenario(sc) == scVXLANEncap {
		return [][]string{
			{"ip", "link", "add", vxlanEncDev, "address", "02:00:00:00:7e:01", "type", "vxlan", "id", fmt.Sprint(vxlanEncVNI),
				"dstport", "4789", "remote", sinkV4.String(), "dev", "r1", "ttl", fmt.Sprint(startTTL - 1), "udpcsum", "nolearning"},
			// No address of its own (addrgenmode none, none added): the
			// netdev sends nothing by itself (router solicitations, MLD
			// reports), which the sink would count as forwarded. See
			// makeVXLANNetdev for the MLD report of ff02::2.
			{"ip", "link", "set", vxlanEncDev, "addrgenmode", "none"},
			{"ip", "link", "set", vxlanEncDev, "up"},
			{"ip", "-6", "neigh", "replace", "fd00:7e::2", "lladdr", "02:00:00:00:7e:02", "dev", vxlanEncDev, "nud", "permanent"},
			{"ip", "-6", "route", "add", netip.PrefixFrom(vxlanEncDst, 48).Masked().String(), "via", "fd00:7e::2", "dev", vxlanEncDev, "onlink"},
		}
	}
	return [][]string{
		{"ip", "link", "add", vxlanDecDev, "address", vxlanDecMAC.String(), "type", "vxlan", "id", fmt.Sprint(vxlanDecVNI),
			"dstport", "4789", "remote", genV4.String(), "dev", "r0", "udpcsum", "nolearning"},
		{"ip", "link", "set", vxlanDecDev, "addrgenmode", "none"},
		{"ip", "link", "set", vxlanDecDev, "up"},
	}
}

// makeVXLANNetdev makes the scenario's netdev in the router namespace.
//
// The encap netdev is registered while new interfaces get IPv6 forwarding
// off (the namespace's default is put back right after). Its outer TTL is
// the hop the sink counts as forwarded, and an interface registered with
// forwarding on joins ff02::2 and reports that in MLD (from ::) on `up` and
// once more within the next second, so the sink counted one frame more than
// the generator sent in whichever measurement that second fell. Turning
// forwarding off after registration does not help: the kernel then reports
// the leave instead. Forwarding out of the netdev is unchanged: the kernel
// checks the namespace's and the incoming interface's setting, and so does
// xdprouter's inner fib lookup (from r0).
func (t *topo) makeVXLANNetdev(sc string) error {
	cmds := vxlanNetdev(sc)
	if vxlanScenario(sc) != scVXLANEncap {
		return t.lab.MustExec(t.rtrNS, cmds...)
	}
	const dflt = "net.ipv6.conf.default.forwarding"
	prev, err := t.lab.Exec(t.rtrNS, "sysctl", "-n", dflt)
	if err != nil {
		return err
	}
	if _, err := t.lab.Exec(t.rtrNS, "sysctl", "-qw", dflt+"=0"); err != nil {
		return err
	}
	err = t.lab.MustExec(t.rtrNS, cmds[0])
	if _, rerr := t.lab.Exec(t.rtrNS, "sysctl", "-qw", dflt+"="+strings.TrimSpace(prev)); rerr != nil {
		return errors.Join(err, rerr)
	}
	if err != nil {
		return err
	}
	return t.lab.MustExec(t.rtrNS, cmds[1:]...)
}

// setupVXLAN attaches the scenario's programs and makes its netdev; the
// undo takes both away again.
func (b *liveBench) setupVXLAN(sc string) (func() error, error) {
	t := b.t
	xdp := vxlanScenario(sc) == sc
	var detach func() error
	var err error
	switch {
	case xdp && sc == scVXLANEncap:
		// With the roles a config gives the ports (the LAN's packets
		// are the ones SNPT may apply to): vxlan-encap-npt is this
		// scenario with a rule added.
		detach, err = b.attachLANWAN()
	case xdp:
		detach, err = b.attachCLI("off")
	default:
		detach, err = t.attachRouterPorts(b.pass.Attach)
	}
	if err != nil {
		return nil, err
	}
	dev, remote := vxlanEncDev, sinkV4
	vni := uint32(vxlanEncVNI)
	if vxlanScenario(sc) == scVXLANDecap {
		dev, remote, vni = vxlanDecDev, genV4, vxlanDecVNI
	}
	undo := func() error {
		// detach --all removes a recorded netdev itself.
		err := detach()
		if _, lerr := t.lab.Exec(t.rtrNS, "ip", "link", "show", dev); lerr == nil {
			_, lerr = t.lab.Exec(t.rtrNS, "ip", "link", "del", dev)
			err = errors.Join(err, lerr)
		}
		return err
	}
	if err := t.makeVXLANNetdev(sc); err != nil {
		return nil, errors.Join(err, undo())
	}
	if !xdp {
		return undo, nil
	}
	err = t.lab.Do(t.rtrNS, func() error {
		d, err := loader.Open(b.bpffs)
		if err != nil {
			return err
		}
		defer d.Close()
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		return d.PutKernelTunnel(loader.KernelTunnel{Name: dev, Ifindex: ifc.Index, Kind: "vxlan", VNI: vni, Port: 4789, Remote: remote})
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("record %s: %w", dev, err), undo())
	}
	return undo, nil
}

// vxlanFamilies are the frames of the VXLAN scenarios: IPv6 from gen into
// benchvxe, and VXLAN from gen carrying IPv6 to sink.
func (t *topo) vxlanFamilies() ([]family, error) {
	enc, err := udpFrame(t.g0.mac, t.r0.mac, &layers.IPv6{
		Version: 6, HopLimit: startTTL, NextHeader: layers.IPProtocolUDP,
		SrcIP: genV6.AsSlice(), DstIP: vxlanEncDst.AsSlice(),
	}, layers.EthernetTypeIPv6)
	if err != nil {
		return nil, fmt.Errorf("build vxlan encap frame: %w", err)
	}
	inner, err := udpFrame(vxlanPeerMAC, vxlanDecMAC, &layers.IPv6{
		Version: 6, HopLimit: startTTL, NextHeader: layers.IPProtocolUDP,
		SrcIP: genV6.AsSlice(), DstIP: sinkV6.AsSlice(),
	}, layers.EthernetTypeIPv6)
	if err != nil {
		return nil, fmt.Errorf("build vxlan decap frame: %w", err)
	}
	return []family{
		{name: "ipv6-in-vxlan", frame: enc, fwdCounter: "vxlan_encap", only: scVXLANEncap},
		{name: "vxlan-to-ipv6", frame: vxlanFrame(t, inner), fwdCounter: "vxlan_decap", only: scVXLANDecap},
	}, nil
}

// vxlanFrame wraps an inner Ethernet frame in VXLAN from gen to r0 (UDP
// checksum included, as the kernel's vxlan sends it).
func vxlanFrame(t *topo, inner []byte) []byte {
	udp := binary.BigEndian.AppendUint16(nil, 49152)
	udp = binary.BigEndian.AppendUint16(udp, 4789)
	udp = binary.BigEndian.AppendUint16(udp, uint16(16+len(inner)))
	udp = append(udp, 0, 0)
	udp = binary.BigEndian.AppendUint32(udp, 0x08000000)
	udp = binary.BigEndian.AppendUint32(udp, vxlanDecVNI<<8)
	udp = append(udp, inner...)
	ip := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, startTTL, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	ip = append(append(ip, genV4.AsSlice()...), r0V4.AsSlice()...)
	binary.BigEndian.PutUint16(ip[10:], inetChecksum(ip, 0))
	pseudo := append(append([]byte{}, genV4.AsSlice()...), r0V4.AsSlice()...)
	pseudo = append(pseudo, 0, 17, byte(len(udp)>>8), byte(len(udp)))
	c := inetChecksum(udp, onesComplementSum(pseudo))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], c)
	out := append(append(append([]byte{}, t.r0.mac...), t.g0.mac...), 0x08, 0x00)
	return append(append(out, ip...), udp...)
}

func onesComplementSum(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func inetChecksum(b []byte, seed uint32) uint16 {
	s := seed + onesComplementSum(b)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// addVXLANRatios appends VXLAN in XDP against the kernel's vxlan (target
// 2) and against xdprouter's plain IPv6 forward, live.
func (r *report) addVXLANRatios(lb *liveBench) {
	for _, p := range []struct{ sc, kernel, fam string }{
		{scVXLANEncap, scKernelVXLANEncap, "ipv6-in-vxlan"},
		{scVXLANDecap, scKernelVXLANDecap, "vxlan-to-ipv6"},
	} {
		a := lb.results[key(p.sc, p.fam)]
		if a == nil {
			continue
		}
		for _, ref := range []struct {
			sc, fam string
			target  float64
		}{{p.kernel, p.fam, 2.0}, {scXdprouter, "ipv6", 0}} {
			b := lb.results[key(ref.sc, ref.fam)]
			if b == nil {
				continue
			}
			var paired []float64
			for i := 0; i < len(a.Runs) && i < len(b.Runs); i++ {
				paired = append(paired, div(a.Runs[i].Mpps, b.Runs[i].Mpps))
			}
			r.LiveRatios = append(r.LiveRatios, ratio{Name: p.sc + "/" + ref.sc, Family: p.fam + " vs " + ref.fam,
				Value: div(a.MedianMpps, b.MedianMpps), Paired: median(paired), Target: ref.target})
		}
	}
}

// nsppFamilies leaves out the VXLAN and 6in4 families: their netdevs exist
// only while their live scenarios run, so the ns/packet part's private
// router has none (their in-situ ns/packet is in the live part).
func nsppFamilies(fams []family) []family {
	var out []family
	for _, f := range fams {
		if !isVXLANScenario(f.only) && !is6in4Scenario(f.only) {
			out = append(out, f)
		}
	}
	return out
}
