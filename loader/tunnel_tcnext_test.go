package loader

import (
	"bytes"
	"testing"
)

// TestTunnelIngressLeavesOthersToNextProgram: the tunnel's TC ingress
// program on the WAN returns TCX_NEXT, unchanged, for every packet that is
// not ipip6 from a configured endpoint to this host's MAC. TC_ACT_OK would mean "pass and
// stop" under tcx, and NPT's DNPT program, attached after it on a WAN that
// both share, would never see the replies of NPT flows (every one of them
// lost on its first reply, which the conntrack gate hands to the kernel).
func TestTunnelIngressLeavesOthersToNextProgram(t *testing.T) {
	rl, _ := newTunnelRouterLab(t)
	progs, err := loadTunnelPrograms(rl.maps)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() { progs.Close() })
	remote0 := labTunnelByName("t0").remote
	toHost := udp4(t, "198.51.100.9", "10.0.1.2", to(wanMAC), from(gwMAC))
	cases := []struct {
		name  string
		frame []byte
	}{
		{"IPv4", toHost},
		{"IPv6 UDP", udp6(t, "2001:db8:ff::1", "2001:db8:1::2", to(wanMAC), from(gwMAC))},
		{"ipip6 from an unknown remote", ipip6(toHost, "2001:db8:100::99", tunLocal.String(), 0)},
		{"ipip6 to another local address", ipip6(toHost, remote0, "2001:db8:2::1:1", 0)},
		// From a configured endpoint, but not to this host's MAC: the
		// kernel would not take them (issue 13 item 10).
		{"ipip6 of a configured endpoint to another host's MAC", set(ipip6(toHost, remote0, tunLocal.String(), 0), 0, 0x02, 0, 0, 0, 0x09, 0x09)},
		{"ipip6 of a configured endpoint to broadcast", set(ipip6(toHost, remote0, tunLocal.String(), 0), 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := rl.lab.Do(rl.ns, func() error {
				v, out, err := runTC(progs.XdprTunIngress, c.frame, rl.ifindex["wan0"])
				if err != nil {
					return err
				}
				if v != tcxNext {
					t.Errorf("verdict %d, want TCX_NEXT (-1)", int32(v))
				}
				if !bytes.Equal(out, c.frame) {
					t.Errorf("frame changed: %s", diffBytes(out, c.frame))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
