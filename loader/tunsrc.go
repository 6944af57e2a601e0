package loader

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// SourceKind says why the tunnels' inner source filter refuses a prefix.
type SourceKind string

const (
	// SourceLocal: one of the router's own IPv4 addresses, or a
	// broadcast address of one of its subnets. The kernel drops such a
	// source arriving on any interface (a martian).
	SourceLocal SourceKind = "local"
	// SourceLAN: a LAN subnet, whose hosts are behind a LAN port; from a
	// tunnel such a source is spoofed.
	SourceLAN SourceKind = "lan"
)

// SourceNet is one entry of the tunnels' inner source filter: decapsulated
// IPv4 whose source lies in Prefix is dropped, in XDP and in the slow path,
// and counted by Kind (drop_tun_src_local / drop_tun_src_lan,
// tc_drop_src_local / tc_drop_src_lan). 0/8, 127/8 and 224/3 are dropped
// as local without an entry.
type SourceNet struct {
	Prefix netip.Prefix `json:"prefix"`
	Kind   SourceKind   `json:"kind"`
}

func (k SourceKind) value() (routerXdprSrcKind, error) {
	switch k {
	case SourceLocal:
		return routerXdprSrcKindXDPR_SRC_LOCAL, nil
	case SourceLAN:
		return routerXdprSrcKindXDPR_SRC_LAN, nil
	}
	return 0, fmt.Errorf("unknown source kind %q", k)
}

// MaxSourceNets is how many entries the filter holds, of each family.
const MaxSourceNets = len(routerXdprSrcFilter{}.Nets)

// SetTunnelSourceFilter makes nets the tunnels' inner source filter: the
// IPv4 prefixes ipip6's (xdpr_tun_src_filter), the IPv6 ones 6in4's
// (xdpr_tun_src6_filter). The router's own addresses are put first, so
// that one inside a LAN subnet counts as local; duplicates are dropped.
// More than MaxSourceNets entries of a family is an error, and the
// filters are left as they were.
func (d *Dataplane) SetTunnelSourceFilter(nets []SourceNet) error {
	sorted := slices.Clone(nets)
	// Stable: within a kind, the caller's order.
	slices.SortStableFunc(sorted, func(a, b SourceNet) int {
		if a.Kind == b.Kind {
			return 0
		}
		if a.Kind == SourceLocal {
			return -1
		}
		return 1
	})
	var (
		v4   routerXdprSrcFilter
		v6   routerXdprSrc6Filter
		seen = map[netip.Prefix]bool{}
	)
	for _, n := range sorted {
		kind, err := n.Kind.value()
		if err != nil {
			return fmt.Errorf("tunnel source filter: %s: %w", n.Prefix, err)
		}
		if !n.Prefix.IsValid() || n.Prefix.Addr().Is4In6() {
			return fmt.Errorf("tunnel source filter: %v is not an IPv4 or IPv6 prefix", n.Prefix)
		}
		p := n.Prefix.Masked()
		if seen[p] {
			continue
		}
		seen[p] = true
		if p.Addr().Is6() {
			if int(v6.Count) == len(v6.Nets) {
				return fmt.Errorf("tunnel source filter: more than %d IPv6 prefixes", len(v6.Nets))
			}
			e := &v6.Nets[v6.Count]
			e.Addr.In6U.U6Addr8 = p.Addr().As16()
			for i := range p.Bits() {
				e.Mask.In6U.U6Addr8[i/8] |= 0x80 >> (i % 8)
			}
			e.Kind = uint32(kind)
			v6.Count++
			continue
		}
		if int(v4.Count) == MaxSourceNets {
			return fmt.Errorf("tunnel source filter: more than %d prefixes", MaxSourceNets)
		}
		a := p.Addr().As4()
		var m [4]byte
		binary.BigEndian.PutUint32(m[:], ^uint32(0)<<(32-p.Bits())) // 0 for /0
		// __be32 as the data plane reads it: the bytes in network order.
		v4.Nets[v4.Count] = routerXdprSrcNet{
			Addr: binary.NativeEndian.Uint32(a[:]),
			Mask: binary.NativeEndian.Uint32(m[:]),
			Kind: uint32(kind),
		}
		v4.Count++
	}
	if err := d.maps.XdprTunSrcFilter.Put(uint32(0), v4); err != nil {
		return fmt.Errorf("write xdpr_tun_src_filter: %w", err)
	}
	if err := d.maps.XdprTunSrc6Filter.Put(uint32(0), v6); err != nil {
		return fmt.Errorf("write xdpr_tun_src6_filter: %w", err)
	}
	return nil
}

// TunnelSourceFilter reads the tunnels' inner source filter back.
func (d *Dataplane) TunnelSourceFilter() ([]SourceNet, error) {
	var v routerXdprSrcFilter
	if err := d.maps.XdprTunSrcFilter.Lookup(uint32(0), &v); err != nil {
		return nil, fmt.Errorf("read xdpr_tun_src_filter: %w", err)
	}
	out := []SourceNet{}
	for _, n := range v.Nets[:min(int(v.Count), MaxSourceNets)] {
		var a, m [4]byte
		binary.NativeEndian.PutUint32(a[:], n.Addr)
		binary.NativeEndian.PutUint32(m[:], n.Mask)
		bits := 0
		for x := binary.BigEndian.Uint32(m[:]); x != 0; x <<= 1 {
			bits++
		}
		kind := SourceLocal
		if routerXdprSrcKind(n.Kind) == routerXdprSrcKindXDPR_SRC_LAN {
			kind = SourceLAN
		}
		out = append(out, SourceNet{Prefix: netip.PrefixFrom(netip.AddrFrom4(a), bits), Kind: kind})
	}
	var v6 routerXdprSrc6Filter
	if err := d.maps.XdprTunSrc6Filter.Lookup(uint32(0), &v6); err != nil {
		return nil, fmt.Errorf("read xdpr_tun_src6_filter: %w", err)
	}
	for _, n := range v6.Nets[:min(int(v6.Count), len(v6.Nets))] {
		bits := 0
		for _, b := range n.Mask.In6U.U6Addr8 {
			for ; b != 0; b <<= 1 {
				bits++
			}
		}
		kind := SourceLocal
		if routerXdprSrcKind(n.Kind) == routerXdprSrcKindXDPR_SRC_LAN {
			kind = SourceLAN
		}
		out = append(out, SourceNet{Prefix: netip.PrefixFrom(netip.AddrFrom16(n.Addr.In6U.U6Addr8), bits), Kind: kind})
	}
	return out, nil
}
