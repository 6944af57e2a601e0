package loader

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
)

// TestTunnelIndex: the fast path finds a tunnel through xdpr_tun_index
// when its netdev's ifindex is small and through xdpr_tunnels when it is
// not, and a deleted tunnel is gone from both, so its route's packets go
// to the kernel again.
func TestTunnelIndex(t *testing.T) {
	rl, idx := newTunnelRouterLab(t)
	d := &Dataplane{maps: *rl.maps}
	big := labTunnel{"t9", "", "100.109.0.0/16", "2001:db8:100::1", 1460, 64, false}
	const bigIndex = 2000
	if n := rl.maps.XdprTunIndex.MaxEntries(); bigIndex < n {
		t.Fatalf("ifindex %d is not beyond the index's %d entries", bigIndex, n)
	}
	if err := rl.lab.MustExec(rl.ns,
		[]string{"ip", "link", "add", big.name, "index", fmt.Sprint(bigIndex), "type", "ifb"},
		[]string{"ip", "link", "set", big.name, "mtu", fmt.Sprint(big.mtu), "up"},
		[]string{"ip", "route", "add", big.route, "dev", big.name}); err != nil {
		t.Fatal(err)
	}
	m := labTunnelByName("t0").model()
	err := rl.lab.Do(rl.ns, func() error {
		ifc, err := net.InterfaceByName(big.name)
		if err != nil {
			return err
		}
		if ifc.Index != bigIndex {
			return fmt.Errorf("%s got ifindex %d, want %d", big.name, ifc.Index, bigIndex)
		}
		if err := d.PutTunnel(Tunnel{Name: big.name, Ifindex: ifc.Index, MAC: ifc.HardwareAddr, Local: tunLocal,
			Remote: netip.MustParseAddr(big.remote), MTU: big.mtu, HopLimit: big.hop}); err != nil {
			return err
		}
		run := func(frame []byte, wantVerdict uint32, want []byte) {
			t.Helper()
			if err := rl.expectRun(frame, "lan0", wantVerdict, want); err != nil {
				t.Error(err)
			}
		}
		// Same remote and next hop as t0: the model's encapsulation is t0's.
		toBig := udp4(t, "10.0.1.2", "100.109.0.1")
		run(toBig, xdpRedirect, modelEncap(toBig, m))

		var v routerXdprTunnel
		if err := d.maps.XdprTunIndex.Lookup(uint32(idx["t0"]), &v); err != nil {
			return err
		}
		if int(v.Ifindex) != idx["t0"] {
			return fmt.Errorf("xdpr_tun_index[%d] holds ifindex %d before the delete", idx["t0"], v.Ifindex)
		}
		toT0 := udp4(t, "10.0.1.2", "100.100.1.1")
		run(toT0, xdpRedirect, modelEncap(toT0, m))
		if err := d.DeleteTunnel(idx["t0"]); err != nil {
			return err
		}
		if err := d.maps.XdprTunIndex.Lookup(uint32(idx["t0"]), &v); err != nil {
			return err
		}
		if v.Ifindex != 0 {
			return fmt.Errorf("xdpr_tun_index[%d] still holds ifindex %d after the delete", idx["t0"], v.Ifindex)
		}
		run(toT0, xdpPass, toT0)
		if err := d.DeleteTunnel(bigIndex); err != nil {
			return err
		}
		run(toBig, xdpPass, toBig)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
