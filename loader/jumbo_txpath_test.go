package loader

// Multi-buffer frames and the transmit paths (issue 13 items 8 and 9): a
// port on the kernel path is in neither devmap, so a jumbo frame for it
// is the kernel's like any other (pass_egress_no_napi, not dropped by a
// redirect and not pass_mb_egress); answers built from a multi-buffer
// frame are cut to one buffer and leave as the port's path says.

import (
	"net/netip"
	"strings"
	"testing"
)

// TestJumboEgressWithoutNAPI: jumbo frames XDP would redirect to a port
// whose veth peer has no NAPI go to the kernel untouched, whichever path
// would have sent them there; on a redirect port they take the fast path.
func TestJumboEgressWithoutNAPI(t *testing.T) {
	rl := newJumboRouterLab(t)
	toHost := udp4(t, "198.51.100.9", "10.0.1.2", to(wanMAC), from(gwMAC), totalLen(jumboTunMTU))
	fwd4 := udp4(t, "10.0.1.2", "198.51.100.7", totalLen(jumboMTU))
	overTun := udp4(t, "10.0.1.2", "100.104.1.1", totalLen(jumboTunMTU+1))
	for _, c := range []struct {
		name, ingress, port string
		frame               []byte
		counter             string
	}{
		{"ipv4 forward", "lan0", "wan0", fwd4, "pass_egress_no_napi"},
		{"ipv6 forward", "lan0", "wan0", udp6(t, "2001:db8:1::2", "2001:db8:100::7", totalLen(jumboMTU)), "pass_egress_no_napi"},
		{"encapsulation", "lan0", "wan0", udp4(t, "10.0.1.2", "100.104.1.1", totalLen(jumboTunMTU)), "pass_egress_no_napi"},
		{"decapsulation", "wan0", "lan0", ipip6(toHost, jumboTunnel.remote, tunLocal.String(), 0), "pass_egress_no_napi"},
		{"frag needed back out of the ingress", "lan0", "lan0", overTun, "pass_icmp_no_napi"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if len(c.frame) <= testRunLinear {
				t.Fatalf("%d octets fit one buffer", len(c.frame))
			}
			rl.setTX(t, c.port, TXKernel)
			defer rl.setTX(t, c.port, TXRedirect)
			runJumboCase(t, rl, tunCase{c.name, c.ingress, c.frame, xdpPass, c.counter, nil})
		})
	}
	lan := labIfaceByName("lan0")
	routerIP := netip.MustParseAddr(strings.Split(lan.v4, "/")[0])
	for _, c := range []tunCase{
		{"redirect port: forward", "lan0", fwd4, xdpRedirect, "fwd_ipv4", expectForward(fwd4, "wan0")},
		{"redirect port: frag needed", "lan0", overTun, xdpRedirect, "tun_icmp_frag_needed",
			modelFragNeeded(overTun, routerIP, jumboTunMTU)},
	} {
		t.Run(c.name, func(t *testing.T) {
			rl.setTX(t, "wan0", TXRedirect)
			rl.setTX(t, "lan0", TXRedirect)
			rl.multiBufferPorts(t, "lan0", "wan0")
			runJumboCase(t, rl, c)
		})
	}
}

// TestJumboNDPProxyTXPaths: a solicitation in a multi-buffer frame (an NS
// followed by kilobytes of trailing octets) is answered with the same
// one-buffer advertisement on every transmit path: XDP_TX, a redirect to
// the port, or passed with the reply mark for TC.
func TestJumboNDPProxyTXPaths(t *testing.T) { checkNDPProxyTXPaths(t, 6000) }
