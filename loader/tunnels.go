package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
)

// Tunnel modes: what a Tunnel carries in what.
const (
	ModeIPIP6 = "ipip6" // IPv4 in IPv6: Local and Remote are IPv6
	Mode6in4  = "6in4"  // IPv6 in IPv4 (protocol 41): Local and Remote are IPv4, HopLimit the outer TTL
)

// Tunnel is one ipip6 or 6in4 tunnel as the data plane sees it. Ifindex
// is the tunnel's netdev (created by the control plane): routes into it
// select the tunnel, and it receives what the slow path decapsulates.
type Tunnel struct {
	Name string `json:"name"`
	// Mode is ModeIPIP6 (also when empty) or Mode6in4.
	Mode     string           `json:"mode"`
	Ifindex  int              `json:"ifindex"`
	MAC      net.HardwareAddr `json:"-"`
	Local    netip.Addr       `json:"local"`
	Remote   netip.Addr       `json:"remote"`
	MTU      int              `json:"mtu"`
	HopLimit int              `json:"hop_limit"`
	NAT44    bool             `json:"nat44"`
	// IPv4Address is the tunnel's fixed IPv4 (ipv4-address), the address
	// NAT44 masquerades to: with NAT44, XDP applies conntrack's
	// translations to it (and only to it) for flows through this tunnel.
	// Invalid (zero) for DS-Lite.
	IPv4Address netip.Addr `json:"ipv4_address,omitzero"`
}

// mode is the data plane's value of t.Mode.
func (t Tunnel) mode() (uint8, error) {
	switch t.Mode {
	case "", ModeIPIP6:
		return uint8(routerXdprTunnelModeXDPR_TUN_IPIP6), nil
	case Mode6in4:
		return uint8(routerXdprTunnelModeXDPR_TUN_6IN4), nil
	}
	return 0, fmt.Errorf("tunnel %q: unknown mode %q", t.Name, t.Mode)
}

func (t Tunnel) validate() error {
	mode, err := t.mode()
	if err != nil {
		return err
	}
	if mode == uint8(routerXdprTunnelModeXDPR_TUN_6IN4) {
		switch {
		case !t.Local.Is4() || !t.Remote.Is4():
			return fmt.Errorf("tunnel %q: 6in4 local %v and remote %v must be IPv4 addresses", t.Name, t.Local, t.Remote)
		case t.MTU < 1280 || t.MTU > 65535-20:
			return fmt.Errorf("tunnel %q: mtu %d out of range 1280-%d for IPv6 in IPv4", t.Name, t.MTU, 65535-20)
		}
	} else if !t.Local.Is6() || t.Local.Is4In6() || !t.Remote.Is6() || t.Remote.Is4In6() {
		return fmt.Errorf("tunnel %q: local %v and remote %v must be IPv6 addresses", t.Name, t.Local, t.Remote)
	}
	switch {
	case t.Ifindex <= 0:
		return fmt.Errorf("tunnel %q: no netdev ifindex", t.Name)
	case len(t.MAC) != 6:
		return fmt.Errorf("tunnel %q: netdev has no Ethernet address", t.Name)
	case t.MTU < 68 || t.MTU > 65535-40:
		return fmt.Errorf("tunnel %q: mtu %d out of range", t.Name, t.MTU)
	case t.HopLimit < 1 || t.HopLimit > 255:
		return fmt.Errorf("tunnel %q: hop limit %d out of range", t.Name, t.HopLimit)
	case t.IPv4Address.IsValid() && (!t.IPv4Address.Is4() || t.IPv4Address.IsUnspecified()):
		return fmt.Errorf("tunnel %q: ipv4 address %v is not a unicast IPv4 address", t.Name, t.IPv4Address)
	}
	return nil
}

func tunnelEp(remote, local netip.Addr) routerXdprTunnelEp {
	var k routerXdprTunnelEp
	k.Remote.In6U.U6Addr8 = remote.As16()
	k.Local.In6U.U6Addr8 = local.As16()
	return k
}

// PutTunnel creates or updates a tunnel's entries. The decapsulation key
// of the previous (remote, local) is removed after the new one is in, so a
// changed endpoint never leaves a window where neither is accepted.
func (d *Dataplane) PutTunnel(t Tunnel) error {
	if err := t.validate(); err != nil {
		return err
	}
	var prev routerXdprTunnel
	hadPrev := d.maps.XdprTunnels.Lookup(uint32(t.Ifindex), &prev) == nil
	slot := prev.Slot
	if !hadPrev {
		var err error
		if slot, err = d.freeSlot(); err != nil {
			return fmt.Errorf("tunnel %q: %w", t.Name, err)
		}
	}

	mode, _ := t.mode()
	// A 6in4 tunnel's IPv4 endpoints are kept IPv4-mapped (As16), so the
	// decapsulation key of either mode is a pair of IPv6 addresses.
	v := routerXdprTunnel{Ifindex: uint32(t.Ifindex), Mtu: uint16(t.MTU), HopLimit: uint8(t.HopLimit), Slot: slot, Mode: mode}
	v.Local.In6U.U6Addr8 = t.Local.As16()
	v.Remote.In6U.U6Addr8 = t.Remote.As16()
	if t.NAT44 {
		v.Flags |= uint8(routerXdprTunnelFlagXDPR_TUN_F_NAT44)
		v.Nat44Addr = nat44Addr(t.IPv4Address)
	}
	copy(v.DevMac[:], t.MAC)
	for i := 0; i < len(t.Name) && i < len(v.Name)-1; i++ {
		v.Name[i] = int8(t.Name[i])
	}
	if err := d.maps.XdprTunnels.Put(uint32(t.Ifindex), v); err != nil {
		return fmt.Errorf("tunnel %q: write xdpr_tunnels: %w", t.Name, err)
	}
	if err := d.putTunIndex(uint32(t.Ifindex), v); err != nil {
		return fmt.Errorf("tunnel %q: %w", t.Name, err)
	}
	// The cached outer next hop may belong to the old endpoints.
	if err := d.forgetNexthop(slot); err != nil {
		return fmt.Errorf("tunnel %q: %w", t.Name, err)
	}
	key := tunnelEp(t.Remote, t.Local)
	if err := d.maps.XdprTunnelEps.Put(key, routerXdprTunnelDecap{Ifindex: uint32(t.Ifindex), Mtu: uint16(t.MTU), Nat44Addr: v.Nat44Addr}); err != nil {
		return fmt.Errorf("tunnel %q: write xdpr_tunnel_eps: %w", t.Name, err)
	}
	if hadPrev {
		old := routerXdprTunnelEp{Remote: prev.Remote, Local: prev.Local}
		if old != key {
			if err := d.deleteEp(old, t.Ifindex); err != nil {
				return fmt.Errorf("tunnel %q: %w", t.Name, err)
			}
		}
	}
	// The CPUs' cached endpoint lookups may hold the old pair or the old
	// MTU, or remember that the new pair was none of ours.
	if err := d.nextGeneration(nil); err != nil {
		return fmt.Errorf("tunnel %q: %w", t.Name, err)
	}
	return nil
}

// putTunIndex writes xdpr_tun_index[ifindex], the fast path's copy of a
// tunnel (the zero value empties it). Netdevs with larger ifindexes are
// found in xdpr_tunnels alone.
func (d *Dataplane) putTunIndex(ifindex uint32, v routerXdprTunnel) error {
	if ifindex >= d.maps.XdprTunIndex.MaxEntries() {
		return nil
	}
	if err := d.maps.XdprTunIndex.Put(ifindex, v); err != nil {
		return fmt.Errorf("write xdpr_tun_index[%d]: %w", ifindex, err)
	}
	return nil
}

// deleteEp removes an endpoint key if it still belongs to ifindex.
func (d *Dataplane) deleteEp(k routerXdprTunnelEp, ifindex int) error {
	var owner routerXdprTunnelDecap
	if err := d.maps.XdprTunnelEps.Lookup(k, &owner); err != nil || int(owner.Ifindex) != ifindex {
		return nil
	}
	if err := d.maps.XdprTunnelEps.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete from xdpr_tunnel_eps: %w", err)
	}
	return nil
}

// SetTunnelLocal changes a tunnel's local (outer source) address, as the
// daemon does when the WAN prefix changes. Encapsulation uses the new
// address from the next packet; ipip6 to the old one is no longer
// decapsulated.
func (d *Dataplane) SetTunnelLocal(ifindex int, local netip.Addr) error {
	t, err := d.tunnel(ifindex)
	if err != nil {
		return err
	}
	t.Local = local
	return d.PutTunnel(t)
}

// DeleteTunnel removes a tunnel's entries and its slow-path link (not its
// netdev).
func (d *Dataplane) DeleteTunnel(ifindex int) error {
	if err := removePin(d.dir, d.pinPath("tunegress", ifindex)); err != nil {
		return err
	}
	var v routerXdprTunnel
	if err := d.maps.XdprTunnels.Lookup(uint32(ifindex), &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		return fmt.Errorf("read xdpr_tunnels: %w", err)
	}
	if err := d.deleteEp(routerXdprTunnelEp{Remote: v.Remote, Local: v.Local}, ifindex); err != nil {
		return err
	}
	// Index entry first: the fast path must not find a tunnel the
	// hash no longer has.
	if err := d.putTunIndex(uint32(ifindex), routerXdprTunnel{}); err != nil {
		return err
	}
	if err := d.maps.XdprTunnels.Delete(uint32(ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete from xdpr_tunnels: %w", err)
	}
	if err := d.forgetNexthop(v.Slot); err != nil {
		return err
	}
	if err := d.nextGeneration(nil); err != nil {
		return err
	}
	return d.detachIngressIfNoTunnels()
}

// detachIngressIfNoTunnels removes the WAN's decapsulating TC program once
// the last tunnel is gone: with no tunnel it has nothing to do, and a
// reload to a config without tunnels must leave nothing of them attached.
func (d *Dataplane) detachIngressIfNoTunnels() error {
	var (
		k uint32
		v routerXdprTunnel
	)
	if d.maps.XdprTunnels.Iterate().Next(&k, &v) {
		return nil
	}
	entries, err := os.ReadDir(filepath.Join(d.dir, linksDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "tuningress_") {
			if err := removePin(d.dir, filepath.Join(d.dir, linksDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// forgetNexthop zeroes a slot's cached outer next hop on every CPU, so
// the next packet looks the route up again.
func (d *Dataplane) forgetNexthop(slot uint32) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("count CPUs: %w", err)
	}
	zero := make([]routerXdprTunNexthop, cpus)
	if err := d.maps.XdprTunNexthops.Put(slot, zero); err != nil {
		return fmt.Errorf("reset xdpr_tun_nexthops[%d]: %w", slot, err)
	}
	return nil
}

// freeSlot returns a nexthop-cache slot no tunnel uses.
func (d *Dataplane) freeSlot() (uint32, error) {
	used := map[uint32]bool{}
	var (
		k uint32
		v routerXdprTunnel
	)
	it := d.maps.XdprTunnels.Iterate()
	for it.Next(&k, &v) {
		used[v.Slot] = true
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("read xdpr_tunnels: %w", err)
	}
	for s := uint32(0); s < d.maps.XdprTunNexthops.MaxEntries(); s++ {
		if !used[s] {
			return s, nil
		}
	}
	return 0, fmt.Errorf("all %d tunnel slots are in use", d.maps.XdprTunNexthops.MaxEntries())
}

// nat44Addr is a's bytes as the data plane's __be32 holds them (0 when a
// is not an IPv4 address: nothing is translated in XDP then).
func nat44Addr(a netip.Addr) uint32 {
	if !a.Is4() {
		return 0
	}
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}

func tunnelFromMap(v routerXdprTunnel) Tunnel {
	var ip4 netip.Addr
	if v.Nat44Addr != 0 {
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], v.Nat44Addr)
		ip4 = netip.AddrFrom4(b)
	}
	mode := ModeIPIP6
	if routerXdprTunnelMode(v.Mode) == routerXdprTunnelModeXDPR_TUN_6IN4 {
		mode = Mode6in4
	}
	return Tunnel{
		IPv4Address: ip4,
		Name:        cString(v.Name[:]),
		Mode:        mode,
		Ifindex:     int(v.Ifindex),
		MAC:         net.HardwareAddr(append([]byte(nil), v.DevMac[:]...)),
		Local:       netip.AddrFrom16(v.Local.In6U.U6Addr8).Unmap(),
		Remote:      netip.AddrFrom16(v.Remote.In6U.U6Addr8).Unmap(),
		MTU:         int(v.Mtu),
		HopLimit:    int(v.HopLimit),
		NAT44:       v.Flags&uint8(routerXdprTunnelFlagXDPR_TUN_F_NAT44) != 0,
	}
}

func (d *Dataplane) tunnel(ifindex int) (Tunnel, error) {
	var v routerXdprTunnel
	if err := d.maps.XdprTunnels.Lookup(uint32(ifindex), &v); err != nil {
		return Tunnel{}, fmt.Errorf("no tunnel with netdev ifindex %d: %w", ifindex, err)
	}
	return tunnelFromMap(v), nil
}

// Tunnels lists the programmed tunnels, ordered by name.
func (d *Dataplane) Tunnels() ([]Tunnel, error) {
	var (
		out []Tunnel
		k   uint32
		v   routerXdprTunnel
	)
	it := d.maps.XdprTunnels.Iterate()
	for it.Next(&k, &v) {
		out = append(out, tunnelFromMap(v))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read xdpr_tunnels: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// AttachTunnelTC attaches the slow-path programs: encapsulation on the
// tunnel netdev's egress and decapsulation on the WAN's ingress, each
// through a pinned TCX link or a clsact filter (ResolveTCMode); idempotent.
func (d *Dataplane) AttachTunnelTC(tunIfname, wanIfname string) error {
	tun, err := net.InterfaceByName(tunIfname)
	if err != nil {
		return fmt.Errorf("tunnel netdev %q: %w", tunIfname, err)
	}
	wan, err := net.InterfaceByName(wanIfname)
	if err != nil {
		return fmt.Errorf("wan interface %q: %w", wanIfname, err)
	}
	mode, err := ResolveTCMode()
	if err != nil {
		return err
	}
	settings := "tc " + string(mode)
	pins := []string{d.pinPath("tunegress", tun.Index), d.pinPath("tuningress", wan.Index)}
	if stillVerified(settings, pins...) {
		return nil
	}
	spec, err := tcSpec(mode)
	if err != nil {
		return err
	}
	var objs routerObjects
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: d.dir}}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return fmt.Errorf("load tunnel programs: %w", err)
	}
	defer objs.Close()
	if _, err := d.attachTC("tunegress", tun.Index, objs.XdprTunEgress); err != nil {
		return err
	}
	if _, err := d.attachTC("tuningress", wan.Index, objs.XdprTunIngress); err != nil {
		return err
	}
	for _, pin := range pins {
		remember(pin, settings)
	}
	return nil
}

// removeTunnelDevs deletes the netdevs of every tunnel in the map (with
// their routes and TC programs) and the entries: detach --all leaves no
// tunnel behind.
func (d *Dataplane) removeTunnelDevs() error {
	ts, err := d.Tunnels()
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range ts {
		if l, err := netlink.LinkByIndex(t.Ifindex); err == nil && l.Attrs().Name == t.Name {
			if err := netlink.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete tunnel netdev %s: %w", t.Name, err))
			}
		}
		errs = append(errs, d.DeleteTunnel(t.Ifindex))
	}
	return errors.Join(errs...)
}
