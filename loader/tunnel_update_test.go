package loader

// Tunnel state that changes at run time: the outer next hop cache
// (xdpr_tun_nexthops) follows a neighbour change once the entry's lifetime
// (plus at most one jiffy) has passed, and a tunnel change through the
// loader at once; the copy of the MTU that decapsulation reads from
// xdpr_tunnel_eps follows PutTunnel.

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

func TestTunnelNexthopCacheExpires(t *testing.T) {
	rl, idx := newTunnelRouterLab(t)
	frame := udp4(t, "10.0.1.2", "100.100.1.1") // into t0, remote behind wan0's gateway
	gw := labIfaceByName("wan0")
	dstMAC := func() net.HardwareAddr {
		t.Helper()
		var out []byte
		err := rl.lab.Do(rl.ns, func() error {
			v, o, _, err := rl.runOnce(frame, "lan0")
			if err == nil && v != xdpRedirect {
				t.Fatalf("verdict %s, want redirect", verdictName(v))
			}
			out = o
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return net.HardwareAddr(bytes.Clone(out[:6]))
	}
	if got := dstMAC(); got.String() != gw.peerMAC {
		t.Fatalf("outer destination MAC %v, want the gateway's %s", got, gw.peerMAC)
	}

	// The gateway's MAC changes: after the lifetime (100 ms) and a jiffy
	// (at most 10 ms), every CPU's entry must have been looked up again.
	const moved = "02:00:00:00:02:99"
	if err := rl.lab.MustExec(rl.ns, []string{"ip", "-6", "neigh", "replace", gw.nb6, "lladdr", moved, "dev", "wan0", "nud", "permanent"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	for i := 0; i < 8; i++ { // whichever CPU the runs land on
		if got := dstMAC(); got.String() != moved {
			t.Fatalf("run %d, 150 ms after the neighbour moved: outer destination MAC %v, want %s", i, got, moved)
		}
	}

	// A new remote through the loader takes effect at once: PutTunnel
	// empties the tunnel's entry. ext0 is not attached, so the new outer
	// route cannot be redirected and the packet goes to the kernel.
	lt := labTunnelByName("t0")
	if err := rl.lab.MustExec(rl.ns, []string{"ip", "-6", "route", "add", "2001:db8:300::/48", "via", "2001:db8:3::2", "dev", "ext0"}); err != nil {
		t.Fatal(err)
	}
	d := &Dataplane{maps: *rl.maps}
	err := rl.lab.Do(rl.ns, func() error {
		ifc, err := net.InterfaceByName("t0")
		if err != nil {
			return err
		}
		return d.PutTunnel(Tunnel{Name: "t0", Ifindex: idx["t0"], MAC: ifc.HardwareAddr, Local: tunLocal,
			Remote: netip.MustParseAddr("2001:db8:300::1"), MTU: lt.mtu, HopLimit: lt.hop})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = rl.lab.Do(rl.ns, func() error {
		v, out, delta, err := rl.runOnce(frame, "lan0")
		if err != nil {
			return err
		}
		if v != xdpPass || !bytes.Equal(out, frame) {
			t.Errorf("after the remote moved behind an unattached port: %s, %s", verdictName(v), diffBytes(out, frame))
		}
		return rl.checkCounters(delta, rl.counterIndex(t, "pass_egress_not_attached"), len(frame))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDecapFollowsTunnelMTU(t *testing.T) {
	rl, idx := newTunnelRouterLab(t)
	lt := labTunnelByName("t0")
	lan := labIfaceByName("lan0")
	synOpts := []layers.TCPOption{mssOpt(1460), nop, nop}
	synAck := tcpSYN(t, "198.51.100.9", "10.0.1.2", true, synOpts)
	frame := ipip6(set(synAck, 0, mustMAC(wanMAC)...), lt.remote, tunLocal.String(), 0)
	for _, mtu := range []int{1460, 1400, 1280} {
		d := &Dataplane{maps: *rl.maps}
		err := rl.lab.Do(rl.ns, func() error {
			ifc, err := net.InterfaceByName("t0")
			if err != nil {
				return err
			}
			if err := d.PutTunnel(Tunnel{Name: "t0", Ifindex: idx["t0"], MAC: ifc.HardwareAddr, Local: tunLocal,
				Remote: netip.MustParseAddr(lt.remote), MTU: mtu, HopLimit: lt.hop}); err != nil {
				return err
			}
			v, out, _, err := rl.runOnce(frame, "wan0")
			if err != nil {
				return err
			}
			want, _ := modelDecap(frame, mtu, mustMAC(lan.peerMAC), mustMAC(lan.mac))
			if v != xdpRedirect || !bytes.Equal(out, want) {
				t.Errorf("mtu %d: %s, %s", mtu, verdictName(v), diffBytes(out, want))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
