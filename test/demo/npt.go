package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

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
	if err := os.WriteFile(cfg, []byte(topo.Config(nptMode)), 0o600); err != nil {
		return err
	}
	say("npt maps inside <-> outside on the WAN port; mode preserve-host only swaps the",
		"prefix (rfc6296 would also adjust one word of the interface ID so that checksums",
		"need no update). The proxy's prefix `auto` is the NPT outside prefix: it answers",
		"solicitations for those addresses with the WAN port's MAC, in XDP.")
	fmt.Printf("$ cat %s\n%s\n", cfg, topo.Config(nptMode))
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

	heading("The ISP pings the LAN host's outside address")
	fmt.Printf("The LAN host is %s inside; outside it is %s.\n", inside, outside)
	say("The ISP knows no MAC address for it yet, so its first packet waits for an answer",
		"to a Neighbor Solicitation, which the proxy gives. That first packet also meets",
		"unresolved neighbours on the CPE, so the kernel forwards it and TC translates;",
		"every later packet is translated and forwarded in XDP.")
	before, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	if _, err := sh.InNS(ctx, topo.ISP, "ip", "-6", "neigh", "show", "dev", labkit.ISPIf); err != nil {
		return err
	}
	if _, err := sh.Ping(ctx, topo.ISP, outside, 3); err != nil {
		return err
	}
	say("The ISP's neighbour table now holds the outside address at the CPE's WAN MAC:")
	if _, err := sh.InNS(ctx, topo.ISP, "ip", "-6", "neigh", "show", "dev", labkit.ISPIf); err != nil {
		return err
	}
	if _, err := sh.InNS(ctx, topo.CPE, "ip", "-br", "link", "show", "dev", labkit.CPEWANIf); err != nil {
		return err
	}

	heading("What the LAN host sees")
	say("The host has only its inside address. The ISP opens a TCP connection to the",
		"outside address and sends 1 MB; the host accepts it on its inside address and",
		"returns the sha256 of what it read. Each end reports the addresses it sees.")
	if _, err := sh.InNS(ctx, topo.Host, "ip", "-6", "addr", "show", "dev", labkit.HostIf, "scope", "global"); err != nil {
		return err
	}
	if err := nptConnect(ctx, topo, outside, 1<<20); err != nil {
		return err
	}

	heading("Counters")
	say("tx_ndp_na: Neighbor Advertisements the proxy sent (XDP_TX). fwd_npt_dnpt: packets",
		"to the outside prefix translated to inside and forwarded in XDP; fwd_npt_snpt: the",
		"way back. tc_dnpt / tc_snpt: the same in the TC slow path (the first packet).")
	if _, err := cli.Run(ctx, "stats"); err != nil {
		return err
	}
	after, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	d := after.Sub(before)
	fmt.Printf("Since the first ping: tx_ndp_na +%d, fwd_npt_dnpt +%d, fwd_npt_snpt +%d, tc_dnpt +%d, tc_snpt +%d.\n\n",
		d["tx_ndp_na"].Packets, d["fwd_npt_dnpt"].Packets, d["fwd_npt_snpt"].Packets, d["tc_dnpt"].Packets, d["tc_snpt"].Packets)
	if d["tx_ndp_na"].Packets == 0 || d["fwd_npt_dnpt"].Packets < 100 || d["fwd_npt_snpt"].Packets < 10 {
		return fmt.Errorf("the proxy or XDP translation did not count: %s", d)
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

// nptConnect connects from the ISP to outside, where the LAN host listens
// on every address, sends size random bytes and checks the digest the host
// sends back. It prints what each end sees as the two addresses.
func nptConnect(ctx context.Context, topo *labkit.NPTTopology, outside netip.Addr, size int) error {
	var ln net.Listener
	if err := topo.Lab.Do(topo.Host, func() error {
		var err error
		ln, err = net.Listen("tcp", "[::]:0")
		return err
	}); err != nil {
		return fmt.Errorf("listen in %s: %w", topo.Host, err)
	}
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	type server struct {
		local, remote net.Addr
		err           error
	}
	done := make(chan server, 1)
	go func() {
		var s server
		defer func() { done <- s }()
		c, err := ln.Accept()
		if err != nil {
			s.err = fmt.Errorf("accept: %w", err)
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		s.local, s.remote = c.LocalAddr(), c.RemoteAddr()
		h := sha256.New()
		if _, err := io.CopyN(h, c, int64(size)); err != nil {
			s.err = fmt.Errorf("receive: %w", err)
			return
		}
		_, s.err = c.Write(h.Sum(nil))
	}()
	var c net.Conn
	if err := topo.Lab.Do(topo.ISP, func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		var err error
		c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(outside, port).String())
		return err
	}); err != nil {
		ln.Close()
		<-done
		return fmt.Errorf("the ISP connects to [%s]:%d: %w", outside, port, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	data := make([]byte, size)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)
	got := make([]byte, sha256.Size)
	_, werr := c.Write(data)
	if werr == nil {
		_, werr = io.ReadFull(c, got)
	}
	s := <-done
	if err := errors.Join(werr, s.err); err != nil {
		return fmt.Errorf("TCP through NPT: %w", err)
	}
	if string(got) != string(want[:]) {
		return fmt.Errorf("TCP through NPT: digest %x, want %x", got, want)
	}
	fmt.Printf("  isp:  connected from %-26s to %s\n", c.LocalAddr(), c.RemoteAddr())
	fmt.Printf("  host: accepted   from %-26s on %s\n", s.remote, s.local)
	fmt.Printf("  %d bytes, sha256 %x… identical on both ends\n\n", size, want[:8])
	local := s.local.(*net.TCPAddr).AddrPort().Addr()
	if local != labkit.LANHostAddr.Addr() {
		return fmt.Errorf("the host accepted the connection on %s, want its inside address %s", local, labkit.LANHostAddr.Addr())
	}
	return nil
}
