package lanra

import (
	"net/netip"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// Reasons a Router Solicitation is ignored (RFC 4861 section 6.1.1), as
// counted in InterfaceStats.RSInvalid.
const (
	RejectHopLimit    = "hop_limit"
	RejectCode        = "icmp_code"
	RejectShort       = "too_short" // under 8 octets
	RejectType        = "not_router_solicit"
	RejectBadOption   = "bad_option"              // zero length or past the end
	RejectMalformed   = "malformed"               // an option's content did not parse
	RejectUnspecified = "unspecified_source_slla" // "::" may not carry a link-layer address
)

const (
	rsLen  = 8
	rsType = byte(ipv6.ICMPTypeRouterSolicitation)
)

// checkRS validates a received message as a Router Solicitation: "" when
// it is one to answer.
func checkRS(b []byte, hopLimit int, src netip.Addr) string {
	switch {
	case len(b) < 4 || b[0] != rsType:
		return RejectType
	case hopLimit != ndp.HopLimit:
		return RejectHopLimit
	case b[1] != 0:
		return RejectCode
	case len(b) < rsLen:
		return RejectShort
	}
	for o := b[rsLen:]; len(o) > 0; {
		if len(o) < 2 || o[1] == 0 || int(o[1])*8 > len(o) {
			return RejectBadOption
		}
		o = o[int(o[1])*8:]
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return RejectMalformed
	}
	rs, ok := m.(*ndp.RouterSolicitation)
	if !ok {
		return RejectType
	}
	if src.IsUnspecified() {
		for _, o := range rs.Options {
			if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Source {
				return RejectUnspecified
			}
		}
	}
	return ""
}
