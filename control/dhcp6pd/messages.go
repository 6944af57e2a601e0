package dhcp6pd

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// optionSolMaxRT is the SOL_MAX_RT option (RFC 8415 section 21.24), which
// the library does not decode.
const optionSolMaxRT dhcpv6.OptionCode = 82

// offered is one IA Prefix option as received.
type offered struct {
	prefix           netip.Prefix
	preferred, valid time.Duration
}

// iaResult is the client's IA_PD in a server message.
type iaResult struct {
	found    bool
	status   iana.StatusCode // of the IA_PD; Success when absent
	t1, t2   time.Duration
	prefixes []offered
}

// usable reports whether the IA_PD delegates anything.
func (r iaResult) usable() bool {
	if !r.found || r.status != iana.StatusSuccess {
		return false
	}
	for _, p := range r.prefixes {
		if p.valid > 0 {
			return true
		}
	}
	return false
}

// parseIAPD finds the IA_PD with iaid in m. IA Prefix options whose
// preferred lifetime exceeds the valid one are discarded, and an IA_PD
// with T1 > T2 (both non-zero) as a whole (RFC 8415 sections 21.21-22).
func parseIAPD(m *dhcpv6.Message, iaid [4]byte) iaResult {
	var r iaResult
	for _, ia := range m.Options.IAPD() {
		if ia.IaId != iaid {
			continue
		}
		if ia.T1 > 0 && ia.T2 > 0 && ia.T1 > ia.T2 {
			return r
		}
		r.found, r.t1, r.t2 = true, ia.T1, ia.T2
		if st := ia.Options.Status(); st != nil {
			r.status = st.StatusCode
		}
		for _, p := range ia.Options.Prefixes() {
			if p.Prefix == nil || p.PreferredLifetime > p.ValidLifetime {
				continue
			}
			if st := p.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
				continue
			}
			addr, ok := netip.AddrFromSlice(p.Prefix.IP.To16())
			if !ok {
				continue
			}
			bits, _ := p.Prefix.Mask.Size()
			pfx, err := addr.Prefix(bits)
			if err != nil {
				continue
			}
			r.prefixes = append(r.prefixes, offered{prefix: pfx, preferred: p.PreferredLifetime, valid: p.ValidLifetime})
		}
		return r
	}
	return r
}

// serverSolMaxRT is the server's SOL_MAX_RT, if it sent an acceptable one
// (60 to 86400 seconds).
func serverSolMaxRT(m *dhcpv6.Message) (time.Duration, bool) {
	o := m.GetOneOption(optionSolMaxRT)
	if o == nil {
		return 0, false
	}
	b := o.ToBytes()
	if len(b) != 4 {
		return 0, false
	}
	v := time.Duration(binary.BigEndian.Uint32(b)) * time.Second
	if v < 60*time.Second || v > 86400*time.Second {
		return 0, false
	}
	return v, true
}

// messageStatus is the message-level Status Code (Success when absent).
func messageStatus(m *dhcpv6.Message) iana.StatusCode {
	if st := m.Options.Status(); st != nil {
		return st.StatusCode
	}
	return iana.StatusSuccess
}

// dnsServers is the DNS Recursive Name Server option's addresses.
func dnsServers(m *dhcpv6.Message) []netip.Addr {
	var out []netip.Addr
	for _, ip := range m.Options.DNS() {
		if a, ok := netip.AddrFromSlice(ip.To16()); ok && !a.IsUnspecified() {
			out = append(out, a)
		}
	}
	return out
}

func sameDUID(a, b dhcpv6.DUID) bool {
	return a != nil && b != nil && bytes.Equal(a.ToBytes(), b.ToBytes())
}

// request is what the client asks for in one message.
type request struct {
	typ      dhcpv6.MessageType
	xid      dhcpv6.TransactionID
	clientID dhcpv6.DUID
	serverID dhcpv6.DUID // nil in Solicit and Rebind
	iaid     [4]byte
	elapsed  time.Duration
	hintLen  int            // Solicit: prefix-length hint
	prefixes []netip.Prefix // the prefixes asked for, renewed or released
}

// build encodes r. Lifetimes and T1/T2 in the client's IA_PD are 0: the
// server decides them (RFC 8415 sections 18.2.1-18.2.7).
func (r request) build() []byte {
	m := &dhcpv6.Message{MessageType: r.typ, TransactionID: r.xid}
	m.AddOption(dhcpv6.OptClientID(r.clientID))
	if r.serverID != nil {
		m.AddOption(dhcpv6.OptServerID(r.serverID))
	}
	if r.typ != dhcpv6.MessageTypeRelease {
		m.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, optionSolMaxRT))
	}
	m.AddOption(dhcpv6.OptElapsedTime(r.elapsed))
	ia := &dhcpv6.OptIAPD{IaId: r.iaid}
	for _, p := range r.prefixes {
		ia.Options.Add(&dhcpv6.OptIAPrefix{Prefix: ipNet(p)})
	}
	if len(r.prefixes) == 0 && r.hintLen > 0 {
		ia.Options.Add(&dhcpv6.OptIAPrefix{Prefix: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(r.hintLen, 128)}})
	}
	m.AddOption(ia)
	return m.ToBytes()
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}
}
