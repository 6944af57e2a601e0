package lab

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// TestSeed000 reproduces seed 000 and shows it working by construction, in
// both NPT modes: the ISP router (plain Linux, no proxy configuration)
// solicits the LAN host's outside address, xdprouter's NDP proxy answers
// (its prefix derived from the NPT outside prefix by `auto`), the ISP
// pings it and opens a TCP connection to it, and the LAN host sees only
// its inside address. Captures on both sides of the router are checked by
// tshark: every checksum good, no inside address outside, no outside
// address inside. The router's ports are gated by conntrack: ICMP is
// always the kernel's (pass_ct_proto), so the pings are translated by the
// TC slow path, once; the TCP connection's handshake and close go the
// same way, its established data segments are translated in XDP.
func TestSeed000(t *testing.T) { forEachTCMode(t, testSeed000Modes) }

func testSeed000Modes(t *testing.T) {
	for _, mode := range []string{"preserve-host", "rfc6296"} {
		t.Run(mode, func(t *testing.T) { testSeed000(t, mode) })
	}
}

func testSeed000(t *testing.T, mode string) {
	needRoot(t)
	for _, tool := range []string{"tcpdump", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make test installs it): %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := newNPTLab(t)
	t.Logf("lab:\n%s", topo.Diagram())
	ispTakesXDPFrames(t, topo)
	cli := topo.CLI(xdprouterBin, t)
	r := cli.Runner
	dir := t.TempDir()
	cfg := filepath.Join(dir, "xdprouter.yaml")
	if err := os.WriteFile(cfg, []byte(topo.Config(mode)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("config:\n%s", topo.Config(mode))
	mustCLI(t, ctx, cli, "apply", "--config", cfg)
	mustCLI(t, ctx, cli, "status")
	checkStatusNPT(t, ctx, cli, mode)

	inside := labkit.LANHostAddr.Addr()
	outside := outsideAddr(inside, labkit.NPTInside, labkit.NPTOutside, mode)
	t.Logf("LAN host %s is %s outside (%s)", inside, outside, mode)
	if mode == "preserve-host" && outside != netip.MustParseAddr("2001:db8:aaaa::123") {
		t.Fatalf("preserve-host maps %s to %s", inside, outside)
	}

	ispPcap, hostPcap := filepath.Join(dir, "isp.pcap"), filepath.Join(dir, "host.pcap")
	stopISP := startCapture(t, topo.Lab, topo.ISP, labkit.ISPIf, ispPcap, "ip6")
	stopHost := startCapture(t, topo.Lab, topo.Host, labkit.HostIf, hostPcap, "ip6")

	// 1. The first packet: the ISP has no neighbour entry for the outside
	// address (the proxy must answer), the CPE none for the LAN host nor
	// for the ISP. The gate hands ICMP to the kernel in both directions
	// (pass_ct_proto, before the route is looked up), TC translates.
	c0 := mustCounters(t, ctx, cli)
	if _, err := r.Ping(ctx, topo.ISP, outside, 1); err != nil {
		t.Logf("counters: %s", mustCounters(t, ctx, cli).Sub(c0))
		mustRun(t, ctx, r, netlab.InNS(topo.ISP, "ip", "-6", "neigh")...)
		mustRun(t, ctx, r, netlab.InNS(topo.CPE, "ip", "-6", "neigh")...)
		mustRun(t, ctx, r, netlab.InNS(topo.Host, "ip", "-6", "neigh")...)
		t.Fatalf("first ping: %v", err)
	}
	c1 := mustCounters(t, ctx, cli)
	d := c1.Sub(c0)
	t.Logf("first ping: %s", d)
	if d.NAsSent() == 0 {
		t.Errorf("first ping: the proxy sent no NA")
	}
	for _, name := range []string{"pass_ct_proto", "tc_dnpt", "tc_snpt"} {
		if d[name].Packets == 0 {
			t.Errorf("first ping: %s did not count (want the proxy to answer and the slow path to translate)", name)
		}
	}
	neigh := mustRun(t, ctx, r, netlab.InNS(topo.ISP, "ip", "-6", "neigh", "show", outside.String(), "dev", labkit.ISPIf)...)
	st := mustStatus(t, ctx, cli)
	if wan := mustIface(t, st, labkit.CPEWANIf); !strings.Contains(neigh.Stdout, "lladdr "+wan.MAC) {
		t.Errorf("the ISP's neighbour entry for %s is %q, want the CPE's WAN MAC %s", outside, neigh.Stdout, wan.MAC)
	}

	// 2. Neighbours known: ICMP still goes to the kernel, and the slow
	// path translates each echo request and reply once; XDP none.
	if _, err := r.Ping(ctx, topo.ISP, outside, 5); err != nil {
		t.Fatal(err)
	}
	c2 := mustCounters(t, ctx, cli)
	d = c2.Sub(c1)
	t.Logf("next five pings: %s", d)
	if d["pass_ct_proto"].Packets < 10 {
		t.Errorf("the gate passed %d packets to the kernel as ICMP, want >= 10 (5 requests, 5 replies)", d["pass_ct_proto"].Packets)
	}
	if d["tc_dnpt"].Packets < 5 || d["tc_snpt"].Packets < 5 {
		t.Errorf("TC translated %d / %d packets, want >= 5 each way", d["tc_dnpt"].Packets, d["tc_snpt"].Packets)
	}
	if d["fwd_npt_dnpt"].Packets != 0 || d["fwd_npt_snpt"].Packets != 0 {
		t.Errorf("XDP translated %d / %d ICMP packets the gate must leave to the kernel", d["fwd_npt_dnpt"].Packets, d["fwd_npt_snpt"].Packets)
	}

	// 3. TCP from the ISP to the outside address: the handshake through
	// the kernel (the gate: new, SYN, not yet ESTABLISHED), the data
	// translated in XDP, and nothing translated twice: TC translates no
	// more packets than XDP passed to the kernel.
	const tcpSize = 4 << 20
	res := tcpThroughNPT(t, topo, outside, tcpSize)
	t.Logf("TCP: %s", res)
	c3 := mustCounters(t, ctx, cli)
	d = c3.Sub(c2)
	t.Logf("TCP counters: %s", d)
	var passed uint64
	for name, v := range d {
		if strings.HasPrefix(name, "pass_") {
			passed += v.Packets
		}
	}
	// 90% of the ISP's data segments (at most 1500 bytes each on the wire).
	if want := uint64(tcpSize / 1500 * 9 / 10); d["fwd_npt_dnpt"].Packets < want {
		t.Errorf("XDP translated %d segments into the LAN (fwd_npt_dnpt), want >= %d: the established flow left the fast path", d["fwd_npt_dnpt"].Packets, want)
	}
	if d["fwd_npt_snpt"].Packets == 0 {
		t.Errorf("XDP translated none of the LAN host's ACKs (fwd_npt_snpt)")
	}
	if d["tc_dnpt"].Packets == 0 || d["tc_snpt"].Packets == 0 {
		t.Errorf("TC translated %d / %d packets: want the handshake each way in the slow path", d["tc_dnpt"].Packets, d["tc_snpt"].Packets)
	}
	if tc := d["tc_dnpt"].Packets + d["tc_snpt"].Packets; tc > passed {
		t.Errorf("TC translated %d packets, XDP passed only %d to the kernel: packets XDP translated were translated again", tc, passed)
	}

	// 4. The same transfer through the slow path alone: conntrack told
	// not to track TCP (notrack in the raw prerouting hook), the gate
	// finds no entry for any segment and the kernel forwards them all,
	// GRO-merged, TC translating each (the captures check the partial
	// checksums of the super-packets).
	mustRun(t, ctx, r, netlab.InNS(topo.CPE, "nft", "add table inet lab-notrack { chain pre { type filter hook prerouting priority raw; meta l4proto tcp notrack; }; }")...)
	res = tcpThroughNPT(t, topo, outside, tcpSize)
	t.Logf("TCP, not tracked: %s", res)
	c4 := mustCounters(t, ctx, cli)
	d = c4.Sub(c3)
	t.Logf("TCP counters, not tracked: %s", d)
	mustRun(t, ctx, r, netlab.InNS(topo.CPE, "nft", "delete", "table", "inet", "lab-notrack")...)
	if d["fwd_npt_dnpt"].Packets != 0 || d["fwd_npt_snpt"].Packets != 0 {
		t.Errorf("XDP translated %d / %d packets of a flow conntrack does not track", d["fwd_npt_dnpt"].Packets, d["fwd_npt_snpt"].Packets)
	}
	if d["pass_ct_new"].Packets == 0 || d["tc_dnpt"].Bytes < tcpSize || d["tc_snpt"].Packets == 0 {
		t.Errorf("pass_ct_new %d packets, tc_dnpt %d bytes (want >= %d), tc_snpt %d packets: want the whole transfer through the slow path",
			d["pass_ct_new"].Packets, d["tc_dnpt"].Bytes, tcpSize, d["tc_snpt"].Packets)
	}

	stopISP()
	stopHost()
	// On the ISP side, what came through the router has the outside
	// source; on the host side, the inside destination.
	ispSide := checkCapture(t, ctx, r, ispPcap, labkit.NPTInside, func(src, dst netip.Addr) bool { return labkit.NPTOutside.Contains(src) })
	hostSide := checkCapture(t, ctx, r, hostPcap, labkit.NPTOutside, func(src, dst netip.Addr) bool { return labkit.NPTInside.Contains(dst) })
	// A checksum already bad where its packet was sent is the sender's
	// (seen about once in ten runs: one host segment of ~3000); the router
	// must carry it unchanged and break none: no more bad packets arrive
	// through it in a direction than were sent bad into it.
	for _, d := range []struct {
		name       string
		sent, recv int
	}{{"host -> isp", hostSide.badSent, ispSide.badRecv}, {"isp -> host", ispSide.badSent, hostSide.badRecv}} {
		if d.sent > 0 {
			t.Logf("%s: %d packets already had a bad checksum where they were sent", d.name, d.sent)
		}
		if d.recv > d.sent {
			t.Errorf("%s: %d packets arrived through the router with a bad checksum, %d were sent so", d.name, d.recv, d.sent)
		}
	}
	t.Logf("tshark: ISP side %d packets, host side %d packets, checksums checked (GSO super-packets, partial checksum checked: %d / %d)",
		ispSide.packets, hostSide.packets, ispSide.gso, hostSide.gso)
	if ispSide.naFor[outside] == 0 {
		t.Errorf("no Neighbor Advertisement for %s on the ISP side", outside)
	}
	if ispSide.addrs[outside] == 0 || hostSide.addrs[inside] == 0 {
		t.Errorf("ISP side saw %s %d times, host side saw %s %d times", outside, ispSide.addrs[outside], inside, hostSide.addrs[inside])
	}
	if ispSide.tcp < 100 || hostSide.tcp < 100 {
		t.Errorf("only %d / %d TCP segments captured", ispSide.tcp, hostSide.tcp)
	}
}

// outsideAddr is what NPT makes of a: preserve-host swaps the prefix;
// rfc6296 also adds sum(inside) - sum(outside) to the first IID word that
// is not 0xffff (RFC 6296 3.2, 3.5; /64 here). Computed independently of
// the loader.
func outsideAddr(a netip.Addr, in, out netip.Prefix, mode string) netip.Addr {
	b, o := a.As16(), out.Addr().As16()
	copy(b[:8], o[:8])
	if mode == "rfc6296" {
		sum := func(p netip.Prefix) uint32 {
			x := p.Addr().As16()
			var s uint32
			for i := 0; i < 16; i += 2 {
				s += uint32(binary.BigEndian.Uint16(x[i:]))
			}
			return s
		}
		fold := func(s uint32) uint32 {
			for s > 0xffff {
				s = s&0xffff + s>>16
			}
			return s
		}
		adj := fold(fold(sum(in)) + 0xffff - fold(sum(out)))
		for w := 4; w < 8; w++ {
			if v := binary.BigEndian.Uint16(b[2*w:]); v != 0xffff {
				n := fold(uint32(v) + adj)
				if n == 0xffff {
					n = 0
				}
				binary.BigEndian.PutUint16(b[2*w:], uint16(n))
				break
			}
		}
	}
	return netip.AddrFrom16(b)
}

func mustCounters(t *testing.T, ctx context.Context, cli labkit.CLI) labkit.Counters {
	t.Helper()
	c, err := cli.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type captureSummary struct {
	packets, tcp int
	// gso counts TCP super-packets (longer than the link's MTU) whose
	// partial checksum was checked instead (see checkCapture).
	gso int
	// Packets with a bad L4 checksum, by whether they came through the
	// router (badRecv) or were sent on this side (badSent).
	badSent, badRecv int
	addrs            map[netip.Addr]int
	naFor            map[netip.Addr]int
}

// checkCapture has tshark verify every TCP, UDP and ICMPv6 checksum in
// file and reports any global address inside forbidden. Bad checksums are
// counted by direction (viaRouter says whether a packet came through the
// router) for the caller to judge; every other problem fails the test.
//
// A TCP frame longer than the link's MTU was never on a wire: when the
// kernel forwards a flow (the slow path), GRO on the router's veth merges
// segments and the kernel passes the super-packet on as GSO, captured
// before it is split. Its checksum field holds only the pseudo-header sum
// (CHECKSUM_PARTIAL, completed per segment by the split or the NIC),
// which tshark calls bad; it is checked as that instead, over the
// addresses the packet carries: after NPT, the translated one.
func checkCapture(t *testing.T, ctx context.Context, r labkit.Runner, file string, forbidden netip.Prefix, viaRouter func(src, dst netip.Addr) bool) captureSummary {
	t.Helper()
	res := mustRun(t, ctx, labkit.Runner{}, "tshark", "-n", "-r", file,
		"-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
		"-T", "fields", "-E", "separator=|",
		"-e", "frame.number", "-e", "ipv6.src", "-e", "ipv6.dst", "-e", "ipv6.plen", "-e", "frame.len",
		"-e", "tcp.checksum.status", "-e", "udp.checksum.status", "-e", "icmpv6.checksum.status",
		"-e", "icmpv6.type", "-e", "icmpv6.nd.na.target_address", "-e", "tcp.checksum")
	sum := captureSummary{addrs: map[netip.Addr]int{}, naFor: map[netip.Addr]int{}}
	bad := 0
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 11 {
			continue
		}
		sum.packets++
		plen, _ := strconv.Atoi(f[3])
		flen, _ := strconv.Atoi(f[4])
		problems := []string{}
		if flen != 14+40+plen {
			problems = append(problems, fmt.Sprintf("frame %d bytes for payload %d (merged by GRO? checksum unverifiable)", flen, plen))
		}
		if f[5] != "" && flen > 14+linkMTU {
			sum.gso++
			src, _ := netip.ParseAddr(f[1])
			dst, _ := netip.ParseAddr(f[2])
			check, err := strconv.ParseUint(strings.TrimPrefix(f[10], "0x"), 16, 16)
			if want := tcpPseudoSum(src, dst, plen); err != nil || uint16(check) != want {
				problems = append(problems, fmt.Sprintf("GSO super-packet of %d bytes: TCP checksum field %s, want the partial (pseudo-header) sum %#04x", flen, f[10], want))
			}
			f[5] = "1" // checked above
		}
		for _, st := range []struct{ name, v string }{{"tcp", f[5]}, {"udp", f[6]}, {"icmpv6", f[7]}} {
			if st.v != "" && st.v != "1" {
				src, _ := netip.ParseAddr(f[1])
				dst, _ := netip.ParseAddr(f[2])
				if viaRouter(src, dst) {
					sum.badRecv++
				} else {
					sum.badSent++
				}
				t.Logf("%s packet %s (%s -> %s): %s checksum status %s (1 is good)", filepath.Base(file), f[0], f[1], f[2], st.name, st.v)
			}
		}
		if f[5] != "" {
			sum.tcp++
		}
		for _, s := range f[1:3] {
			if a, err := netip.ParseAddr(s); err == nil {
				sum.addrs[a]++
				if forbidden.Contains(a) {
					problems = append(problems, fmt.Sprintf("address %s from %s on this side", a, forbidden))
				}
			}
		}
		if f[8] == "136" {
			if a, err := netip.ParseAddr(f[9]); err == nil {
				sum.naFor[a]++
			}
		}
		if len(problems) > 0 {
			bad++
			if bad <= 10 {
				t.Errorf("%s packet %s (%s -> %s): %s", filepath.Base(file), f[0], f[1], f[2], strings.Join(problems, "; "))
			}
		}
	}
	if sum.packets == 0 {
		t.Errorf("%s: nothing captured", file)
	}
	if bad > 10 {
		t.Errorf("%s: %d bad packets in all", file, bad)
	}
	return sum
}

// linkMTU is the MTU of the lab's links (the kernel's default for veth).
const linkMTU = 1500

// tcpPseudoSum is what a CHECKSUM_PARTIAL TCP packet over IPv6 carries in
// its checksum field: the folded sum of the pseudo-header (RFC 8200 8.1),
// not complemented, for TCP right behind the IPv6 header.
func tcpPseudoSum(src, dst netip.Addr, plen int) uint16 {
	var s uint32
	for _, a := range []netip.Addr{src, dst} {
		b := a.As16()
		for i := 0; i < 16; i += 2 {
			s += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	s += uint32(plen) + 6 // upper-layer length, next header TCP
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// tcpThroughNPT connects from the ISP to outside:port, where the LAN host
// listens on its inside address, sends size random bytes and reads back
// their digest. It checks what each end sees as the two addresses.
func tcpThroughNPT(t *testing.T, topo *labkit.NPTTopology, outside netip.Addr, size int) string {
	t.Helper()
	var ln net.Listener
	err := topo.Lab.Do(topo.Host, func() error {
		var err error
		ln, err = net.Listen("tcp", "[::]:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	type server struct {
		local, remote netip.AddrPort
		err           error
	}
	done := make(chan server, 1)
	go func() {
		var s server
		c, err := ln.Accept()
		if err != nil {
			s.err = err
			done <- s
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		s.local, s.remote = c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
		h := sha256.New()
		if _, err := io.CopyN(h, c, int64(size)); err != nil {
			s.err = err
		} else {
			_, s.err = c.Write(h.Sum(nil))
		}
		done <- s
	}()
	var c net.Conn
	err = topo.Lab.Do(topo.ISP, func() error {
		var err error
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(outside, uint16(port)).String(), 10*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("ISP connects to [%s]:%d: %v", outside, port, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, size)
	_, _ = rand.Read(data)
	start := time.Now()
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	want := sha256.Sum256(data)
	s := <-done
	if s.err != nil {
		t.Fatal(s.err)
	}
	if string(got) != string(want[:]) {
		t.Fatalf("digest mismatch: %x vs %x", got, want)
	}
	if s.local.Addr() != labkit.LANHostAddr.Addr() {
		t.Errorf("the LAN host sees the connection to %s, want its inside address %s", s.local.Addr(), labkit.LANHostAddr.Addr())
	}
	if s.remote.Addr() != labkit.ISPAddr {
		t.Errorf("the LAN host sees the connection from %s, want %s", s.remote.Addr(), labkit.ISPAddr)
	}
	if ra := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); ra != outside {
		t.Errorf("the ISP is connected to %s, want %s", ra, outside)
	}
	return fmt.Sprintf("%d bytes [%s]->[%s]:%d in %v, digest matches; the host saw [%s] -> [%s]",
		size, labkit.ISPAddr, outside, port, elapsed.Round(time.Millisecond), s.remote.Addr(), s.local.Addr())
}

// checkStatusNPT reads `status --json` for the NPT rule, the proxied prefix
// (derived from the outside prefix by `auto`) and the slow-path links.
func checkStatusNPT(t *testing.T, ctx context.Context, cli labkit.CLI, mode string) {
	t.Helper()
	res, err := cli.Run(ctx, "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		NPT []struct {
			Interface, Inside, Outside, Mode string
		} `json:"npt"`
		NDPProxy []struct {
			Interface, Prefix, Mode string
		} `json:"ndp_proxy"`
		TCLinks []string `json:"tc_links"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatalf("status --json: %v", err)
	}
	if len(st.NPT) != 1 || st.NPT[0].Interface != labkit.CPEWANIf || st.NPT[0].Inside != labkit.NPTInside.String() ||
		st.NPT[0].Outside != labkit.NPTOutside.String() || st.NPT[0].Mode != mode {
		t.Errorf("status npt = %+v", st.NPT)
	}
	if len(st.NDPProxy) != 1 || st.NDPProxy[0].Prefix != labkit.NPTOutside.String() || st.NDPProxy[0].Mode != "prefix" {
		t.Errorf("status ndp_proxy = %+v, want the outside prefix %s", st.NDPProxy, labkit.NPTOutside)
	}
	if len(st.TCLinks) != 2 {
		t.Errorf("status tc_links = %v, want ingress and egress", st.TCLinks)
	}
}

// Removing npt from the config removes its TC slow path: nothing of NPT
// stays attached to the WAN.
func TestNPTRemovedDetachesSlowPath(t *testing.T) { forEachTCMode(t, testNPTRemovedDetachesSlowPath) }

func testNPTRemovedDetachesSlowPath(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topo := newNPTLab(t)
	cli := topo.CLI(xdprouterBin, t)
	cfg := filepath.Join(t.TempDir(), "xdprouter.yaml")
	links := func() []string {
		entries, _ := os.ReadDir(filepath.Join(topo.BPFFS, "links"))
		var out []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "tc_") {
				out = append(out, e.Name())
			}
		}
		return out
	}
	for _, c := range []struct {
		config string
		want   int
	}{{topo.Config("rfc6296"), 2}, {"wan: {interface: " + labkit.CPEWANIf + "}\nlan: [{interface: " + labkit.CPELANIf + "}]\n", 0}} {
		if err := os.WriteFile(cfg, []byte(c.config), 0o600); err != nil {
			t.Fatal(err)
		}
		mustCLI(t, ctx, cli, "apply", "--config", cfg)
		if got := links(); len(got) != c.want {
			t.Errorf("after applying\n%s\nslow-path links %v, want %d", c.config, got, c.want)
		}
		// The proxy's solicited-node groups are never joined: the
		// interface takes all multicast (and keeps it).
		if out, _ := topo.Lab.Exec(topo.CPE, "ip", "link", "show", labkit.CPEWANIf); !strings.Contains(out, "ALLMULTI") {
			t.Errorf("%s is not in all-multicast mode:\n%s", labkit.CPEWANIf, out)
		}
	}
	out, _ := topo.Lab.Exec(topo.CPE, "bpftool", "net", "show", "dev", labkit.CPEWANIf)
	if strings.Contains(out, "tc_dnpt") || strings.Contains(out, "tc_snpt") {
		t.Errorf("TC programs still on %s:\n%s", labkit.CPEWANIf, out)
	}
	// With clsact, the qdisc xdprouter added to the WAN goes too.
	checkNoClsact(t, ctx, cli.Runner, topo.CPE, labkit.CPEWANIf)
}

// newNPTLab builds the isp — cpe — host lab, removed when the test ends.
func newNPTLab(t *testing.T) *labkit.NPTTopology {
	t.Helper()
	topo, err := labkit.NewNPTTopology()
	if err != nil {
		t.Fatal(err)
	}
	labkit.CloseAtEnd(t, topo)
	return topo
}

// ispTakesXDPFrames puts an XDP_PASS program on the ISP's veth: a veth
// takes frames another veth's XDP program sends it (XDP_TX answers of the
// proxy, redirects) only while an XDP program keeps its NAPI on.
func ispTakesXDPFrames(t *testing.T, topo *labkit.NPTTopology) {
	t.Helper()
	if err := topo.Lab.Do(topo.ISP, func() error {
		ifc, err := net.InterfaceByName(labkit.ISPIf)
		if err != nil {
			return err
		}
		c, err := loader.AttachXDPPass(ifc.Index)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
