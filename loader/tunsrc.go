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

// MaxSourceNets is how many entries the filter holds.
const MaxSourceNets = len(routerXdprSrcFilter{}.Nets)

// SetTunnelSourceFilter makes nets the tunnels' inner source filter. The
// router's own addresses are put first, so that one inside a LAN subnet
// counts as local; duplicates are dropped. More than MaxSourceNets
// entries is an error, and the filter is left as it was.
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
	var v routerXdprSrcFilter
	seen := map[netip.Prefix]bool{}
	for _, n := range sorted {
		kind, err := n.Kind.value()
		if err != nil {
			return fmt.Errorf("tunnel source filter: %s: %w", n.Prefix, err)
		}
		if !n.Prefix.IsValid() || !n.Prefix.Addr().Is4() {
			return fmt.Errorf("tunnel source filter: %v is not an IPv4 prefix", n.Prefix)
		}
		p := n.Prefix.Masked()
		if seen[p] {
			continue
		}
		seen[p] = true
		if int(v.Count) == MaxSourceNets {
			return fmt.Errorf("tunnel source filter: more than %d prefixes", MaxSourceNets)
		}
		a := p.Addr().As4()
		var m [4]byte
		binary.BigEndian.PutUint32(m[:], ^uint32(0)<<(32-p.Bits())) // 0 for /0
		// __be32 as the data plane reads it: the bytes in network order.
		v.Nets[v.Count] = routerXdprSrcNet{
			Addr: binary.NativeEndian.Uint32(a[:]),
			Mask: binary.NativeEndian.Uint32(m[:]),
			Kind: uint32(kind),
		}
		v.Count++
	}
	if err := d.maps.XdprTunSrcFilter.Put(uint32(0), v); err != nil {
		return fmt.Errorf("write xdpr_tun_src_filter: %w", err)
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
	return out, nil
}
