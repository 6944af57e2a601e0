package loader

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
)

// KernelTunnel is a tunnel whose encapsulation is a kernel netdev that the
// control plane created (vxlan). XDP encapsulates what is routed into it
// and decapsulates what its remote sends as the netdev would (vxlan.go
// reads the rest of what that takes from the netdev); where it cannot, the
// kernel carries it (pass_tunnel_dev).
type KernelTunnel struct {
	Name    string     `json:"name"`
	Ifindex int        `json:"ifindex"`
	Kind    string     `json:"kind"` // "vxlan"
	VNI     uint32     `json:"vni"`
	Port    uint16     `json:"port"`
	Remote  netip.Addr `json:"remote"`
	// Local is invalid when the kernel picks the source by route.
	Local netip.Addr `json:"local,omitzero"`
}

var ktunnelKinds = map[string]routerXdprKtunnelKind{"vxlan": routerXdprKtunnelKindXDPR_KTUN_VXLAN}

// PutKernelTunnel records (or updates) a kernel tunnel netdev.
func (d *Dataplane) PutKernelTunnel(t KernelTunnel) error {
	kind, ok := ktunnelKinds[t.Kind]
	switch {
	case !ok:
		return fmt.Errorf("kernel tunnel %q: unknown kind %q", t.Name, t.Kind)
	case t.Ifindex <= 0:
		return fmt.Errorf("kernel tunnel %q: no netdev ifindex", t.Name)
	case !t.Remote.IsValid():
		return fmt.Errorf("kernel tunnel %q: no remote address", t.Name)
	}
	v := routerXdprKtunnel{Ifindex: uint32(t.Ifindex), Kind: uint32(kind), Vni: t.VNI, Port: t.Port}
	v.Remote.In6U.U6Addr8 = as16(t.Remote)
	if t.Local.IsValid() {
		v.Local.In6U.U6Addr8 = as16(t.Local)
	}
	for i := 0; i < len(t.Name) && i < len(v.Name)-1; i++ {
		v.Name[i] = int8(t.Name[i])
	}
	// XDP's own entry before the record: a packet never finds the
	// netdev recorded without what XDP needs of it. Where it cannot be
	// made, the netdev stays the kernel's (pass_tunnel_dev).
	vx, err := vxlanEntry(t)
	if err == nil {
		err = d.putVXLAN(vx)
	}
	if err != nil {
		err = fmt.Errorf("kernel tunnel %q: %w", t.Name, err)
	}
	if perr := d.maps.XdprKtunnels.Put(uint32(t.Ifindex), v); perr != nil {
		return errors.Join(err, fmt.Errorf("kernel tunnel %q: write xdpr_ktunnels: %w", t.Name, perr))
	}
	return err
}

// DeleteKernelTunnel forgets the kernel tunnel netdev ifindex; one that
// is not recorded is not an error.
func (d *Dataplane) DeleteKernelTunnel(ifindex int) error {
	if err := d.deleteVXLAN(uint32(ifindex)); err != nil {
		return err
	}
	if err := d.maps.XdprKtunnels.Delete(uint32(ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete xdpr_ktunnels[%d]: %w", ifindex, err)
	}
	return nil
}

// KernelTunnels lists the recorded kernel tunnels, ordered by name.
func (d *Dataplane) KernelTunnels() ([]KernelTunnel, error) {
	var (
		out []KernelTunnel
		k   uint32
		v   routerXdprKtunnel
	)
	it := d.maps.XdprKtunnels.Iterate()
	for it.Next(&k, &v) {
		t := KernelTunnel{Name: cString(v.Name[:]), Ifindex: int(v.Ifindex), VNI: v.Vni, Port: v.Port,
			Remote: netip.AddrFrom16(v.Remote.In6U.U6Addr8).Unmap()}
		for name, kind := range ktunnelKinds {
			if uint32(kind) == v.Kind {
				t.Kind = name
			}
		}
		if l := netip.AddrFrom16(v.Local.In6U.U6Addr8); !l.IsUnspecified() {
			t.Local = l.Unmap()
		}
		out = append(out, t)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read xdpr_ktunnels: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// removeKernelTunnelDevs deletes the recorded kernel tunnel netdevs that
// still carry their recorded name (an ifindex reused by someone else's
// device is left alone) and forgets them: detach --all leaves none.
func (d *Dataplane) removeKernelTunnelDevs() error {
	ts, err := d.KernelTunnels()
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range ts {
		if l, err := netlink.LinkByIndex(t.Ifindex); err == nil && l.Attrs().Name == t.Name {
			if err := netlink.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete kernel tunnel netdev %s: %w", t.Name, err))
			}
		}
		errs = append(errs, d.DeleteKernelTunnel(t.Ifindex))
	}
	return errors.Join(errs...)
}

// KernelTunnelStatus is a recorded kernel tunnel and whether its netdev
// is still there.
type KernelTunnelStatus struct {
	KernelTunnel
	Present bool `json:"present"`
}

func (d *Dataplane) kernelTunnelStatus() ([]KernelTunnelStatus, error) {
	ts, err := d.KernelTunnels()
	if err != nil {
		return nil, err
	}
	out := []KernelTunnelStatus{}
	for _, t := range ts {
		ifc, err := net.InterfaceByIndex(t.Ifindex)
		out = append(out, KernelTunnelStatus{KernelTunnel: t, Present: err == nil && ifc.Name == t.Name})
	}
	return out, nil
}

// as16 is a's 16 bytes, IPv4 as IPv4-mapped.
func as16(a netip.Addr) [16]byte { return netip.AddrFrom16(a.As16()).As16() }
