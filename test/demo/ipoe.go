package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// The NPT part of the IPoE story: a ULA LAN the operator set up by hand,
// translated to the learned WAN /64.
var (
	ulaInside = netip.MustParsePrefix("fd00:1::/64")
	ulaRouter = netip.MustParsePrefix("fd00:1::1/64")
	ulaHost   = netip.MustParsePrefix("fd00:1::2/64")
)

func ipoeConfig(t *labkit.IPoETopology) string {
	return t.Config() + fmt.Sprintf(`npt:
  - interface: %s
    inside: %s
    outside: auto          # the WAN /64 from the RA; follows renumbering
    mode: preserve-host
ndp-proxy:
  - interface: %s
    prefixes: [auto]       # the NPT outside prefix, whatever it is now
`, labkit.TunWANIf, ulaInside, labkit.TunWANIf)
}

func ipoeDiagram(t *labkit.IPoETopology) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  host (netns %s): IPv6 from the router's RAs (SLAAC), %s\n", t.Host, labkit.TunHost4)
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "  router (netns %s): xdprouter run — told only its interfaces and token\n", t.Router)
	fmt.Fprintf(&b, "       | veth  %s <-> %s\n", labkit.TunWANIf, labkit.ISPWANIf)
	fmt.Fprintf(&b, "  isp (netns %s):\n", t.ISP)
	fmt.Fprintf(&b, "    radvd          RAs with %s, RDNSS %s, router lifetime 5400 s\n", labkit.IPoEWAN1, labkit.IPoEDNS)
	fmt.Fprintf(&b, "    kea-dhcp6      delegates /56s from %s (T1 4 s, T2 6 s)\n", labkit.IPoEPool1)
	fmt.Fprintf(&b, "    DNS            %s -> %s, %s -> %s\n", labkit.AFTRName, labkit.AFTR6, labkit.UpdateName, labkit.IPoEUpdate)
	fmt.Fprintf(&b, "    AFTR           test/aftr/aftr.py (fixed IPv4 %s for this line)\n", labkit.FixedIPv4)
	fmt.Fprintf(&b, "    update server  http://%s/request (transix's \"update URL\")\n", labkit.UpdateName)
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "  internet (netns %s): %s and %s\n", t.Internet, labkit.Internet4.Addr(), labkit.Internet6.Addr())
	return b.String()
}

// runIPoE is part 4: the whole IPoE line, learned from the ISP.
func runIPoE(ctx context.Context, root, bin string) (err error) {
	heading("Build a lab: an IPoE ISP that teaches, a router that learns")
	say("Seeds 002 and 003: an IPoE line gives the router its WAN /64 by RA and a /56",
		"by DHCPv6-PD; people hard-code the addresses they see today into netplan, the",
		"tunnel and wide-dhcpv6, and everything breaks when the ISP renumbers or the RA's",
		"default route expires. Here nothing is hard-coded: the ISP runs real radvd and",
		"kea-dhcp6-server, names its AFTR and update server in DNS, and renumbers midway.")
	topo, err := labkit.NewIPoETopology()
	if err != nil {
		return err
	}
	defer cleanUp(&err, topo, fmt.Sprintf("Stopped the daemon, radvd, kea, aftr.py; removed namespaces %s, %s, %s, %s.",
		topo.Host, topo.Router, topo.ISP, topo.Internet))
	fmt.Println(ipoeDiagram(topo))
	if err := topo.QuietISPGRO(ctx, bin); err != nil {
		return err
	}
	if err := topo.StartAFTR(ctx, root); err != nil {
		return err
	}
	cli := labkit.CLI{Runner: labkit.Runner{Log: transcript{}}, Bin: bin, NS: topo.Router, BPFFS: topo.BPFFS,
		Socket: filepath.Join(topo.Lab.RunDir(), "xdprouter.sock")}
	sh := cli.Runner
	lab := topo.Lab

	heading("The router's config: interfaces, token, names")
	say("No address anywhere: the WAN address is the RA's /64 plus the token ::feed (as",
		"`ip token`), the LAN /64 is the delegated /56 plus sla-id 1, the tunnel's local",
		"end is the WAN address, its remote and the update URL are DNS names resolved",
		"through the DNS server the RA and DHCPv6 name. The password stays in its file.")
	cfg := filepath.Join(lab.RunDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(ipoeConfig(topo)), 0o600); err != nil {
		return err
	}
	fmt.Printf("$ cat %s\n%s\n", cfg, ipoeConfig(topo))
	// The ULA LAN next to the delegated one, set up by hand as an
	// operator would for hosts that must keep their addresses.
	if err := lab.MustExec(topo.Router, []string{"ip", "-6", "addr", "add", ulaRouter.String(), "dev", labkit.TunLANIf, "nodad"}); err != nil {
		return err
	}
	if err := lab.MustExec(topo.Host, []string{"ip", "-6", "addr", "add", ulaHost.String(), "dev", labkit.TunHostIf, "nodad"}); err != nil {
		return err
	}

	heading("Start the daemon")
	d, err := cli.StartDaemon(ctx, cfg, "--state-dir", filepath.Join(lab.RunDir(), "state"), "--detach-on-exit")
	if err != nil {
		return err
	}
	defer func() {
		if !d.Exited() {
			d.Kill()
		}
	}()
	wan1 := feed(labkit.IPoEWAN1)
	took, err := waitDaemon(ctx, cli, 30*time.Second, func(st labkit.DaemonStatus) bool {
		return st.IPv6 != nil && st.IPv6.WANAddress.Address == wan1 && lanOf(st) != "" && st.IPv6.Gateway != ""
	})
	if err != nil {
		return fmt.Errorf("the router did not learn its WAN and LAN prefixes: %w\n%s", err, d.Log())
	}
	fmt.Printf("Within %s of starting, the router had an RA and a delegated prefix:\n\n", took.Round(time.Millisecond))
	if _, err := cli.Run(ctx, "status"); err != nil {
		return err
	}
	if _, err := sh.InNS(ctx, topo.Router, "ip", "-6", "route", "show", "default"); err != nil {
		return err
	}
	say("The default route is xdprouter's (proto 200), refreshed by every RA: forwarding is",
		"on, so the kernel itself ignores RAs (the accept_ra=2 trap of seed 003 is gone).")
	if err := topo.RouteDelegated(); err != nil {
		return err
	}

	heading("The LAN host configures itself from xdprouter's RA")
	st, err := cli.Status(ctx)
	if err != nil {
		return err
	}
	lan1 := netip.MustParsePrefix(lanOf(*st.Daemon))
	if _, err := waitHostAddr(ctx, topo, lan1, "dynamic"); err != nil {
		return err
	}
	if _, err := sh.InNS(ctx, topo.Host, "ip", "-6", "addr", "show", "dev", labkit.TunHostIf, "scope", "global"); err != nil {
		return err
	}
	if _, err := sh.Ping(ctx, topo.Host, labkit.Internet6.Addr(), 3); err != nil {
		return err
	}

	heading("Fixed IPv4 through the tunnel, after the update URL")
	say("The tunnel waited for its remote's name to resolve; once up, the provisioner made",
		"the ISP's update request from the tunnel's local address. The update server saw:")
	if err := waitUpdate(topo, strings.TrimSuffix(wan1, "/64")); err != nil {
		return err
	}
	for _, r := range topo.Update.Requests() {
		fmt.Printf("  GET /request from %s, username %s, a password of %d characters\n", r.Source, r.Username, len(r.Password))
	}
	fmt.Println()
	say("LAN IPv4 is masqueraded to the fixed address "+labkit.FixedIPv4Str+" (nftables, kernel",
		"conntrack) and carried in ipip6 to the AFTR. A ping is ICMP: the conntrack gate leaves",
		"it to the kernel (pass_ct_proto), which masquerades it, and TC encapsulates it.")
	c0, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	if _, err := sh.Ping(ctx, topo.Host, labkit.Internet4.Addr(), 3); err != nil {
		return err
	}
	c1, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	dc := c1.Sub(c0)
	printDeltas(dc, "pass_ct_proto", "tc_encap", "tc_decap", "fwd_nat44_snat", "fwd_nat44_dnat")
	if dc["pass_ct_proto"].Packets < 6 || sumPackets(dc, "fwd_nat44_snat", "fwd_nat44_dnat") != 0 {
		return fmt.Errorf("want the pings (both ways) in the kernel, pass_ct_proto, and none in NAT44 in XDP: %s", dc)
	}

	heading("NAT44 in XDP")
	say("TCP is another matter. The kernel makes the masquerade binding on a flow's",
		"first packets; once conntrack holds the flow established, XDP reads the binding",
		"from the conntrack entry and applies it itself: it rewrites the source to the",
		"fixed IPv4 and encapsulates (fwd_nat44_snat), and decapsulates the replies and",
		"rewrites them back to the LAN host (fwd_nat44_dnat). An upload, whose far end",
		"reports the address it sees, then a download, 1 MB each:")
	r, err := connect(ctx, lab, topo.Host, netip.Addr{}, topo.Internet, labkit.Internet4.Addr(), 1<<20)
	if err != nil {
		return err
	}
	r.print("host", "internet")
	if r.ServerRemote.Addr() != labkit.FixedIPv4 {
		return fmt.Errorf("the internet host saw %s, want the fixed IPv4 %s", r.ServerRemote.Addr(), labkit.FixedIPv4)
	}
	c2, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	dl, err := labkit.Download(ctx, lab, topo.Host, topo.Internet, labkit.Internet4.Addr(), 1<<20)
	if err != nil {
		return err
	}
	fmt.Printf("  download: %d bytes from %s, sha256 %s… identical on both ends\n\n", dl.Bytes, labkit.Internet4.Addr(), dl.RecvSHA[:16])
	c3, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	upD, dlD := c2.Sub(c1), c3.Sub(c2)
	fmt.Printf("  %-18s %8s %8s\n", "", "upload", "download")
	for _, n := range []string{"fwd_nat44_snat", "fwd_nat44_dnat", "pass_ct_tcp_flags", "pass_ct_tcp_state", "pass_ct_nat", "pass_tun_nat44"} {
		fmt.Printf("  %-18s %+8d %+8d\n", n, upD[n].Packets, dlD[n].Packets)
	}
	fmt.Println()
	say("The handshakes and closes went through the kernel (SYN, FIN: pass_ct_tcp_flags;",
		"what follows a FIN: pass_ct_tcp_state); the data and its ACKs took XDP.",
		"conntrack keeps the flows with the kernel's binding (the reply goes to "+labkit.FixedIPv4Str+"):")
	if _, err := sh.InNS(ctx, topo.Router, "conntrack", "-L", "-p", "tcp", "-d", labkit.Internet4.Addr().String()); err != nil {
		return err
	}
	if upD["fwd_nat44_snat"].Packets*10 < uint64(r.ClientSegs)*9 || upD["fwd_nat44_dnat"].Packets == 0 ||
		dlD["fwd_nat44_dnat"].Packets < (1<<20)/1420*9/10 ||
		sumPackets(upD, "pass_ct_nat", "pass_tun_nat44")+sumPackets(dlD, "pass_ct_nat", "pass_tun_nat44") != 0 {
		return fmt.Errorf("NAT44 in XDP: upload %d segments: %s; download: %s", r.ClientSegs, upD, dlD)
	}

	heading("NPTv6 and the NDP proxy, outside: auto")
	say("The host's ULA address "+ulaHost.Addr().String()+" leaves as the same host part in the",
		"learned WAN /64; the ISP's router solicits that address and the NDP proxy, in XDP,",
		"answers for it. The router's own WAN address ::feed is left out of both. The",
		"pings are translated in TC (ICMP is the kernel's), a TCP upload from the ULA",
		"address in XDP once established:")
	c0, err = cli.Counters(ctx)
	if err != nil {
		return err
	}
	if _, err := sh.InNS(ctx, topo.Host, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-I", ulaHost.Addr().String(),
		labkit.Internet6.Addr().String()); err != nil {
		return err
	}
	r, err = connect(ctx, lab, topo.Host, ulaHost.Addr(), topo.Internet, labkit.Internet6.Addr(), 1<<20)
	if err != nil {
		return err
	}
	r.print("host", "internet")
	c1, err = cli.Counters(ctx)
	if err != nil {
		return err
	}
	dc = c1.Sub(c0)
	printDeltas(dc, "tx_ndp_na", "tx_ndp_na_redirect", "tc_snpt", "tc_dnpt", "fwd_npt_snpt", "fwd_npt_dnpt")
	out16, in16 := labkit.IPoEWAN1.Addr().As16(), ulaHost.Addr().As16()
	copy(in16[:8], out16[:8])
	if want := netip.AddrFrom16(in16); r.ServerRemote.Addr() != want {
		return fmt.Errorf("the internet host saw %s, want the NPT outside address %s", r.ServerRemote.Addr(), want)
	}
	if dc["tc_snpt"].Packets < 3 || dc["fwd_npt_snpt"].Packets*10 < uint64(r.ClientSegs)*9 || dc["fwd_npt_dnpt"].Packets == 0 {
		return fmt.Errorf("NPT: pings in TC, TCP in XDP expected, got %s", dc)
	}

	heading("The ISP renumbers")
	say("radvd now advertises "+labkit.IPoEWAN2.String()+" (and the old /64 with lifetime 0); kea",
		"delegates from "+labkit.IPoEPool2.String()+" only. The RA moves the WAN address, the tunnel's",
		"local end, NPT's outside prefix and the proxied prefix in one reconcile pass; the",
		"next Renew (T1, 4 s) brings the new /56, and the LAN gets the new /64 while the",
		"old one is advertised deprecated (preferred lifetime 0) until it expires.")
	start := time.Now()
	if err := topo.Renumber(labkit.IPoEWAN2, labkit.IPoEWAN1, labkit.IPoEPool2); err != nil {
		return err
	}
	wan2 := feed(labkit.IPoEWAN2)
	if _, err := waitDaemon(ctx, cli, 10*time.Second, func(st labkit.DaemonStatus) bool {
		return st.IPv6 != nil && st.IPv6.WANAddress.Address == wan2
	}); err != nil {
		return err
	}
	fmt.Printf("WAN address %s in force %s after the ISP's change.\n", wan2, time.Since(start).Round(time.Millisecond))
	if _, err := waitDaemon(ctx, cli, 20*time.Second, func(st labkit.DaemonStatus) bool {
		p, err := netip.ParsePrefix(lanOf(st))
		return err == nil && labkit.IPoEPool2.Contains(p.Addr())
	}); err != nil {
		return err
	}
	fmt.Printf("LAN prefix from the new pool %s after the ISP's change (at the Renew).\n\n", time.Since(start).Round(time.Millisecond))
	if err := topo.RouteDelegated(); err != nil {
		return err
	}
	if _, err := cli.Run(ctx, "status"); err != nil {
		return err
	}
	st, err = cli.Status(ctx)
	if err != nil {
		return err
	}
	lan2 := netip.MustParsePrefix(lanOf(*st.Daemon))
	if _, err := waitHostAddr(ctx, topo, lan1, "deprecated"); err != nil {
		return err
	}
	if _, err := waitHostAddr(ctx, topo, lan2, "dynamic"); err != nil {
		return err
	}
	if _, err := sh.InNS(ctx, topo.Host, "ip", "-6", "addr", "show", "dev", labkit.TunHostIf, "scope", "global"); err != nil {
		return err
	}
	say("Traffic flows again, from the new addresses; the update URL was requested again",
		"from the new local address, and NPT now translates into the new /64.")
	if _, err := sh.Ping(ctx, topo.Host, labkit.Internet6.Addr(), 3); err != nil {
		return err
	}
	if err := waitUpdate(topo, strings.TrimSuffix(wan2, "/64")); err != nil {
		return err
	}
	if _, err := sh.Ping(ctx, topo.Host, labkit.Internet4.Addr(), 3); err != nil {
		return err
	}
	if _, err := sh.InNS(ctx, topo.Host, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-I", ulaHost.Addr().String(),
		labkit.Internet6.Addr().String()); err != nil {
		return err
	}

	heading("Stop the daemon")
	say("--detach-on-exit: the addresses, routes, tunnel and maps it made go with it; the",
		"LAN hears a last RA with router lifetime 0.")
	if err := d.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		return err
	}
	return nil
}

// feed is the router's WAN address in p (token ::feed), as status shows it.
func feed(p netip.Prefix) string {
	return strings.TrimSuffix(p.Addr().String(), "::") + "::feed/64"
}

func lanOf(st labkit.DaemonStatus) string {
	if st.IPv6 == nil || len(st.IPv6.LANs) == 0 {
		return ""
	}
	return st.IPv6.LANs[0].Prefix.Prefix
}

// waitDaemon polls the daemon's status until ok, and says how long it took.
func waitDaemon(ctx context.Context, cli labkit.CLI, timeout time.Duration, ok func(labkit.DaemonStatus) bool) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < timeout {
		st, err := cli.Status(ctx)
		if err == nil && st.Daemon != nil && ok(*st.Daemon) {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("not within %s", timeout)
}

// waitHostAddr waits for the LAN host to have an address in p whose
// flags include flag ("dynamic", "deprecated").
func waitHostAddr(ctx context.Context, t *labkit.IPoETopology, p netip.Prefix, flag string) (string, error) {
	re := regexp.MustCompile(`inet6 (` + regexp.QuoteMeta(strings.TrimSuffix(p.Addr().String(), "::")) + `:[0-9a-f:]+)/64 scope global [a-z ]*` + flag)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := t.Lab.Exec(t.Host, "ip", "-6", "addr", "show", "dev", labkit.TunHostIf, "scope", "global")
		if err != nil {
			return "", err
		}
		if m := re.FindStringSubmatch(out); m != nil {
			return m[1], nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the LAN host has no %s address in %s:\n%s", flag, p, out)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitUpdate waits for a provisioning request from local.
func waitUpdate(t *labkit.IPoETopology, local string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range t.Update.Requests() {
			if r.Source.String() == local && r.Password == labkit.IPoEPassword {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no update request from %s: %+v", local, t.Update.Requests())
}
