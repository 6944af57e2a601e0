package loader

import (
	"fmt"
	"net/netip"
	"testing"
)

// TestDecapCache: a CPU answers a repeated endpoint lookup from its
// xdpr_decap_cache entry (a pair removed from xdpr_tunnel_eps alone is still
// decapsulated) until the generation changes; DeleteTunnel starts a new one,
// so a deleted tunnel's ipip6 is refused on the next packet.
func TestDecapCache(t *testing.T) {
	rl, idx := newTunnelRouterLab(t)
	d := &Dataplane{maps: *rl.maps}
	lt := labTunnelByName("t0")
	lan := labIfaceByName("lan0")
	host := udp4(t, "198.51.100.9", "10.0.1.2", to(wanMAC), from(gwMAC))
	frame := ipip6(host, lt.remote, tunLocal.String(), 0)
	want, _ := modelDecap(frame, lt.mtu, mustMAC(lan.peerMAC), mustMAC(lan.mac))
	err := rl.lab.Do(rl.ns, func() error {
		return onOneCPU(func() error {
			run := func(step string, wantVerdict uint32, want []byte) error {
				if err := rl.expectRun(frame, "wan0", wantVerdict, want); err != nil {
					return fmt.Errorf("%s: %w", step, err)
				}
				return nil
			}
			tun, err := d.tunnel(idx["t0"])
			if err != nil {
				return err
			}
			if err := run("configured", xdpRedirect, want); err != nil {
				return err
			}
			key := tunnelEp(netip.MustParseAddr(lt.remote), tunLocal)
			if err := d.maps.XdprTunnelEps.Delete(key); err != nil {
				return err
			}
			if err := run("removed behind the loader's back, same generation", xdpRedirect, want); err != nil {
				return err
			}
			if err := d.nextGeneration(nil); err != nil {
				return err
			}
			if err := run("next generation", xdpDrop, nil); err != nil {
				return err
			}
			if err := d.PutTunnel(tun); err != nil {
				return err
			}
			if err := run("put again", xdpRedirect, want); err != nil {
				return err
			}
			if err := d.DeleteTunnel(idx["t0"]); err != nil {
				return err
			}
			return run("deleted", xdpDrop, nil)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
