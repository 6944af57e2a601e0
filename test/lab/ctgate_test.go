package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// gateBulk is larger than the TCP windows by far, so conntrack's window
// tracking is left far behind while XDP carries the data.
const gateBulk = 20 << 20

// statefulRuleset is the firewall of seeds 002/003 in nftables: forwarding
// dropped by default, everything from host A's side accepted, only
// established/related back, INVALID dropped and counted.
func statefulRuleset() string {
	return fmt.Sprintf(`table inet gatetest {
	counter invalid {
	}
	chain policy_fwd {
		type filter hook forward priority 0; policy drop;
		ct state invalid counter name "invalid" drop
		ct state established,related accept
		iifname "%s" accept
	}
}
`, labkit.RouterIfA)
}

// TestConntrackGateStatefulFirewall attaches xdprouter (auto gate) to a
// router with a stateful forward policy: unsolicited traffic from host B
// stays blocked; 20 MB TCP transfers from A to B, carried in XDP, end with
// their FINs through the kernel (nf_conntrack_tcp_be_liberal, set by attach)
// without a single INVALID packet, and conntrack holds the flows as closed.
// Detach restores be_liberal.
func TestConntrackGateStatefulFirewall(t *testing.T) {
	topo, cli, ctx := newLab(t)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	r := cli.Runner
	lab := topo.Lab
	sysctl := func() string {
		out, err := lab.Exec(topo.Router, "sysctl", "-n", "net.netfilter.nf_conntrack_tcp_be_liberal")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	if err := lab.NFT(topo.Router, statefulRuleset()); err != nil {
		t.Fatal(err)
	}
	if v := sysctl(); v != "0" {
		t.Fatalf("nf_conntrack_tcp_be_liberal is %s in a new namespace, want 0", v)
	}

	out := mustCLI(t, ctx, cli, "attach", labkit.RouterIfA, labkit.RouterIfB, "--role", "lan")
	if !strings.Contains(out.Stdout, "conntrack gate auto: on (nftables chain inet gatetest policy_fwd (forward)") {
		t.Errorf("attach did not say it chose the gate for the ruleset:\n%s", out.Stdout)
	}
	st := mustStatus(t, ctx, cli)
	for _, dev := range []string{labkit.RouterIfA, labkit.RouterIfB} {
		if i := mustIface(t, st, dev); i.CTGate != "on" {
			t.Errorf("status for %s: ct_gate %q, want on", dev, i.CTGate)
		}
	}
	if v := sysctl(); v != "1" {
		t.Errorf("after a gated attach nf_conntrack_tcp_be_liberal is %s, want 1", v)
	}

	// Unsolicited from B: blocked with xdprouter attached, ICMP and TCP.
	for _, dst := range []netip.Addr{labkit.HostA4.Addr(), labkit.HostA6.Addr()} {
		if _, err := r.Ping(ctx, topo.HostB, dst, 2); err == nil {
			t.Errorf("ping from host-b to %s succeeded through a forward policy that drops it", dst)
		}
		if err := dialOnce(lab, topo.HostA, topo.HostB, dst); err == nil {
			t.Errorf("TCP from host-b to %s connected through a forward policy that drops it", dst)
		}
	}
	// Solicited from A: works.
	for _, dst := range []netip.Addr{labkit.HostB4.Addr(), labkit.HostB6.Addr()} {
		if _, err := r.Ping(ctx, topo.HostA, dst, 2); err != nil {
			t.Errorf("ping from host-a to %s: %v", dst, err)
		}
	}

	for _, tc := range []struct {
		name    string
		dst     netip.Addr
		counter string
	}{
		{"IPv4", labkit.HostB4.Addr(), "fwd_ipv4"},
		{"IPv6", labkit.HostB6.Addr(), "fwd_ipv6"},
	} {
		t.Run("TCP-"+tc.name, func(t *testing.T) {
			cli := cli.WithLog(t)
			before, err := cli.Counters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			res, err := labkit.Transfer(ctx, lab, topo.HostA, topo.HostB, tc.dst, gateBulk)
			if err != nil {
				t.Fatalf("transfer (its end needs the FIN through the kernel): %v", err)
			}
			after, err := cli.Counters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			delta := after.Sub(before)
			t.Logf("TCP %s: %d bytes in %v; counters: %s", tc.name, res.Bytes, res.Elapsed.Round(time.Millisecond), delta)
			if res.Bytes != gateBulk || res.SentSHA != res.RecvSHA {
				t.Fatalf("content: sent %d bytes %s, received %d bytes %s", int64(gateBulk), res.SentSHA, res.Bytes, res.RecvSHA)
			}
			if fwd, want := delta[tc.counter].Packets, uint64(res.SenderTCP.SegsOut)*9/10; fwd < want {
				t.Errorf("%s: %d packets forwarded in XDP, want >= 90%% of the %d segments host-a sent", tc.counter, fwd, res.SenderTCP.SegsOut)
			}
			// SYN and FIN of both ends went to the kernel.
			if n := delta["pass_ct_tcp_flags"].Packets; n < 3 {
				t.Errorf("pass_ct_tcp_flags +%d, want the SYNs and FINs (>= 3)", n)
			}
		})
	}

	if n := invalidDrops(t, lab, topo.Router); n != 0 {
		t.Errorf("the forward policy dropped %d INVALID packets", n)
	}
	// Every TCP flow closed in conntrack's view: the kernel saw the FINs.
	listing, err := lab.Exec(topo.Router, "conntrack", "-L", "-p", "tcp")
	if err != nil {
		t.Fatalf("conntrack -L: %v", err)
	}
	t.Logf("conntrack -L -p tcp:\n%s", listing)
	flows := 0
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "tcp" {
			continue
		}
		flows++
		if f[3] != "TIME_WAIT" && f[3] != "CLOSE" {
			t.Errorf("conntrack holds a transfer in state %s, want TIME_WAIT or CLOSE: %s", f[3], line)
		}
	}
	if flows < 2 {
		t.Errorf("conntrack lists %d TCP flows, want the two transfers", flows)
	}

	mustCLI(t, ctx, cli, "detach", "--all")
	if v := sysctl(); v != "0" {
		t.Errorf("after the last detach nf_conntrack_tcp_be_liberal is %s, want 0 again", v)
	}
}

// dialOnce tries one TCP connection from namespace from to a listener on
// addr in namespace to.
func dialOnce(lab interface {
	Do(string, func() error) error
}, to, from string, addr netip.Addr) error {
	var ln net.Listener
	if err := lab.Do(to, func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	return lab.Do(from, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

var counterPackets = regexp.MustCompile(`packets (\d+)`)

// invalidDrops reads the ruleset's invalid counter.
func invalidDrops(t *testing.T, lab interface {
	Exec(string, ...string) (string, error)
}, ns string) uint64 {
	t.Helper()
	out, err := lab.Exec(ns, "nft", "list", "counter", "inet", "gatetest", "invalid")
	if err != nil {
		t.Fatalf("nft list counter: %v", err)
	}
	m := counterPackets.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no packet count in %q", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}
