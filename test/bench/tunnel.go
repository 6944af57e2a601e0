package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/loader/benchprog"
)

// The tunnel scenarios run xdprouter configured by `xdprouter apply`, as a
// user would, with one ipip6 tunnel:
//
//   - encap: r0 faces the LAN, r1 the WAN; IPv4 for tunDstV4 is routed into
//     a tunnel whose remote is sink's IPv6 address, so sink receives ipip6.
//     The outer hop limit is set to startTTL-1, which the sink counts as one
//     forwarding hop.
//   - decap: r0 is the WAN; gen's ipip6 (remote gen, local r0) is
//     decapsulated and the inner IPv4 forwarded to sink with TTL - 1.
//
// There is no kernel ipip6 on these machines to compare with: "kernel" is
// plain kernel forwarding of the same inner family, which is what the
// kernel's own tunnel would have to do on top of its encapsulation.
const benchTunnel = "benchtun"

func tunnelConfig(sc string) string {
	if sc == scKernelNAT44 || sc == scNAT44 {
		return nat44Config()
	}
	if sc == scEncap {
		return fmt.Sprintf(`wan: {interface: r1}
lan: [{interface: r0}]
tunnels:
  - {name: %s, remote: "%s", local: "%s", routes: [%s], hop-limit: %d}
`, benchTunnel, sinkV6, r1V6, netip.PrefixFrom(tunDstV4, 24).Masked(), startTTL-1)
	}
	return fmt.Sprintf(`wan: {interface: r0}
lan: [{interface: r1}]
tunnels:
  - {name: %s, remote: "%s", local: "%s", routes: []}
`, benchTunnel, genV6, r0V6)
}

// setupTunnel applies the scenario's config and primes f's flow (apply
// attaches with the conntrack gate and xdprouter's default firewall, so the
// fast path carries established flows only); the undo is detach --all,
// which also removes the tunnel netdev.
func (b *liveBench) setupTunnel(sc string, f family) (func() error, error) {
	t := b.t
	detach, err := t.applyConfig(b.cfg.xdprouter, b.bpffs, sc, tunnelConfig(sc))
	if err != nil {
		return nil, err
	}
	reply := f.reply
	if sc == scKernelNAT44 || sc == scNAT44 {
		var err error
		if reply, err = t.nat44Reply(); err != nil {
			return nil, errors.Join(err, detach())
		}
	}
	if err := b.prime(f, reply); err != nil {
		return nil, errors.Join(err, detach())
	}
	if sc == scKernelNAT44 {
		restore, err := b.useKernelXDP()
		if err != nil {
			return nil, errors.Join(err, detach())
		}
		return func() error { return errors.Join(restore(), detach()) }, nil
	}
	return detach, nil
}

// nsppApplies: the tunnel families are timed for xdpr_main only (with the
// harness and XDP_PASS it is measured against); the bare forwarder has no
// tunnels.
func nsppApplies(p string, f family) bool {
	return f.only == "" || p != progBare
}

// newTunnelBenchRouter is xdpr_main with private maps for the tunnel
// families' ns/packet: r0 a WAN port, r1 a LAN port, an encapsulating tunnel
// for tunDstV4 (remote sink) and a decapsulating one (remote gen), each on
// an ifb of its own in the router namespace.
func newTunnelBenchRouter(t *topo) (*loader.BenchRouter, error) {
	if err := t.lab.MustExec(t.rtrNS,
		[]string{"ip", "link", "add", "nsppenc", "type", "ifb"},
		[]string{"ip", "link", "set", "nsppenc", "mtu", "1460", "up"},
		[]string{"ip", "route", "add", netip.PrefixFrom(tunDstV4, 24).Masked().String(), "dev", "nsppenc"},
		[]string{"ip", "link", "add", "nsppdec", "type", "ifb"},
		[]string{"ip", "link", "set", "nsppdec", "mtu", "1460", "up"}); err != nil {
		return nil, err
	}
	r, err := loader.NewBenchRouter()
	if err != nil {
		return nil, err
	}
	err = t.lab.Do(t.rtrNS, func() error {
		if err := r.AddPort(t.r0.index, t.r0.name, t.r0.mac, loader.RoleWAN); err != nil {
			return err
		}
		if err := r.AddPort(t.r1.index, t.r1.name, t.r1.mac, loader.RoleLAN); err != nil {
			return err
		}
		for _, tun := range []struct {
			dev           string
			remote, local netip.Addr
		}{{"nsppenc", sinkV6, r1V6}, {"nsppdec", genV6, r0V6}} {
			ifc, err := net.InterfaceByName(tun.dev)
			if err != nil {
				return err
			}
			err = r.AddTunnel(loader.Tunnel{Name: tun.dev, Ifindex: ifc.Index, MAC: ifc.HardwareAddr,
				Local: tun.local, Remote: tun.remote, MTU: 1460, HopLimit: int(startTTL - 1)})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// checkTunnelOutput checks a tunnel family's test run: redirected, and
// the frame encapsulated (ipip6 to sink, hop limit startTTL-1) or
// decapsulated (IPv4 to sink, TTL startTTL-1) to the sink's MAC.
func checkTunnelOutput(p string, res benchprog.TestResult, f family, _ []byte) string {
	if p != progXdprouter {
		return checkOutput(p, res, f, nil)
	}
	if res.Verdict != benchprog.XDPRedirect {
		return fmt.Sprintf("verdict %s, want XDP_REDIRECT", verdictName(res.Verdict))
	}
	o := res.Out
	switch f.only {
	case scEncap:
		if len(o) != len(f.frame)+40 || o[12] != 0x86 || o[13] != 0xdd || o[20] != 4 || o[21] != startTTL-1 ||
			!bytes.Equal(o[38:54], sinkV6.AsSlice()) || o[54+8] != startTTL-1 {
			return fmt.Sprintf("encapsulated frame is not ipip6 to sink with hop limit and inner TTL %d: %x", startTTL-1, o)
		}
	case scDecap:
		if len(o) != len(f.frame)-40 || o[12] != 0x08 || o[13] != 0x00 || o[14+8] != startTTL-1 ||
			!bytes.Equal(o[30:34], sinkV4.AsSlice()) {
			return fmt.Sprintf("decapsulated frame is not IPv4 to sink with TTL %d: %x", startTTL-1, o)
		}
	}
	return ""
}

// tunnelPairs are the tunnel ratios: the tunnel family against the plain
// family of the same input, forwarded by xdprouter and by the kernel.
var tunnelPairs = []struct {
	sc, fam, plainFam string
}{
	{scEncap, "ipv4-in-ipip6", "ipv4"},
	{scDecap, "ipip6-to-ipv4", "ipv6"},
}

// addTunnelRatios appends encap and decap against xdprouter's plain forward
// (target 0.9) and kernel forwarding (target 2), live and ns/packet.
func (r *report) addTunnelRatios(lb *liveBench, nspp []*nsppResult) {
	for _, p := range tunnelPairs {
		a := lb.results[key(p.sc, p.fam)]
		for _, ref := range []struct {
			sc     string
			target float64
		}{{scXdprouter, 0.9}, {scKernel, 2.0}} {
			b := lb.results[key(ref.sc, p.plainFam)]
			if a == nil || b == nil {
				continue
			}
			var paired []float64
			for i := 0; i < len(a.Runs) && i < len(b.Runs); i++ {
				paired = append(paired, div(a.Runs[i].Mpps, b.Runs[i].Mpps))
			}
			r.LiveRatios = append(r.LiveRatios, ratio{Name: p.sc + "/" + ref.sc, Family: p.fam + " vs " + p.plainFam,
				Value: div(a.MedianMpps, b.MedianMpps), Paired: median(paired), Target: ref.target})
		}
		var na, nb *nsppResult
		for _, n := range nspp {
			if n.Program == progXdprouter && n.Family == p.fam {
				na = n
			}
			if n.Program == progXdprouter && n.Family == p.plainFam {
				nb = n
			}
		}
		if na == nil || nb == nil {
			continue
		}
		var paired []float64
		for i := 0; i < len(na.NetNsRuns) && i < len(nb.NetNsRuns); i++ {
			paired = append(paired, div(na.NetNsRuns[i], nb.NetNsRuns[i]))
		}
		r.NsppRatios = append(r.NsppRatios, ratio{Name: p.sc + "/xdprouter", Family: p.fam + " vs " + p.plainFam,
			Value: div(na.NetNs, nb.NetNs), Paired: median(paired)})
	}
}
