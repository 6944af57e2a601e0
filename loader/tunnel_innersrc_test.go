package loader

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

const tcActShot = 2

// tcCase is one run of a TC decapsulation program on the WAN's ifindex.
type tcCase struct {
	name    string
	frame   []byte
	verdict uint32
	counter string // the TC counter that must rise by one ("" none)
	inner   []byte // with a redirect: the frame whose IPv4 packet comes out
}

func runTCCases(t *testing.T, rl *routerLab, tunIdx map[string]int, prog string, cases []tcCase) {
	t0, err := (&Dataplane{maps: *rl.maps}).tunnel(tunIdx["t0"])
	if err != nil {
		t.Fatal(err)
	}
	progs, err := loadTunnelPrograms(rl.maps)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() { progs.Close() })
	p := progs.XdprTunIngress
	if prog == "xdpr_tun_reasm" {
		p = progs.XdprTunReasm
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := rl.tcCounters(t)
			err := rl.lab.Do(rl.ns, func() error {
				v, out, err := runTC(p, c.frame, rl.ifindex["wan0"])
				if err != nil {
					return err
				}
				if v != c.verdict {
					t.Errorf("TC verdict %d, want %d", v, c.verdict)
				}
				if c.inner != nil {
					n := len(c.inner) - 14
					if len(out) < 14+n || !bytes.Equal(out[12:14+n], c.inner[12:]) {
						t.Errorf("decapsulated frame after the MAC addresses:\n got % x\nwant % x", out[12:min(len(out), 14+n)], c.inner[12:])
					}
					if !bytes.Equal(out[0:6], t0.MAC) {
						t.Errorf("destination MAC %x, want the tunnel netdev's %s", out[0:6], t0.MAC)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			after := rl.tcCounters(t)
			for name, n := range after {
				d, want := n-before[name], uint64(0)
				if name == c.counter {
					want = 1
				}
				if d != want {
					t.Errorf("%s +%d, want +%d", name, d, want)
				}
			}
		})
	}
}

// innerFrom is an IPv4 UDP packet from src to the LAN host, as the AFTR
// carries it.
func innerFrom(t *testing.T, src string, opts ...frameOpt) []byte {
	return udp4(t, src, "10.0.1.2", append([]frameOpt{to(wanMAC), from(gwMAC)}, opts...)...)
}

// TestTunnelSlowPathInnerSource: the WAN's TC decapsulation drops what
// XDP drops (tunnel_dataplane_test.go): inner IPv4 from a martian source,
// the router's own address or a LAN host. Before, it delivered them to the
// tunnel netdev (a LAN-subnet source went on to the LAN wherever rp_filter
// is not strict).
func TestTunnelSlowPathInnerSource(t *testing.T) {
	rl, tunIdx := newTunnelRouterLab(t)
	remote, local := labTunnelByName("t0").remote, tunLocal.String()
	enc := func(inner []byte) []byte { return ipip6(inner, remote, local, 0) }
	ok := innerFrom(t, "198.51.100.9")
	runTCCases(t, rl, tunIdx, "xdpr_tun_ingress", []tcCase{
		{"internet source (control)", enc(ok), tcActRedirect, "tc_decap", ok},
		{"loopback source", enc(innerFrom(t, "127.0.0.1")), tcActShot, "tc_drop_src_local", nil},
		{"multicast source", enc(innerFrom(t, "224.0.0.5")), tcActShot, "tc_drop_src_local", nil},
		{"class e source", enc(innerFrom(t, "250.1.2.3")), tcActShot, "tc_drop_src_local", nil},
		{"the router's lan address", enc(innerFrom(t, "10.0.1.1")), tcActShot, "tc_drop_src_local", nil},
		{"the router's wan address", enc(innerFrom(t, "10.0.2.1")), tcActShot, "tc_drop_src_local", nil},
		{"a lan host", enc(innerFrom(t, "10.0.1.7")), tcActShot, "tc_drop_src_lan", nil},
		{"a lan host, fragment", enc(innerFrom(t, "10.0.1.7", ipv4(func(ip *layers.IPv4) { ip.Flags = layers.IPv4MoreFragments }))),
			tcActShot, "tc_drop_src_lan", nil},
		{"unknown pair: not the slow path's", ipip6(ok, "2001:db8:100::99", local, 0), tcxNext, "", nil},
	})
}

// TestTunnelReassembledDecap: xdpr_tun_reasm decapsulates what the daemon
// writes to its tap (control/reasm): a reassembled ipip6 packet with the
// outer header put back, whatever its length (a 1500-byte inner packet is
// larger than the tunnel's MTU of 1460, which is why the AFTR fragmented
// it), through the same checks as the WAN's program; what is not ipip6 of
// a configured pair is dropped and counted.
func TestTunnelReassembledDecap(t *testing.T) {
	rl, tunIdx := newTunnelRouterLab(t)
	remote, local := labTunnelByName("t0").remote, tunLocal.String()
	big := innerFrom(t, "198.51.100.9", totalLen(1500))
	small := innerFrom(t, "198.51.100.9")
	runTCCases(t, rl, tunIdx, "xdpr_tun_reasm", []tcCase{
		{"1500 bytes inside", ipip6(big, remote, local, 0), tcActRedirect, "tc_decap_reassembled", big},
		{"a short packet", ipip6(small, remote, local, 0), tcActRedirect, "tc_decap_reassembled", small},
		{"unknown remote", ipip6(big, "2001:db8:100::99", local, 0), tcActShot, "tc_drop_unknown_endpoint", nil},
		{"unknown local", ipip6(big, remote, "2001:db8:2::77", 0), tcActShot, "tc_drop_unknown_endpoint", nil},
		{"a lan host inside", ipip6(innerFrom(t, "10.0.1.7", totalLen(1500)), remote, local, 0), tcActShot, "tc_drop_src_lan", nil},
		{"the router inside", ipip6(innerFrom(t, "10.0.1.1"), remote, local, 0), tcActShot, "tc_drop_src_local", nil},
		{"outer ce on not-ect", ipip6(small, remote, local, 0x03), tcActShot, "tc_drop_ecn", nil},
		{"not ipip6", set(udp6(t, remote, local, to(wanMAC), from(gwMAC)), 14+6, 17), tcActShot, "tc_drop_malformed", nil},
		{"not ipv6", small, tcActShot, "tc_drop_malformed", nil},
	})
}

// TestTunnelSourceFilterRoundTrip: the filter reads back as written, the
// router's own addresses first; what it cannot hold is refused.
func TestTunnelSourceFilterRoundTrip(t *testing.T) {
	rl, _ := newTunnelRouterLab(t)
	d := &Dataplane{maps: *rl.maps}
	in := []SourceNet{
		{netip.MustParsePrefix("192.168.1.0/24"), SourceLAN},
		{netip.MustParsePrefix("203.0.113.7/32"), SourceLocal},
		{netip.MustParsePrefix("10.1.2.3/8"), SourceLAN}, // host bits: stored masked
		{netip.MustParsePrefix("203.0.113.7/32"), SourceLocal},
		// 6in4's, in a filter of their own (after the IPv4 ones).
		{netip.MustParsePrefix("2001:db8:1::/64"), SourceLAN},
		{netip.MustParsePrefix("2001:db8:2::1/128"), SourceLocal},
		{netip.MustParsePrefix("2001:db8:3::9/48"), SourceLAN}, // stored masked
	}
	if err := d.SetTunnelSourceFilter(in); err != nil {
		t.Fatal(err)
	}
	got, err := d.TunnelSourceFilter()
	if err != nil {
		t.Fatal(err)
	}
	want := []SourceNet{in[1], in[0], {netip.MustParsePrefix("10.0.0.0/8"), SourceLAN},
		in[5], in[4], {netip.MustParsePrefix("2001:db8:3::/48"), SourceLAN}}
	if !slices.Equal(got, want) {
		t.Errorf("read back %v, want %v", got, want)
	}
	for _, bad := range [][]SourceNet{
		{{netip.MustParsePrefix("::ffff:10.0.0.0/104"), SourceLAN}},
		{{netip.MustParsePrefix("10.0.0.0/8"), "other"}},
		{{}},
	} {
		if err := d.SetTunnelSourceFilter(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	var many []SourceNet
	for i := range MaxSourceNets + 1 {
		many = append(many, SourceNet{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(i), 1}), 32), SourceLocal})
	}
	if err := d.SetTunnelSourceFilter(many); err == nil {
		t.Errorf("%d entries accepted, the filter holds %d", len(many), MaxSourceNets)
	}
	if got2, _ := d.TunnelSourceFilter(); !slices.Equal(got2, want) {
		t.Errorf("after a refused write: %v, want %v unchanged", got2, want)
	}
}
