package loader

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
)

// What XDP needs of a vxlan netdev to encapsulate and decapsulate as the
// netdev does (bpf/include/vxlan.h): read from the netdev itself and the
// namespace's sysctls when the tunnel is recorded, so the fast path sends
// what the netdev would.

// vxlanEntry reads the netdev t names and the defaults the kernel fills in
// for what it leaves unset.
func vxlanEntry(t KernelTunnel) (routerXdprVxlan, error) {
	var v routerXdprVxlan
	l, err := netlink.LinkByIndex(t.Ifindex)
	if err != nil {
		return v, fmt.Errorf("vxlan netdev %q (ifindex %d): %w", t.Name, t.Ifindex, err)
	}
	vx, ok := l.(*netlink.Vxlan)
	if !ok {
		return v, fmt.Errorf("netdev %q (ifindex %d) is a %s, not a vxlan", t.Name, t.Ifindex, l.Type())
	}
	if vx.FlowBased || vx.GBP {
		return v, fmt.Errorf("vxlan netdev %q: external (collect_metadata) or GBP mode is not what XDP encapsulates for", t.Name)
	}
	remote := t.Remote
	v.Ifindex = uint32(t.Ifindex)
	v.Underlay = uint32(vx.VtepDevIndex)
	v.Vni = uint32(vx.VxlanId)
	v.Port = uint16(vx.Port)
	copy(v.Mac[:], vx.HardwareAddr)
	v.Remote.In6U.U6Addr8 = as16(remote)
	if t.Local.IsValid() {
		v.Local.In6U.U6Addr8 = as16(t.Local)
	}
	// udp_flow_src_port: [port_min, port_max) of the netdev, else of
	// ip_local_port_range (both ends of which it lists; the top one is
	// never chosen).
	lo, hi := vx.PortLow, vx.PortHigh
	if lo >= hi {
		if lo, hi, err = localPortRange(); err != nil {
			return v, err
		}
	}
	v.SportMin, v.SportMax = uint16(lo), uint16(hi)
	v.Tos = uint8(vx.TOS)
	// ttl 0 (the default): the route's hop limit, which is the
	// namespace's default TTL or the underlay's hop_limit.
	ttl := vx.TTL
	if ttl == 0 {
		path := "/proc/sys/net/ipv4/ip_default_ttl"
		if !remote.Is4() {
			under, err := net.InterfaceByIndex(vx.VtepDevIndex)
			name := "default"
			if err == nil {
				name = under.Name
			}
			path = "/proc/sys/net/ipv6/conf/" + name + "/hop_limit"
		}
		if ttl, err = readSysctlInt(path); err != nil {
			return v, err
		}
	}
	v.Ttl = uint8(ttl)
	var flags routerXdprVxlanFlag
	if remote.Is4() {
		flags |= routerXdprVxlanFlagXDPR_VXLAN_F_IPV4
		if vx.UDPCSum {
			flags |= routerXdprVxlanFlagXDPR_VXLAN_F_CSUM
		}
	} else if !vx.UDP6ZeroCSumTx {
		flags |= routerXdprVxlanFlagXDPR_VXLAN_F_CSUM
	}
	v.Flags = uint8(flags)
	return v, nil
}

func localPortRange() (int, int, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, fmt.Errorf("vxlan source ports: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("vxlan source ports: ip_local_port_range %q", b)
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err := errors.Join(err1, err2); err != nil || lo >= hi {
		return 0, 0, fmt.Errorf("vxlan source ports: ip_local_port_range %q: %v", b, err)
	}
	return lo, hi, nil
}

func readSysctlInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("vxlan outer hop limit: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("vxlan outer hop limit: %s: %w", path, err)
	}
	return n, nil
}

func vxlanEp(v routerXdprVxlan) routerXdprVxlanEp {
	var k routerXdprVxlanEp
	k.Remote = v.Remote
	k.Vni = v.Vni
	k.Port = v.Port
	return k
}

// putVXLAN records v for XDP: decapsulation's entry first, then
// encapsulation's, then the ports and the feature bit. An entry it
// replaces (the same netdev with other settings) is taken out.
func (d *Dataplane) putVXLAN(v routerXdprVxlan) error {
	if d.maps.XdprVxlans == nil {
		return nil
	}
	var old routerXdprVxlan
	hadOld := d.maps.XdprVxlans.Lookup(v.Ifindex, &old) == nil
	if err := d.maps.XdprVxlanEps.Put(vxlanEp(v), v); err != nil {
		return fmt.Errorf("write xdpr_vxlan_eps: %w", err)
	}
	if err := d.maps.XdprVxlans.Put(v.Ifindex, v); err != nil {
		return fmt.Errorf("write xdpr_vxlans: %w", err)
	}
	var errs []error
	if hadOld && vxlanEp(old) != vxlanEp(v) {
		errs = append(errs, deleteIgnoringMissing(d.maps.XdprVxlanEps, vxlanEp(old)))
	}
	ports := []uint16{v.Port}
	if hadOld {
		ports = append(ports, old.Port)
	}
	errs = append(errs, d.syncVXLANPorts(ports...))
	return errors.Join(errs...)
}

// deleteVXLAN forgets the vxlan netdev ifindex, if recorded.
func (d *Dataplane) deleteVXLAN(ifindex uint32) error {
	if d.maps.XdprVxlans == nil {
		return nil
	}
	var v routerXdprVxlan
	if err := d.maps.XdprVxlans.Lookup(ifindex, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		return fmt.Errorf("read xdpr_vxlans[%d]: %w", ifindex, err)
	}
	return errors.Join(deleteIgnoringMissing(d.maps.XdprVxlans, ifindex),
		deleteIgnoringMissing(d.maps.XdprVxlanEps, vxlanEp(v)), d.syncVXLANPorts(v.Port))
}

func deleteIgnoringMissing(m *ebpf.Map, k any) error {
	if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete from %s: %w", m, err)
	}
	return nil
}

// syncVXLANPorts sets the count of netdevs on each of ports from
// xdpr_vxlans, and the feature bit that turns decapsulation on from
// whether there are any.
func (d *Dataplane) syncVXLANPorts(ports ...uint16) error {
	count := map[uint16]uint32{}
	var (
		k uint32
		v routerXdprVxlan
		n int
	)
	it := d.maps.XdprVxlans.Iterate()
	for it.Next(&k, &v) {
		count[v.Port]++
		n++
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read xdpr_vxlans: %w", err)
	}
	for _, p := range ports {
		if err := d.maps.XdprVxlanPorts.Put(uint32(p), count[p]); err != nil {
			return fmt.Errorf("write xdpr_vxlan_ports[%d]: %w", p, err)
		}
	}
	flags, err := d.features()
	if err != nil {
		return err
	}
	want := flags &^ featureVXLAN
	if n > 0 {
		want |= featureVXLAN
	}
	if want == flags {
		return nil
	}
	return d.nextGeneration(&want)
}

// vxlanCounters are the counters of VXLAN in XDP (status shows them under
// the vxlan netdevs).
func (d *Dataplane) vxlanCounters() ([]Counter, error) {
	cs, err := d.Counters()
	if err != nil {
		return nil, err
	}
	out := []Counter{}
	for _, c := range cs {
		if strings.HasPrefix(c.Name, "vxlan_") || strings.HasPrefix(c.Name, "pass_vxlan_") || c.Name == "pass_tunnel_dev" {
			out = append(out, c)
		}
	}
	return out, nil
}
