package loader

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// Feature bits of xdpr_features: the data plane skips the lookups of a
// feature whose bit is clear.
const (
	featureNPT      = uint32(routerXdprFeatureBitXDPR_F_NPT)
	featureNDPProxy = uint32(routerXdprFeatureBitXDPR_F_NDP_PROXY)
	featureNPT64    = uint32(routerXdprFeatureBitXDPR_F_NPT64)
	featureNPTTrie  = uint32(routerXdprFeatureBitXDPR_F_NPT_TRIE)
	featureVXLAN    = uint32(routerXdprFeatureBitXDPR_F_VXLAN)
)

// syncFeatures sets xdpr_features from what the maps hold now and starts a
// new generation of them. Every
// function that adds or removes NPT rules or proxied prefixes calls it
// after changing the maps: a bit set after the rules are in, and cleared
// after they are gone, never hides a rule from a packet (a set bit over an
// empty map only costs a lookup that misses). Open calls it too, so state
// pinned by an older version (tries without /64 maps), or a crash between
// a map change and this call, is put right by the next command.
func (d *Dataplane) syncFeatures() error {
	if d.maps.XdprFeatures == nil {
		return nil
	}
	// The NPT bits come with the /64 maps rebuilt from the tries; after
	// a failure there they still are the safe ones, and are written.
	flags, nptErr := d.syncNPT64()
	full, err := nonEmpty(d.maps.XdprNdpProxy)
	if err != nil {
		return errors.Join(nptErr, err)
	}
	if full {
		flags |= featureNDPProxy
	}
	if d.maps.XdprVxlans != nil {
		var (
			k uint32
			v routerXdprVxlan
		)
		it := d.maps.XdprVxlans.Iterate()
		if it.Next(&k, &v) {
			flags |= featureVXLAN
		}
		if err := it.Err(); err != nil {
			return errors.Join(nptErr, fmt.Errorf("read xdpr_vxlans: %w", err))
		}
	}
	return errors.Join(nptErr, d.nextGeneration(&flags))
}

// nextGeneration writes xdpr_features with flags (nil: the ones there) and
// the next generation, so that no CPU uses a lookup it cached from the maps
// before the change (xdpr_npt_cache, xdpr_decap_cache). Whatever changes
// those maps calls it after the change.
func (d *Dataplane) nextGeneration(flags *uint32) error {
	if d.maps.XdprFeatures == nil {
		return nil
	}
	var cur routerXdprFeatureWord
	if err := d.maps.XdprFeatures.Lookup(uint32(0), &cur); err != nil {
		return fmt.Errorf("xdpr_features: %w", err)
	}
	if flags != nil {
		cur.Flags = *flags
	}
	cur.Gen++
	if err := d.maps.XdprFeatures.Put(uint32(0), cur); err != nil {
		return fmt.Errorf("xdpr_features: %w", err)
	}
	return nil
}

// features reads xdpr_features back (status, tests).
func (d *Dataplane) features() (uint32, error) {
	var v routerXdprFeatureWord
	if err := d.maps.XdprFeatures.Lookup(uint32(0), &v); err != nil {
		return 0, fmt.Errorf("xdpr_features: %w", err)
	}
	return v.Flags, nil
}

func nonEmpty(m *ebpf.Map) (bool, error) {
	var (
		k routerXdprLpm6Key
		v []byte
	)
	it := m.Iterate()
	found := it.Next(&k, &v)
	if err := it.Err(); err != nil {
		return false, fmt.Errorf("iterate %s: %w", m, err)
	}
	return found, nil
}

// featureNames names the bits set in flags from the C enum's BTF:
// XDPR_F_NDP_PROXY becomes "ndp_proxy".
func featureNames(flags uint32) ([]string, error) {
	spec, err := loadRouter()
	if err != nil {
		return nil, err
	}
	var e *btf.Enum
	if err := spec.Types.TypeByName("xdpr_feature_bit", &e); err != nil {
		return nil, fmt.Errorf("enum xdpr_feature_bit in BTF: %w", err)
	}
	out := []string{}
	for _, v := range e.Values {
		if uint64(flags)&v.Value != 0 {
			out = append(out, strings.ToLower(strings.TrimPrefix(v.Name, "XDPR_F_")))
		}
	}
	return out, nil
}
