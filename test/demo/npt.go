package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/test/labkit"
)

// nptMode is the demo's NPT mode: preserve-host keeps the interface ID,
// so the outside address is easy to read off the inside one.
const nptMode = "preserve-host"

// runNPT is part 3: seed 000, an ISP that solicits every address of the
// customer's /64, answered by the NDP proxy, with NPTv6 behind it.
func runNPT(ctx context.Context, bin string) (err error) {
	heading("Build a lab: isp — cpe — host")
	say("Seed 000: the ISP routes the customer's /64 as on-link, so to reach any address",
		"in it the ISP's router sends a Neighbor Solicitation on the wire and waits for an",
		"answer. The LAN uses another prefix (inside); the CPE translates between the two",
		"with NPTv6 (RFC 6296, stateless, no ports touched) and its NDP proxy answers the",
		"ISP's solicitations for the outside /64. The isp namespace is plain Linux.")
	topo, err := labkit.NewNPTTopology()
	if err != nil {
		return err
	}
	var pass io.Closer
	defer func() {
		heading("Clean up")
		if pass != nil {
			pass.Close()
		}
		if cerr := topo.Close(); cerr != nil {
			err = errors.Join(err, cerr)
			return
		}
		fmt.Printf("Removed namespaces %s, %s, %s and everything under %s.\n",
			topo.ISP, topo.CPE, topo.Host, topo.Lab.RunDir())
	}()
	fmt.Println(topo.Diagram())
	// Lab plumbing: a veth delivers the proxy's XDP_TX answers only to a
	// peer that runs XDP itself (loader.AttachXDPPass explains why).
	if err := topo.Lab.Do(topo.ISP, func() error {
		ifc, err := net.InterfaceByName(labkit.ISPIf)
		if err != nil {
			return err
		}
		pass, err = loader.AttachXDPPass(ifc.Index)
		return err
	}); err != nil {
		return fmt.Errorf("XDP pass program on the ISP's veth: %w", err)
	}
	say("(A veth only delivers frames that XDP sends back out, as the proxy's answers are,",
		"to a peer running XDP, so the isp side gets a pass-everything XDP program. A real",
		"link partner needs nothing.)")

	cli := topo.CLI(bin, transcript{})
	sh := cli.Runner

	heading("Configure NPTv6 and the NDP proxy")
	cfg := filepath.Join(topo.Lab.RunDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(nptConfig()), 0o600); err != nil {
		return err
	}
	say("npt maps inside <-> outside on the WAN port; mode preserve-host only swaps the",
		"prefix (rfc6296 would also adjust one word of the interface ID so that checksums",
		"need no update). The proxy's prefix `auto` is the NPT outside prefix: it answers",
		"solicitations for those addresses with the WAN port's MAC, in XDP. No firewall",
		"section: the default CPE firewall lets the LAN out and only replies back in, and",
		"apply attaches with the conntrack gate on.")
	fmt.Printf("$ cat %s\n%s\n", cfg, nptConfig())
	if _, err := cli.Run(ctx, "apply", "--config", cfg); err != nil {
		return err
	}
	if _, err := cli.Run(ctx, "status"); err != nil {
		return err
	}

	inside := labkit.LANHostAddr.Addr()
	in16, out16 := inside.As16(), labkit.NPTOutside.Addr().As16()
	copy(in16[:8], out16[:8])
	outside := netip.AddrFrom16(in16)

	heading("The LAN host pings the ISP")
	fmt.Printf("The LAN host is %s inside; outside it is %s.\n", inside, outside)
	say("The echo requests leave from the outside address. The ISP knows no MAC address",
		"for it yet, so its first reply waits for an answer to a Neighbor Solicitation,",
		"which the proxy gives. ICMP is left to the kernel by the conntrack gate",
		"(pass_ct_proto), so TC translates these packets on their way through the kernel",
		"(tc_snpt out, tc_dnpt back).")
	before, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	if _, err := sh.InNS(ctx, topo.ISP, "ip", "-6", "neigh", "show", "dev", labkit.ISPIf); err != nil {
		return err
	}
	if _, err := sh.Ping(ctx, topo.Host, labkit.ISPAddr, 3); err != nil {
		return err
	}
	say("The ISP's neighbour table now holds the outside address at the CPE's WAN MAC:")
	if _, err := sh.InNS(ctx, topo.ISP, "ip", "-6", "neigh", "show", "dev", labkit.ISPIf); err != nil {
		return err
	}
	if _, err := sh.InNS(ctx, topo.CPE, "ip", "-br", "link", "show", "dev", labkit.CPEWANIf); err != nil {
		return err
	}

	heading("The ISP cannot start anything")
	say("The other way round the proxy still answers for the outside address (it exists),",
		"but the firewall drops the unsolicited echo requests (drop_wan_forward). To open",
		"a host to the outside, add a pinhole: firewall.allow, e.g.",
		"`{ to: \"::123\", proto: icmpv6 }`.")
	fw0, err := firewallCounters(ctx, cli)
	if err != nil {
		return err
	}
	if err := pingBlocked(ctx, sh, topo.ISP, outside); err != nil {
		return err
	}
	fw1, err := firewallCounters(ctx, cli)
	if err != nil {
		return err
	}
	fmt.Printf("drop_wan_forward +%d.\n\n", fw1["drop_wan_forward"]-fw0["drop_wan_forward"])
	if fw1["drop_wan_forward"]-fw0["drop_wan_forward"] < 2 {
		return fmt.Errorf("want both echo requests under drop_wan_forward, got +%d", fw1["drop_wan_forward"]-fw0["drop_wan_forward"])
	}

	heading("What each end sees")
	say("The host has only its inside address. It opens a TCP connection to the ISP and",
		"sends 1 MB; the ISP returns the sha256 of what it read. Each end reports the",
		"addresses it sees: the ISP sees the outside address, the host its inside one.")
	if _, err := sh.InNS(ctx, topo.Host, "ip", "-6", "addr", "show", "dev", labkit.HostIf, "scope", "global"); err != nil {
		return err
	}
	r, err := connect(ctx, topo.Lab, topo.Host, netip.Addr{}, topo.ISP, labkit.ISPAddr, 1<<20)
	if err != nil {
		return fmt.Errorf("TCP through NPT: %w", err)
	}
	r.print("host", "isp")
	if r.ClientLocal.Addr() != inside || r.ServerRemote.Addr() != outside {
		return fmt.Errorf("the host connected from %s and the ISP saw %s; want %s inside and %s outside",
			r.ClientLocal.Addr(), r.ServerRemote.Addr(), inside, outside)
	}

	heading("Counters")
	say("tx_ndp_na_redirect: Neighbor Advertisements the proxy sent (a redirect to the veth;",
		"tx_ndp_na on a NIC, XDP_TX). fwd_npt_snpt: packets",
		"from the inside prefix translated to outside and forwarded in XDP; fwd_npt_dnpt:",
		"the way back. tc_snpt / tc_dnpt: the same in the TC slow path, for what the gate",
		"left to the kernel: the pings, the handshake and the close.")
	if _, err := cli.Run(ctx, "stats"); err != nil {
		return err
	}
	after, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	d := after.Sub(before)
	fmt.Println("Since the first ping:")
	printDeltas(d, "tx_ndp_na", "tx_ndp_na_redirect", "fwd_npt_snpt", "fwd_npt_dnpt", "tc_snpt", "tc_dnpt", "pass_ct_proto")
	fmt.Printf("The host sent %d TCP segments, the ISP %d.\n\n", r.ClientSegs, r.ServerSegs)
	if d.NAsSent() == 0 || d["fwd_npt_snpt"].Packets*10 < uint64(r.ClientSegs)*9 ||
		d["fwd_npt_dnpt"].Packets == 0 || d["tc_snpt"].Packets < 3 || d["tc_dnpt"].Packets < 3 {
		return fmt.Errorf("the proxy, XDP or TC translation did not count as expected: %s", d)
	}

	heading("The NPT and proxy maps")
	say("xdpr_npt_out holds the rule for packets that arrive on the WAN port for the",
		"outside prefix (keyed by ingress ifindex + prefix, hence prefixlen 32 + 64 = 96):",
		"rewrite from 2001:db8:aaaa::/64 (bytes 32,1,13,184,170,170) to 2001:db8:bbbb::/64,",
		"mode 1 = preserve-host. xdpr_npt_in holds the reverse. xdpr_ndp_proxy holds the",
		"prefix the proxy answers for on wan0, `auto` resolved to the outside /64.")
	for _, m := range []string{"xdpr_npt_out", "xdpr_ndp_proxy"} {
		if _, err := sh.Run(ctx, nil, "bpftool", "map", "dump", "pinned", filepath.Join(topo.BPFFS, m)); err != nil {
			return err
		}
	}

	heading("Detach")
	_, err = cli.Run(ctx, "detach", "--all")
	return err
}

// nptConfig is the CPE's config: labkit's NPT config without its
// `firewall: {mode: off}`, which the lab tests need to send unsolicited
// traffic in; the demo keeps the default firewall.
func nptConfig() string {
	return fmt.Sprintf(`wan: {interface: %s}
lan: [{interface: %s}]
npt:
  - interface: %s
    inside: %s
    outside: %s
    mode: %s
ndp-proxy:
  - interface: %s
    prefixes: [auto]
`, labkit.CPEWANIf, labkit.CPELANIf, labkit.CPEWANIf, labkit.NPTInside, labkit.NPTOutside, nptMode, labkit.CPEWANIf)
}
