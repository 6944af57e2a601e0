package loader

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
)

// NDPMode says which solicitations the NDP proxy answers.
type NDPMode uint32

const (
	// NDPPrefix answers for every target inside the prefix.
	NDPPrefix = NDPMode(routerXdprNdpModeXDPR_NDP_PREFIX)
	// NDPLANNeighbor answers only for targets whose neighbour entry is
	// resolved behind a LAN interface (lines with one shared /64).
	NDPLANNeighbor = NDPMode(routerXdprNdpModeXDPR_NDP_LAN_NEIGHBOR)
)

func (m NDPMode) String() string {
	switch m {
	case NDPPrefix:
		return "prefix"
	case NDPLANNeighbor:
		return "lan-neighbor"
	}
	return fmt.Sprintf("ndp-mode(%d)", uint32(m))
}

// ParseNDPMode accepts "prefix" or "lan-neighbor".
func ParseNDPMode(s string) (NDPMode, error) {
	for _, m := range []NDPMode{NDPPrefix, NDPLANNeighbor} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown NDP proxy mode %q (want prefix or lan-neighbor)", s)
}

// NDPProxyEntry is one prefix the proxy answers for on Interface.
type NDPProxyEntry struct {
	Interface string       `json:"interface"`
	Ifindex   int          `json:"ifindex"`
	Prefix    netip.Prefix `json:"prefix"`
	Mode      NDPMode      `json:"-"`
	ModeName  string       `json:"mode"`
}

// SyncNDPProxy makes xdpr_ndp_proxy hold exactly entries.
func (d *Dataplane) SyncNDPProxy(entries []NDPProxyEntry) (err error) {
	// Also after a failure part way: the map may have changed.
	defer func() { err = errors.Join(err, d.syncFeatures()) }()
	want := map[routerXdprLpm6Key]bool{}
	for _, e := range entries {
		if !e.Prefix.Addr().Is6() || e.Prefix.Masked() != e.Prefix {
			return fmt.Errorf("ndp proxy on %s: %v is not an IPv6 prefix with host bits zero", e.Interface, e.Prefix)
		}
		ifindex, err := ifindexByName(e.Interface)
		if err != nil {
			return fmt.Errorf("ndp proxy for %v: %w", e.Prefix, err)
		}
		k := lpmKey(ifindex, e.Prefix)
		if err := d.maps.XdprNdpProxy.Put(k, routerXdprNdpEntry{Mode: routerXdprNdpMode(e.Mode)}); err != nil {
			return fmt.Errorf("xdpr_ndp_proxy[%s %v]: %w", e.Interface, e.Prefix, err)
		}
		want[k] = true
	}
	return deleteUnwanted(d.maps.XdprNdpProxy, nil, want)
}

// NDPProxyEntries reads the proxied prefixes back.
func (d *Dataplane) NDPProxyEntries() ([]NDPProxyEntry, error) {
	out := []NDPProxyEntry{}
	if d.maps.XdprNdpProxy == nil {
		return out, nil
	}
	var (
		k routerXdprLpm6Key
		v routerXdprNdpEntry
	)
	it := d.maps.XdprNdpProxy.Iterate()
	for it.Next(&k, &v) {
		e := NDPProxyEntry{Ifindex: int(k.Ifindex), Prefix: keyPrefix(k), Mode: NDPMode(v.Mode)}
		e.Interface, e.ModeName = ifnameByIndex(e.Ifindex), e.Mode.String()
		out = append(out, e)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read xdpr_ndp_proxy: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix.String() < out[j].Prefix.String() })
	return out, nil
}
