package lab

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// TestTunnelFixedIPv4PortForward: a port forward on the fixed IPv4
// (firewall.forward, nftables DNAT in table ip xdprouter) carried in XDP
// once established: the internet host connects to fixed-IPv4:8080, the
// kernel makes the DNAT binding on the SYN, and from then on XDP
// decapsulates and translates the 10 MB it sends to the LAN host's port
// (fwd_nat44_dnat), and translates the host's ACKs back to the fixed
// address and encapsulates them (fwd_nat44_snat). The content is verified
// end to end; pass_tun_nat44 and pass_ct_nat stay at 0.
func TestTunnelFixedIPv4PortForward(t *testing.T) { forEachTCMode(t, testTunnelFixedIPv4PortForward) }

func testTunnelFixedIPv4PortForward(t *testing.T) {
	const (
		fwdPort  = 8080
		hostPort = 5001
	)
	host := labkit.TunHost4.Addr()
	config := fmt.Sprintf(`wan: {interface: %s}
lan:
  - {interface: %s, ipv4: %s}
firewall:
  mode: "off"  # the kernel forwards what the gate passes; NAT44 and the port forward stay
  forward: [{tunnel: %s, proto: tcp, port: %d, to: %s, to-port: %d, comment: bulk}]
tunnels:
  - name: %s
    mode: ipip6
    remote: %s
    local: %s
    routes: [0.0.0.0/0]
    ipv4-address: %s
    nat44: true
`, labkit.TunWANIf, labkit.TunLANIf, labkit.TunRouterLAN4, labkit.TunnelName, fwdPort, host, hostPort,
		labkit.TunnelName, labkit.AFTR6, labkit.TunRouterWAN6.Addr(), labkit.FixedIPv4)
	topo, cli, ctx := newTunnelLab(t, config)
	r := cli.Runner
	res := mustRun(t, ctx, r, netlab.InNS(topo.Router, "nft", "list", "table", "ip", "xdprouter")...)
	if !strings.Contains(res.Stdout, fmt.Sprintf("dnat to %s:%d", host, hostPort)) {
		t.Fatalf("nftables table ip xdprouter has no port forward to %s:%d:\n%s", host, hostPort, res.Stdout)
	}
	// The AFTR learns where the fixed IPv4 lives from what the router
	// sends from it (as a real one is provisioned with it).
	if _, err := r.Ping(ctx, topo.Host, labkit.Internet4.Addr(), 2); err != nil {
		t.Fatalf("ping the internet host through the tunnel: %v", err)
	}

	before := mustCounters(t, ctx, cli)
	tr, err := labkit.TransferVia(ctx, topo.Lab, topo.Internet, topo.Host,
		netip.AddrPortFrom(labkit.FixedIPv4, fwdPort), netip.AddrPortFrom(host, hostPort), bulkSize)
	if err != nil {
		t.Fatal(err)
	}
	n, elapsed := tr.Bytes, tr.Elapsed
	delta := mustCounters(t, ctx, cli).Sub(before)
	t.Logf("TCP internet -> %s:%d -> host %s:%d: %d bytes in %v, same sha256 on both ends; counters: %s",
		labkit.FixedIPv4, fwdPort, host, hostPort, n, elapsed.Round(time.Millisecond), delta)
	// Segments of at most 1420 octets (the clamped MSS): the payload
	// alone needs this many.
	segs := uint64(bulkSize / 1420)
	if d := delta["fwd_nat44_dnat"]; d.Packets < segs*9/10 || d.Bytes < bulkSize {
		t.Errorf("fwd_nat44_dnat %d packets / %d bytes, want >= 90%% of the %d segments and >= %d bytes: the forwarded connection is carried in XDP",
			d.Packets, d.Bytes, segs, bulkSize)
	}
	if delta["fwd_nat44_snat"].Packets == 0 {
		t.Errorf("fwd_nat44_snat +0: the host's ACKs are translated back in XDP")
	}
	for _, c := range []string{"pass_tun_nat44", "pass_ct_nat"} {
		if n := delta[c].Packets; n != 0 {
			t.Errorf("%s +%d, want 0", c, n)
		}
	}
	if b := delta["tc_decap"].Bytes; b > bulkSize/10 {
		t.Errorf("tc_decap %d bytes: more than the handshake and the close through the TC slow path", b)
	}
	mustRun(t, ctx, r, netlab.InNS(topo.Router, "conntrack", "-L", "-p", "tcp", "--orig-port-dst", fmt.Sprint(fwdPort))...)
	checkAFTR(t, topo)
}
