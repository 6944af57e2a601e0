package loader

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
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
	// Foreign are addresses in Prefix that other nodes on the link hold
	// (the WAN routers' global addresses): never answered for, whatever
	// the mode. Read back, they are the xdpr_ndp_foreign entries of the
	// interface inside Prefix.
	Foreign []netip.Addr `json:"foreign,omitempty"`
}

// checkForeign says why a cannot be a foreign address of prefix p.
func checkForeign(p netip.Prefix, a netip.Addr) error {
	if !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return fmt.Errorf("foreign address %v is not a plain IPv6 address", a)
	}
	if !p.Contains(a) {
		return fmt.Errorf("foreign address %v is outside %v", a, p)
	}
	return nil
}

// SyncNDPProxy makes xdpr_ndp_proxy hold exactly entries, and
// xdpr_ndp_foreign exactly their foreign addresses.
func (d *Dataplane) SyncNDPProxy(entries []NDPProxyEntry) (err error) {
	// Also after a failure part way: the map may have changed.
	defer func() { err = errors.Join(err, d.syncFeatures()) }()
	want := map[routerXdprLpm6Key]bool{}
	foreign := map[routerXdprLpm6Key]bool{}
	for _, e := range entries {
		if !e.Prefix.Addr().Is6() || e.Prefix.Masked() != e.Prefix {
			return fmt.Errorf("ndp proxy on %s: %v is not an IPv6 prefix with host bits zero", e.Interface, e.Prefix)
		}
		for _, a := range e.Foreign {
			if err := checkForeign(e.Prefix, a); err != nil {
				return fmt.Errorf("ndp proxy on %s: %w", e.Interface, err)
			}
		}
		ifindex, err := ifindexByName(e.Interface)
		if err != nil {
			return fmt.Errorf("ndp proxy for %v: %w", e.Prefix, err)
		}
		// Foreign addresses first: the prefix is never proxied without
		// its exceptions.
		for _, a := range e.Foreign {
			k := lpmKey(ifindex, netip.PrefixFrom(a, 128))
			v := routerXdprNdpForeignEntry{Kind: routerXdprNdpForeignKindXDPR_NDP_FOREIGN_ROUTER}
			if err := d.maps.XdprNdpForeign.Put(k, v); err != nil {
				return fmt.Errorf("xdpr_ndp_foreign[%s %v]: %w", e.Interface, a, err)
			}
			foreign[k] = true
		}
		k := lpmKey(ifindex, e.Prefix)
		if err := d.maps.XdprNdpProxy.Put(k, routerXdprNdpEntry{Mode: routerXdprNdpMode(e.Mode)}); err != nil {
			return fmt.Errorf("xdpr_ndp_proxy[%s %v]: %w", e.Interface, e.Prefix, err)
		}
		want[k] = true
	}
	if err := deleteUnwanted(d.maps.XdprNdpProxy, nil, want); err != nil {
		return err
	}
	return deleteUnwanted(d.maps.XdprNdpForeign, nil, foreign)
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
	if d.maps.XdprNdpForeign == nil {
		return out, nil
	}
	var fv routerXdprNdpForeignEntry
	fit := d.maps.XdprNdpForeign.Iterate()
	for fit.Next(&k, &fv) {
		a := keyPrefix(k).Addr()
		for i := range out {
			if out[i].Ifindex == int(k.Ifindex) && out[i].Prefix.Contains(a) {
				out[i].Foreign = append(out[i].Foreign, a)
			}
		}
	}
	if err := fit.Err(); err != nil {
		return nil, fmt.Errorf("read xdpr_ndp_foreign: %w", err)
	}
	for i := range out {
		slices.SortFunc(out[i].Foreign, netip.Addr.Compare)
	}
	return out, nil
}
