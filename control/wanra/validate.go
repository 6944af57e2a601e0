package wanra

import (
	"net/netip"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// Reasons an RA is rejected (RFC 4861 section 6.1.2), as counted in
// Stats.Rejected.
const (
	RejectHopLimit    = "hop_limit"             // not 255: it crossed a router
	RejectSource      = "source_not_link_local" // routers send RAs from link-local addresses
	RejectCode        = "icmp_code"             // must be 0
	RejectShort       = "too_short"             // under 16 octets
	RejectType        = "not_router_advert"     // another ICMPv6 type got through
	RejectZeroOption  = "option_length_zero"
	RejectTruncOption = "option_truncated"
	RejectMalformed   = "malformed" // an option's content did not parse
)

const (
	icmpHeaderLen = 4
	raHeaderLen   = 16 // ICMPv6 header + RA body: the shortest valid RA
	raType        = byte(ipv6.ICMPTypeRouterAdvertisement)
)

// check validates one received ICMPv6 message as a Router Advertisement
// and parses it; reason is "" when it is accepted. The checksum was
// verified by the kernel (ICMPv6 raw sockets always check it).
func check(b []byte, hopLimit int, src netip.Addr) (ra *ndp.RouterAdvertisement, reason string) {
	switch {
	case len(b) < icmpHeaderLen || b[0] != raType:
		return nil, RejectType
	case hopLimit != ndp.HopLimit:
		return nil, RejectHopLimit
	case !src.Is6() || !src.IsLinkLocalUnicast():
		return nil, RejectSource
	case b[1] != 0:
		return nil, RejectCode
	case len(b) < raHeaderLen:
		return nil, RejectShort
	}
	if r := checkOptions(b[raHeaderLen:]); r != "" {
		return nil, r
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return nil, RejectMalformed
	}
	ra, ok := m.(*ndp.RouterAdvertisement)
	if !ok {
		return nil, RejectType
	}
	return ra, ""
}

// checkOptions walks the option headers: a zero length would make a
// receiver loop forever and is the one length error RFC 4861 names.
func checkOptions(b []byte) string {
	for len(b) > 0 {
		if len(b) < 2 {
			return RejectTruncOption
		}
		l := int(b[1]) * 8
		if l == 0 {
			return RejectZeroOption
		}
		if l > len(b) {
			return RejectTruncOption
		}
		b = b[l:]
	}
	return ""
}
