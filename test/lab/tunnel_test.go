package lab

import (
	"context"
	"fmt"
	"github.com/xdprouter/xdprouter/test/netlab"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// newTunnelTopology builds host — router — isp (AFTR) — internet and
// starts the AFTR; the router is left bare. The context ends after timeout.
func newTunnelTopology(t *testing.T, timeout time.Duration) (*labkit.TunnelTopology, context.Context) {
	t.Helper()
	needRoot(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Fatalf("tunnel lab needs /usr/bin/python3 for the AFTR (make test installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	topo, err := labkit.NewTunnelTopology()
	if err != nil {
		t.Fatal(err)
	}
	labkit.CloseAtEnd(t, topo)
	root, err := labkit.FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.QuietISPGRO(ctx, xdprouterBin); err != nil {
		t.Fatal(err)
	}
	if err := topo.StartAFTR(ctx, root); err != nil {
		t.Fatal(err)
	}
	return topo, ctx
}

// newTunnelLab builds — router — isp (AFTR) — internet, starts the
// AFTR and applies config to the router.
func newTunnelLab(t *testing.T, config string) (*labkit.TunnelTopology, labkit.CLI, context.Context) {
	t.Helper()
	topo, ctx := newTunnelTopology(t, 150*time.Second)
	cli := labkit.CLI{Runner: labkit.Runner{Log: t}, Bin: xdprouterBin, NS: topo.Router, BPFFS: topo.BPFFS}
	path := filepath.Join(topo.Lab.RunDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("config:\n%s", config)
	mustCLI(t, ctx, cli, "apply", "--config", path)
	return topo, cli, ctx
}

func tunnelConfig(extra string) string {
	return fmt.Sprintf(`wan: {interface: %s}
lan:
  - {interface: %s, ipv4: %s}
firewall: {mode: "off"}  # this lab sends unsolicited inbound traffic on purpose
tunnels:
  - name: %s
    mode: ipip6
    remote: %s
    local: %s
    routes: [0.0.0.0/0]
%s`, labkit.TunWANIf, labkit.TunLANIf, labkit.TunRouterLAN4, labkit.TunnelName,
		labkit.AFTR6, labkit.TunRouterWAN6.Addr(), extra)
}

// checkAFTR fails on any outer header the independent AFTR found wrong.
func checkAFTR(t *testing.T, topo *labkit.TunnelTopology) labkit.AFTRStats {
	t.Helper()
	s, err := topo.AFTRStats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("AFTR: decapsulated %d, encapsulated %d, hop limits %v, SYN MSS seen %v, inner sources %v",
		s.Decapsulated, s.Encapsulated, s.HopLimits, s.MSSSeen, s.InnerSources)
	if v := s.Violations(); len(v) > 0 {
		t.Errorf("the AFTR rejected outer headers: %s", strings.Join(v, "; "))
	}
	return s
}

// bulk runs a verified TCP transfer and returns the counter deltas.
func bulk(t *testing.T, ctx context.Context, cli labkit.CLI, lab *netlab.Lab, from, to string, dst netip.Addr, size int64) (labkit.TransferResult, labkit.Counters) {
	t.Helper()
	before := mustCounters(t, ctx, cli)
	res, err := labkit.Transfer(ctx, lab, from, to, dst, size)
	if err != nil {
		t.Fatal(err)
	}
	delta := mustCounters(t, ctx, cli).Sub(before)
	t.Logf("TCP %s -> %s: %d bytes in %v (%.0f Mbit/s), sha256 %s on both ends; sender sent %d segments (%d retransmitted)",
		from, dst, res.Bytes, res.Elapsed.Round(time.Millisecond), res.Throughput(), res.RecvSHA,
		res.SenderTCP.SegsOut, res.SenderTCP.TotalRetrans)
	t.Logf("counters during the transfer: %s", delta)
	return res, delta
}

// TestTunnelDSLite: DS-Lite (no ipv4-address): LAN IPv4 is encapsulated in
// XDP to the AFTR, replies decapsulated in XDP; the router's own IPv4 takes
// the TC slow path; MSS is clamped; DF packets over the tunnel MTU get a
// frag-needed from XDP; ipip6 from a wrong remote or to a wrong local
// address is not delivered.
func TestTunnelDSLite(t *testing.T) { forEachTCMode(t, testTunnelDSLite) }

func testTunnelDSLite(t *testing.T) {
	topo, cli, ctx := newTunnelLab(t, tunnelConfig(""))
	r := cli.Runner
	internet := labkit.Internet4.Addr()

	if _, err := r.Ping(ctx, topo.Host, internet, 3); err != nil {
		t.Fatalf("ping the internet host through the tunnel: %v", err)
	}

	t.Run("TCP 10 MB from the LAN", func(t *testing.T) {
		res, delta := bulk(t, ctx, cli.WithLog(t), topo.Lab, topo.Host, topo.Internet, internet, bulkSize)
		if want := uint64(res.SenderTCP.SegsOut) * 9 / 10; delta["tun_encap"].Packets < want {
			t.Errorf("tun_encap: %d packets encapsulated in XDP, want >= 90%% of the %d segments the host sent", delta["tun_encap"].Packets, res.SenderTCP.SegsOut)
		}
		if delta["tun_encap"].Bytes < bulkSize {
			t.Errorf("tun_encap: %d bytes, want >= %d (the payload)", delta["tun_encap"].Bytes, bulkSize)
		}
		// apply attaches with the conntrack gate: after the sender's FIN
		// the kernel sees every packet of the flow (pass_ct_tcp_state),
		// and behind the slow AFTR many of the internet host's ACKs come
		// after it.
		if want := uint64(res.RecvTCP.SegsOut) * 9 / 10; delta["tun_decap"].Packets+delta["pass_ct_tcp_state"].Packets < want {
			t.Errorf("tun_decap: %d packets decapsulated in XDP (+%d after the FIN, by the gate), want >= 90%% of the %d segments the internet host sent",
				delta["tun_decap"].Packets, delta["pass_ct_tcp_state"].Packets, res.RecvTCP.SegsOut)
		}
		s := checkAFTR(t, topo)
		// The SYN the internet host receives is the one the AFTR relays.
		if len(s.MSSSeen) == 0 {
			t.Fatal("the AFTR saw no SYN")
		}
		for _, m := range s.MSSSeen[:1] {
			if m > 1420 {
				t.Errorf("SYN from the LAN reached the internet with MSS %d, want <= 1420 (mtu 1460 - 40)", m)
			}
		}
	})

	t.Run("router-originated TCP (slow path)", func(t *testing.T) {
		before, err := topo.AFTRStats()
		if err != nil {
			t.Fatal(err)
		}
		res, delta := bulk(t, ctx, cli.WithLog(t), topo.Lab, topo.Router, topo.Internet, internet, 1<<20)
		s := checkAFTR(t, topo)
		if got := s.Decapsulated - before.Decapsulated; got < int(res.SenderTCP.SegsOut) {
			t.Errorf("the AFTR decapsulated %d packets, the router sent %d segments", got, res.SenderTCP.SegsOut)
		}
		if delta["tun_encap"].Packets != 0 {
			t.Errorf("tun_encap counted %d: the router's own packets never pass XDP", delta["tun_encap"].Packets)
		}
		// The TC programs did it: encapsulation on the tunnel netdev (GSO
		// packets count once), decapsulation of the replies to the router.
		if delta["tc_encap"].Bytes < 1<<20 || delta["tc_decap"].Packets == 0 {
			t.Errorf("slow path: tc_encap %d packets / %d bytes (want >= the 1 MB sent), tc_decap %d packets (want > 0)",
				delta["tc_encap"].Packets, delta["tc_encap"].Bytes, delta["tc_decap"].Packets)
		}
	})

	t.Run("DF ping over the tunnel MTU", func(t *testing.T) {
		before := mustCounters(t, ctx, cli)
		res, _ := r.InNS(ctx, topo.Host, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1472", internet.String())
		if !strings.Contains(res.Stdout, "mtu = 1460") {
			t.Errorf("want \"Frag needed and DF set (mtu = 1460)\" from the router, got:\n%s", res.Stdout)
		}
		// ICMP is the kernel's under the conntrack gate (pass_ct_proto):
		// then the kernel sends the same error.
		if d := mustCounters(t, ctx, cli).Sub(before); d["tun_icmp_frag_needed"].Packets != 1 && d["pass_ct_proto"].Packets == 0 {
			t.Errorf("tun_icmp_frag_needed +%d, pass_ct_proto +%d: want the error from XDP, or the ping passed by the gate", d["tun_icmp_frag_needed"].Packets, d["pass_ct_proto"].Packets)
		}
		// Below the tunnel MTU the same ping goes through.
		if _, err := r.InNS(ctx, topo.Host, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1432", internet.String()); err != nil {
			t.Errorf("1460-byte DF ping: %v", err)
		}
	})

	t.Run("ipip6 from a wrong remote or to a wrong local address", func(t *testing.T) {
		testWrongEndpoints(t, ctx, cli.WithLog(t), topo)
	})

	st := mustStatus(t, ctx, cli)
	t.Logf("status: %+v", st)
	mustCLI(t, ctx, cli, "status")
	mustCLI(t, ctx, cli, "stats")
}

// testWrongEndpoints injects ipip6 carrying UDP for the LAN host from the
// ISP side: from the right pair it is delivered (the probe works), from a
// wrong remote or to a wrong local address it is not, and is counted.
func testWrongEndpoints(t *testing.T, ctx context.Context, cli labkit.CLI, topo *labkit.TunnelTopology) {
	root, err := labkit.FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	mac, err := topo.Lab.MAC(topo.Router, labkit.TunWANIf)
	if err != nil {
		t.Fatal(err)
	}
	routerMAC := mac.String()
	for i, tc := range []struct {
		name       string
		src, dst   string
		delivered  bool
		encapLimit bool
	}{
		{"configured pair (control)", labkit.AFTR6.String(), labkit.TunRouterWAN6.Addr().String(), true, false},
		{"configured pair after the encapsulation limit option of a Linux peer", labkit.AFTR6.String(), labkit.TunRouterWAN6.Addr().String(), true, true},
		{"wrong remote", "2001:db8:f::99", labkit.TunRouterWAN6.Addr().String(), false, false},
		{"wrong local", labkit.AFTR6.String(), labkit.TunRouterOther6.Addr().String(), false, false},
	} {
		port := 9900 + i
		before := mustCounters(t, ctx, cli)
		// The receiver waits for the probe or for an "end" marker sent
		// locally once the injection is over: scapy takes seconds to start
		// on a loaded machine, so no fixed timeout fits.
		recv := topo.Lab.Command(topo.Host, "timeout", "60", "/usr/bin/python3", "-c", fmt.Sprintf(
			"import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',%d))\n"+
				"d=s.recvfrom(100)[0]\nprint('nothing' if d==b'end' else d.decode())", port))
		out := &strings.Builder{}
		recv.Stdout = out
		if err := recv.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		argv := []string{"/usr/bin/python3", filepath.Join(root, "test/aftr/aftr.py"), "inject",
			"--wan", labkit.ISPWANIf, "--dst-mac", routerMAC, "--src", tc.src, "--dst", tc.dst,
			"--inner-src", labkit.Internet4.Addr().String(), "--inner-dst", labkit.TunHost4.Addr().String(),
			"--port", fmt.Sprint(port), "--count", "3"}
		if tc.encapLimit {
			argv = append(argv, "--encap-limit", "4")
		}
		if _, err := cli.Runner.InNS(ctx, topo.ISP, argv...); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // in flight
		if _, err := topo.Lab.Exec(topo.Host, "/usr/bin/python3", "-c", fmt.Sprintf(
			"import socket;socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b'end',('127.0.0.1',%d))", port)); err != nil {
			t.Fatal(err)
		}
		_ = recv.Wait()
		got := strings.Contains(out.String(), "probe")
		delta := mustCounters(t, ctx, cli).Sub(before)
		t.Logf("%s: host received %q; counters: %s", tc.name, strings.TrimSpace(out.String()), delta)
		if got != tc.delivered {
			t.Errorf("%s (%s -> %s): delivered = %v, want %v", tc.name, tc.src, tc.dst, got, tc.delivered)
		}
		if !tc.delivered && delta["drop_tun_unknown_endpoint"].Packets != 3 {
			t.Errorf("%s: drop_tun_unknown_endpoint +%d, want +3", tc.name, delta["drop_tun_unknown_endpoint"].Packets)
		}
	}
}

// TestTunnelFixedIPv4NAT44: a fixed-IPv4 service (transix / ZOOT NATIVE
// style) with NAT44. The kernel makes the masquerade binding on a flow's
// first packets (slow path: conntrack, TC encapsulation); from then on XDP
// applies conntrack's translation and encapsulates (fwd_nat44_snat), and
// decapsulates and translates the replies back (fwd_nat44_dnat), so a
// 10 MB upload and a 10 MB download, content-verified, go through XDP with
// pass_tun_nat44 at 0; the AFTR sees only the fixed address. detach --all
// removes the netdev and the nftables table.
func TestTunnelFixedIPv4NAT44(t *testing.T) { forEachTCMode(t, testTunnelFixedIPv4NAT44) }

func testTunnelFixedIPv4NAT44(t *testing.T) {
	topo, cli, ctx := newTunnelLab(t, tunnelConfig(fmt.Sprintf("    ipv4-address: %s\n    nat44: true\n", labkit.FixedIPv4)))
	r := cli.Runner
	internet := labkit.Internet4.Addr()

	res := mustRun(t, ctx, r, netlab.InNS(topo.Router, "nft", "list", "table", "ip", "xdprouter")...)
	if !strings.Contains(res.Stdout, "snat to "+labkit.FixedIPv4Str) {
		t.Fatalf("nftables table ip xdprouter has no snat to %s:\n%s", labkit.FixedIPv4, res.Stdout)
	}
	if _, err := r.Ping(ctx, topo.Host, internet, 3); err != nil {
		t.Fatalf("ping the internet host through the tunnel: %v", err)
	}
	up, delta := bulk(t, ctx, cli, topo.Lab, topo.Host, topo.Internet, internet, bulkSize)
	checkNAT44InXDP(t, "upload", delta, up.SenderTCP.SegsOut, up.RecvTCP.SegsOut, "fwd_nat44_snat", "fwd_nat44_dnat")
	// A download: the bulk comes back as ipip6 to the fixed address, and
	// XDP decapsulates and translates it back.
	before := mustCounters(t, ctx, cli)
	dl, err := labkit.Download(ctx, topo.Lab, topo.Host, topo.Internet, internet, bulkSize)
	if err != nil {
		t.Fatal(err)
	}
	delta = mustCounters(t, ctx, cli).Sub(before)
	t.Logf("TCP download %s -> host: %d bytes in %v (%.0f Mbit/s), sha256 %s on both ends; counters: %s",
		internet, dl.Bytes, dl.Elapsed.Round(time.Millisecond), dl.Throughput(), dl.RecvSHA, delta)
	checkNAT44InXDP(t, "download", delta, dl.SenderTCP.SegsOut, dl.RecvTCP.SegsOut, "fwd_nat44_dnat", "fwd_nat44_snat")
	// The kernel's bindings XDP applied, with live timeouts (logged).
	if _, err := r.InNS(ctx, topo.Router, "conntrack", "-L"); err != nil {
		t.Errorf("conntrack -L: %v", err)
	}
	s := checkAFTR(t, topo)
	if !slices.Equal(s.InnerSources, []string{labkit.FixedIPv4Str}) {
		t.Errorf("inner IPv4 sources the AFTR saw: %v, want only %s (masqueraded)", s.InnerSources, labkit.FixedIPv4)
	}
	if len(s.MSSSeen) == 0 || s.MSSSeen[0] > 1420 {
		t.Errorf("SYN MSS seen by the AFTR %v, want <= 1420 first", s.MSSSeen)
	}

	mustCLI(t, ctx, cli, "detach", "--all")
	if res, err := r.InNS(ctx, topo.Router, "ip", "link", "show", labkit.TunnelName); err == nil {
		t.Errorf("tunnel netdev still there after detach --all:\n%s", res.Stdout)
	}
	if res, err := r.InNS(ctx, topo.Router, "nft", "list", "table", "ip", "xdprouter"); err == nil {
		t.Errorf("nftables table still there after detach --all:\n%s", res.Stdout)
	}
}

// checkNAT44InXDP fails unless a transfer of a NATed flow (data segments
// counted under data, the other end's segments under acks) was carried by
// NAT44 in XDP: at least 90% of the data segments translated in XDP and
// 80% of the other direction (ACKs after the sender's FIN go through the
// kernel, pass_ct_tcp_state), none left to the slow path as un-NATed
// (pass_tun_nat44), and only the handshake and the close through the TC
// slow path.
func checkNAT44InXDP(t *testing.T, what string, delta labkit.Counters, dataSegs, ackSegs uint32, data, acks string) {
	t.Helper()
	if want := uint64(dataSegs) * 9 / 10; delta[data].Packets < want {
		t.Errorf("%s: %s %d packets, want >= 90%% of the %d data-direction segments", what, data, delta[data].Packets, dataSegs)
	}
	if delta[data].Bytes < bulkSize {
		t.Errorf("%s: %s %d bytes, want >= %d (the payload)", what, data, delta[data].Bytes, bulkSize)
	}
	if want := uint64(ackSegs) * 8 / 10; delta[acks].Packets+delta["pass_ct_tcp_state"].Packets < want {
		t.Errorf("%s: %s %d packets (+%d after the FIN, by the gate), want >= 80%% of the %d segments the other end sent",
			what, acks, delta[acks].Packets, delta["pass_ct_tcp_state"].Packets, ackSegs)
	}
	if n := delta["pass_tun_nat44"].Packets; n != 0 {
		t.Errorf("%s: pass_tun_nat44 +%d, want 0: every packet of a NATed flow is translated in XDP or passed by the gate", what, n)
	}
	// The first packets (SYN, SYN-ACK, ACK while conntrack is not yet
	// ESTABLISHED), the FINs and what follows them go the kernel's way:
	// the TC slow path carries only what the gate passed, and apart from
	// what follows the FIN (behind the slow AFTR, many ACKs) that is a
	// handful.
	var gated, afterFIN uint64
	for name, c := range delta {
		if strings.HasPrefix(name, "pass_ct_") {
			gated += c.Packets
		}
	}
	afterFIN = delta["pass_ct_tcp_state"].Packets
	if slow := delta["tc_encap"].Packets + delta["tc_decap"].Packets; slow > gated || gated-afterFIN > 30 {
		t.Errorf("%s: %d packets through the TC slow path (tc_encap %d, tc_decap %d), %d passed by the gate (%d after the FIN): want only the handshake and the close",
			what, slow, delta["tc_encap"].Packets, delta["tc_decap"].Packets, gated, afterFIN)
	}
	if n := delta["pass_ct_nat"].Packets; n != 0 {
		t.Errorf("%s: pass_ct_nat +%d, want 0: the binding is to the tunnel's fixed IPv4", what, n)
	}
}
