package wanra

import (
	"net/netip"

	"github.com/mdlayher/ndp"
)

// maxFlagSources bounds what the tracker remembers of the M/O flags by
// source; a flood of RAs from made-up sources empties it rather than
// growing it (at worst Managed is called again for a source it forgot:
// the DHCPv6 client rate-limits what it does about it).
const maxFlagSources = 2 * MaxRouters

// noteFlags calls Tracker.Managed when src's accepted RA has the M or O
// flag and src's previous one had neither (or src was not heard before):
// a home gateway that just started, or began to offer DHCPv6.
func (l *loop) noteFlags(src netip.Addr, ra *ndp.RouterAdvertisement) {
	mo := ra.ManagedConfiguration || ra.OtherConfiguration
	was, known := l.flags[src]
	if l.flags == nil || len(l.flags) >= maxFlagSources && !known {
		l.flags = map[netip.Addr]bool{}
	}
	l.flags[src] = mo
	if !mo || was {
		return
	}
	l.t.count(func(s *Stats) { s.ManagedSeen++ })
	l.t.Log.Info("wan ra: router advertises DHCPv6", "interface", l.t.Interface, "router", src,
		"managed", ra.ManagedConfiguration, "other", ra.OtherConfiguration)
	if l.t.Managed != nil {
		l.t.Managed(src, ra.ManagedConfiguration, ra.OtherConfiguration)
	}
}
