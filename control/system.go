package control

import "github.com/xdprouter/xdprouter/loader"

// SystemDeps are the real OS boundaries over an open data plane, the same
// for `apply` and every reconcile pass of `run`.
func SystemDeps(d *loader.Dataplane) Deps {
	return Deps{
		DP: d, Addrs: NetlinkAddresses{}, Net6: NetlinkNet6{},
		Tunnels: d, TunDevs: NetlinkTunnelDevs{}, NAT: NFTables{}, HostAddrs: NetlinkHostAddrs{},
		NPT: d, Multicast: NetlinkMulticast{},
		VXLAN: NetlinkVXLANDevs{}, KTunnels: d, Steering: NetlinkSteering{},
	}
}
