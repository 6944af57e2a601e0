package loader

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/cilium/ebpf"
)

// NPTMode is how an NPT rule rewrites addresses. Values come from the C enum.
type NPTMode uint8

const (
	// NPTRFC6296 is checksum-neutral translation (RFC 6296 section 3):
	// one 16-bit word outside the prefix absorbs the checksum difference,
	// bit for bit like the kernel's ip6tables SNPT/DNPT.
	NPTRFC6296 = NPTMode(routerXdprNptModeXDPR_NPT_RFC6296)
	// NPTPreserveHost keeps the host bits (bbbb::123 <-> aaaa::123) and
	// updates TCP/UDP/ICMPv6 checksums instead.
	NPTPreserveHost = NPTMode(routerXdprNptModeXDPR_NPT_PRESERVE_HOST)
)

func (m NPTMode) String() string {
	switch m {
	case NPTRFC6296:
		return "rfc6296"
	case NPTPreserveHost:
		return "preserve-host"
	}
	return fmt.Sprintf("npt-mode(%d)", uint8(m))
}

// ParseNPTMode accepts "rfc6296" or "preserve-host".
func ParseNPTMode(s string) (NPTMode, error) {
	for _, m := range []NPTMode{NPTRFC6296, NPTPreserveHost} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown NPT mode %q (want rfc6296 or preserve-host)", s)
}

// NPTRule maps Inside to Outside on the outside interface Interface, both
// directions. The prefixes have the same length, at most 64. Exclude, when
// valid, is the router's own address inside Outside (WAN prefix + token,
// the tunnels' local address): packets to it are not translated but left
// to the kernel, an inside source that would map onto it is dropped, and
// the NDP proxy does not answer for it.
type NPTRule struct {
	Interface string       `json:"interface"`
	Ifindex   int          `json:"ifindex"`
	Inside    netip.Prefix `json:"inside"`
	Outside   netip.Prefix `json:"outside"`
	Exclude   netip.Addr   `json:"exclude,omitzero"`
	Mode      NPTMode      `json:"-"`
	ModeName  string       `json:"mode"`
}

// CheckNPTExclude reports whether exclude (invalid: none) can be the
// excluded address of a rule with outside prefix outside.
func CheckNPTExclude(outside netip.Prefix, exclude netip.Addr) error {
	if !exclude.IsValid() {
		return nil
	}
	if !exclude.Is6() || exclude.Is4In6() || exclude.Zone() != "" {
		return fmt.Errorf("excluded address %v is not a plain IPv6 address", exclude)
	}
	if !outside.Contains(exclude) {
		return fmt.Errorf("excluded address %v is outside %v; only an outside address is ever translated", exclude, outside)
	}
	return nil
}

// CheckNPTPrefixes reports whether inside and outside can form an NPT rule.
func CheckNPTPrefixes(inside, outside netip.Prefix) error {
	for _, p := range []netip.Prefix{inside, outside} {
		if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
			return fmt.Errorf("%v is not an IPv6 prefix", p)
		}
		if p.Masked() != p {
			return fmt.Errorf("%v has bits set after the prefix length (the prefix is %v)", p, p.Masked())
		}
		if p.Bits() < 1 || p.Bits() > 64 {
			return fmt.Errorf("%v: NPT prefixes must be /1 to /64 (RFC 6296 keeps the interface identifier)", p)
		}
	}
	if inside.Bits() != outside.Bits() {
		return fmt.Errorf("inside %v and outside %v differ in length; NPT maps prefixes of one length", inside, outside)
	}
	return nil
}

// nptAdjustment is the one's complement sum(from) - sum(to) over the 16-bit
// words of the two prefixes, what ip6t_NPT's checkentry computes: added to
// one word of a translated address it makes the translation
// checksum-neutral. Host order.
func nptAdjustment(from, to netip.Prefix) uint16 {
	sum := func(p netip.Prefix) uint32 {
		b := p.Masked().Addr().As16()
		var s uint32
		for i := 0; i < 16; i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		return s
	}
	// from + ~to, folded: subtraction in one's complement.
	s := sum(from) + 8*0xffff - sum(to)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func lpmKey(ifindex int, p netip.Prefix) routerXdprLpm6Key {
	return routerXdprLpm6Key{Prefixlen: uint32(32 + p.Bits()), Ifindex: uint32(ifindex), Addr: p.Masked().Addr().As16()}
}

func keyPrefix(k routerXdprLpm6Key) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16(k.Addr), int(k.Prefixlen)-32)
}

// nptValue is one direction of a rule. exclude is the outside address in
// both: DNPT compares the destination before, SNPT the source after
// translation.
func nptValue(ifindex int, from, to netip.Prefix, mode NPTMode, exclude netip.Addr) routerXdprNptRule {
	v := routerXdprNptRule{
		From:       from.Masked().Addr().As16(),
		To:         to.Masked().Addr().As16(),
		Ifindex:    uint32(ifindex),
		PrefixLen:  uint8(from.Bits()),
		Mode:       uint8(mode),
		Adjustment: nptAdjustment(from, to),
	}
	// The prefix bits of the first 64 as a byte mask (prefixes are /1 to
	// /64, checked before).
	for i := 0; i < from.Bits(); i++ {
		v.Mask[i/8] |= 0x80 >> (i % 8)
	}
	if exclude.IsValid() {
		v.Exclude, v.HasExclude = exclude.As16(), 1
	}
	return v
}

func ifindexByName(name string) (int, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %q: %w", name, err)
	}
	return ifc.Index, nil
}

func ifnameByIndex(ifindex int) string {
	if ifc, err := net.InterfaceByIndex(ifindex); err == nil {
		return ifc.Name
	}
	return fmt.Sprintf("ifindex %d (gone)", ifindex)
}

// SyncNPT makes the NPT maps hold exactly rules (by Interface name):
// changed rules are overwritten in place, so a new outside prefix (the
// daemon following a renumbered WAN) takes effect without a gap for the
// inside->outside direction; entries no rule asks for are removed.
func (d *Dataplane) SyncNPT(rules []NPTRule) (err error) {
	// Also after a failure part way: the maps may have changed.
	defer func() { err = errors.Join(err, d.syncFeatures()) }()
	wantIn := map[routerXdprLpm6Key]bool{}
	wantOut := map[routerXdprLpm6Key]bool{}
	for _, r := range rules {
		if err := CheckNPTPrefixes(r.Inside, r.Outside); err != nil {
			return fmt.Errorf("npt rule on %s: %w", r.Interface, err)
		}
		if err := CheckNPTExclude(r.Outside, r.Exclude); err != nil {
			return fmt.Errorf("npt rule %v <-> %v on %s: %w", r.Inside, r.Outside, r.Interface, err)
		}
		ifindex, err := ifindexByName(r.Interface)
		if err != nil {
			return fmt.Errorf("npt rule %v <-> %v: %w", r.Inside, r.Outside, err)
		}
		kin, kout := lpmKey(ifindex, r.Inside), lpmKey(ifindex, r.Outside)
		if err := putNPT(d.maps.XdprNptIn, d.maps.XdprNpt64In, kin, nptValue(ifindex, r.Inside, r.Outside, r.Mode, r.Exclude)); err != nil {
			return fmt.Errorf("npt rule %v on %s: %w", r.Inside, r.Interface, err)
		}
		if err := putNPT(d.maps.XdprNptOut, d.maps.XdprNpt64Out, kout, nptValue(ifindex, r.Outside, r.Inside, r.Mode, r.Exclude)); err != nil {
			return fmt.Errorf("npt rule %v on %s: %w", r.Outside, r.Interface, err)
		}
		wantIn[kin], wantOut[kout] = true, true
	}
	if err := deleteUnwanted(d.maps.XdprNptIn, d.maps.XdprNpt64In, wantIn); err != nil {
		return err
	}
	return deleteUnwanted(d.maps.XdprNptOut, d.maps.XdprNpt64Out, wantOut)
}

// putNPT writes one direction of a rule: the trie, then for a /64 its
// exact-match copy, so the copy never holds what the trie does not.
func putNPT(trie, m64 *ebpf.Map, k routerXdprLpm6Key, v routerXdprNptRule) error {
	if err := trie.Put(k, v); err != nil {
		return fmt.Errorf("%s: %w", trie, err)
	}
	if k.Prefixlen != lpmPrefixLen64 {
		return nil
	}
	if err := m64.Put(npt64Key(k), v); err != nil {
		return fmt.Errorf("%s: %w", m64, err)
	}
	return nil
}

// deleteNPT removes one direction of a rule: the /64 copy first, for the
// same reason. m64 is nil for maps without one (the NDP proxy's).
func deleteNPT(trie, m64 *ebpf.Map, k routerXdprLpm6Key) error {
	if m64 != nil && k.Prefixlen == lpmPrefixLen64 {
		if err := m64.Delete(npt64Key(k)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete %v from %s: %w", keyPrefix(k), m64, err)
		}
	}
	if err := trie.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete %v from %s: %w", keyPrefix(k), trie, err)
	}
	return nil
}

func deleteUnwanted(m, m64 *ebpf.Map, want map[routerXdprLpm6Key]bool) error {
	var (
		k     routerXdprLpm6Key
		v     []byte // the value type differs per map; only keys matter
		stale []routerXdprLpm6Key
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate %s: %w", m, err)
	}
	for _, k := range stale {
		if err := deleteNPT(m, m64, k); err != nil {
			return err
		}
	}
	return nil
}

// NPTRules reads the rules back from the inside->outside map.
func (d *Dataplane) NPTRules() ([]NPTRule, error) {
	out := []NPTRule{}
	if d.maps.XdprNptIn == nil {
		return out, nil
	}
	var (
		k routerXdprLpm6Key
		v routerXdprNptRule
	)
	it := d.maps.XdprNptIn.Iterate()
	for it.Next(&k, &v) {
		bits := int(v.PrefixLen)
		r := NPTRule{
			Ifindex: int(v.Ifindex),
			Inside:  netip.PrefixFrom(netip.AddrFrom16(v.From), bits),
			Outside: netip.PrefixFrom(netip.AddrFrom16(v.To), bits),
			Mode:    NPTMode(v.Mode),
		}
		if v.HasExclude != 0 {
			r.Exclude = netip.AddrFrom16(v.Exclude)
		}
		r.Interface, r.ModeName = ifnameByIndex(r.Ifindex), r.Mode.String()
		out = append(out, r)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read xdpr_npt_in: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Inside.String() < out[j].Inside.String() })
	return out, nil
}

// deleteByIfindex removes every NPT and NDP proxy entry of ifindex.
func (d *Dataplane) deleteByIfindex(ifindex int) error {
	if err := d.deleteEntriesOf(ifindex); err != nil {
		return err
	}
	return d.syncFeatures()
}

func (d *Dataplane) deleteEntriesOf(ifindex int) error {
	for _, mm := range []struct{ m, m64 *ebpf.Map }{
		{d.maps.XdprNptIn, d.maps.XdprNpt64In},
		{d.maps.XdprNptOut, d.maps.XdprNpt64Out},
		{d.maps.XdprNdpProxy, nil},
		{d.maps.XdprNdpForeign, nil},
	} {
		m := mm.m
		var (
			k    routerXdprLpm6Key
			v    []byte
			mine []routerXdprLpm6Key
		)
		it := m.Iterate()
		for it.Next(&k, &v) {
			if int(k.Ifindex) == ifindex {
				mine = append(mine, k)
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("iterate %s: %w", m, err)
		}
		for _, k := range mine {
			if err := deleteNPT(m, mm.m64, k); err != nil {
				return err
			}
		}
	}
	return nil
}
