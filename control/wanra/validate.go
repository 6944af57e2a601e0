package wanra

import (
	"fmt"
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
	RejectMalformed   = "malformed" // the RA header did not parse
)

const (
	icmpHeaderLen = 4
	raHeaderLen   = 16 // ICMPv6 header + RA body: the shortest valid RA
	raType        = byte(ipv6.ICMPTypeRouterAdvertisement)
)

// check validates one received ICMPv6 message as a Router Advertisement
// and parses it; reason is "" when it is accepted. The checksum was
// verified by the kernel (ICMPv6 raw sockets always check it).
//
// An option whose content does not parse (a Prefix Information option of
// the wrong length, an RDNSS option without a whole address, a DNSSL
// option with a broken name) is left out and its reason returned in
// ignored; the rest of the RA is used, as hosts and the kernel do (RFC
// 4861 4.6 and 6.1.2 only discard the RA for an option of length zero or
// one that runs past the end). Options of a type this package does not
// know parse as ndp.RawOption and are not used either.
func check(b []byte, hopLimit int, src netip.Addr) (ra *ndp.RouterAdvertisement, ignored []string, reason string) {
	switch {
	case len(b) < icmpHeaderLen || b[0] != raType:
		return nil, nil, RejectType
	case hopLimit != ndp.HopLimit:
		return nil, nil, RejectHopLimit
	case !src.Is6() || !src.IsLinkLocalUnicast():
		return nil, nil, RejectSource
	case b[1] != 0:
		return nil, nil, RejectCode
	case len(b) < raHeaderLen:
		return nil, nil, RejectShort
	}
	if r := checkOptions(b[raHeaderLen:]); r != "" {
		return nil, nil, r
	}
	hdr := b[:raHeaderLen]
	m, err := ndp.ParseMessage(hdr)
	if err != nil {
		return nil, nil, RejectMalformed
	}
	ra, ok := m.(*ndp.RouterAdvertisement)
	if !ok {
		return nil, nil, RejectType
	}
	for opts := b[raHeaderLen:]; len(opts) > 0; {
		l := int(opts[1]) * 8 // checkOptions made sure it is there
		if o, err := parseOption(hdr, opts[:l]); err != nil {
			ignored = append(ignored, IgnoreMalformedOption)
		} else {
			ra.Options = append(ra.Options, o)
		}
		opts = opts[l:]
	}
	return ra, ignored, ""
}

// parseOption parses one option through the ndp package, as the only
// option of an RA with header hdr (the package parses options only as
// part of a message, and fails the whole message for one bad option).
func parseOption(hdr, opt []byte) (ndp.Option, error) {
	b := make([]byte, 0, len(hdr)+len(opt))
	b = append(append(b, hdr...), opt...)
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return nil, err
	}
	ra, ok := m.(*ndp.RouterAdvertisement)
	if !ok || len(ra.Options) != 1 {
		return nil, fmt.Errorf("ndp: %d options parsed, want 1", len(ra.Options))
	}
	return ra.Options[0], nil
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
