package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// The /64 NPT maps (xdpr_npt64_in, xdpr_npt64_out) repeat the /64 entries
// of the tries under an exact-match key, so the XDP forward path finds the
// common rule with one hash lookup. The tries stay the authority: the TC
// slow path, the NDP proxy and the status read them, and the hash maps are
// rebuilt from them here after every change. The data plane consults a
// hash map only under XDPR_F_NPT64, and the tries after a hash miss only
// under XDPR_F_NPT_TRIE; syncNPT64 sets both from what it verified, so a
// packet never gets an answer the trie would not give.

// lpmPrefixLen64 is the trie key length of a /64 rule: ifindex bits + 64.
const lpmPrefixLen64 = 32 + 64

func npt64Key(k routerXdprLpm6Key) routerXdprNpt64Key {
	n := routerXdprNpt64Key{Ifindex: k.Ifindex}
	copy(n.Prefix[:], k.Addr[:8])
	return n
}

// syncNPT64 makes the /64 maps mirror the tries' /64 entries and returns
// the NPT feature bits that are safe now. On any failure the hash maps are
// left out of the lookup (NPT_TRIE alone, when there are rules at all): a
// hash entry that could not be updated or removed would otherwise win over
// the trie.
func (d *Dataplane) syncNPT64() (uint32, error) {
	var flags uint32
	var errs []error
	have64 := false
	for _, p := range []struct{ trie, m64 *ebpf.Map }{
		{d.maps.XdprNptIn, d.maps.XdprNpt64In},
		{d.maps.XdprNptOut, d.maps.XdprNpt64Out},
	} {
		rules, needTrie, n64, err := mirrorNPT64(p.trie, p.m64)
		if rules {
			flags |= featureNPT
		}
		if needTrie {
			flags |= featureNPTTrie
		}
		have64 = have64 || n64
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	switch {
	case err != nil && flags&featureNPT != 0:
		return featureNPT | featureNPTTrie, err
	case err != nil:
		// No rule in the tries; a stale hash entry must not be looked at.
		return 0, err
	case have64:
		flags |= featureNPT64
	}
	return flags, nil
}

// mirrorNPT64 puts every /64 entry of trie into m64 and removes from m64
// what the trie does not hold. It reports whether the trie holds any
// entry, whether it holds one m64 does not serve (shorter than /64), and
// whether m64 holds entries.
func mirrorNPT64(trie, m64 *ebpf.Map) (rules, needTrie, have64 bool, err error) {
	want := map[routerXdprNpt64Key]routerXdprNptRule{}
	var (
		k routerXdprLpm6Key
		v routerXdprNptRule
	)
	it := trie.Iterate()
	for it.Next(&k, &v) {
		rules = true
		if k.Prefixlen != lpmPrefixLen64 {
			needTrie = true
			continue
		}
		want[npt64Key(k)] = v
	}
	if err := it.Err(); err != nil {
		return rules, true, false, fmt.Errorf("iterate %s: %w", trie, err)
	}
	var (
		hk    routerXdprNpt64Key
		hv    routerXdprNptRule
		stale []routerXdprNpt64Key
		have  = map[routerXdprNpt64Key]routerXdprNptRule{}
	)
	hit := m64.Iterate()
	for hit.Next(&hk, &hv) {
		if w, ok := want[hk]; !ok || w != hv {
			stale = append(stale, hk)
			continue
		}
		have[hk] = hv
	}
	if err := hit.Err(); err != nil {
		return rules, true, false, fmt.Errorf("iterate %s: %w", m64, err)
	}
	// Removed first: a changed rule is rewritten below, and a removed one
	// must not outlive its trie entry for longer than this call.
	for _, hk := range stale {
		if err := m64.Delete(hk); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return rules, true, true, fmt.Errorf("delete %v from %s: %w", hk, m64, err)
		}
	}
	for hk, hv := range want {
		if _, ok := have[hk]; ok {
			continue
		}
		if err := m64.Put(hk, hv); err != nil {
			return rules, true, true, fmt.Errorf("put %v into %s: %w", hk, m64, err)
		}
	}
	return rules, needTrie, len(want) > 0, nil
}
