package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Default6in4MTU is a 1500-octet IPv4 underlay's MTU less the 20-octet
// IPv4 header, as Linux's sit and HE.net's tunnel broker set it.
const Default6in4MTU = 1500 - 20

// validate6in4 checks a `mode: 6in4` tunnel (IPv6 in IPv4, protocol 41,
// RFC 4213), as HE.net's tunnel broker hands one out: the broker's IPv4
// address (remote), this router's (local), the link net (address ::2/64,
// gateway ::1), and the routed prefixes, carved to LANs and steered by
// source like a vxlan tunnel's (Routed).
func (rt *rawTunnel) validate6in4(path string, c *Config) (*Tunnel, error) {
	t := &Tunnel{Name: rt.Name, Mode: "6in4", MTU: Default6in4MTU, HopLimit: DefaultTunnelHopLimit}
	if err := checkIfname(path+".name", rt.Name); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"vni", rt.VNI != nil}, {"port", rt.Port != nil}, {"underlay", rt.Underlay != nil},
		{"hop-limit", rt.HopLimit != nil}, {"ipv4-address", rt.IPv4Address != nil},
		{"nat44", rt.NAT44 != nil}, {"provisioning", rt.Provisioning != nil}} {
		if f.set {
			hint := ""
			if f.name == "hop-limit" {
				hint = "; the outer header is IPv4: ttl"
			}
			return nil, fmt.Errorf("%s.%s: not a setting of mode 6in4%s", path, f.name, hint)
		}
	}
	if c.WAN == nil {
		return nil, fmt.Errorf("%s: a tunnel leaves by the WAN: give wan.interface", path)
	}
	var err error
	if t.Remote, err = ipv4Endpoint(path+".remote", rt.Remote, "the tunnel broker's IPv4 address (HE.net: Server IPv4 Address)"); err != nil {
		return nil, err
	}
	if t.Local, err = ipv4Endpoint(path+".local", rt.Local, "this router's IPv4 address on the WAN (HE.net: Client IPv4 Address)"); err != nil {
		return nil, err
	}
	if t.Local == t.Remote {
		return nil, fmt.Errorf("%s.local: %s is also the remote address", path, t.Local)
	}
	if rt.MTU != nil {
		if *rt.MTU < 1280 || *rt.MTU > MaxTunnelMTU+20 {
			return nil, fmt.Errorf("%s.mtu: %d is out of range 1280-%d (IPv6 needs 1280; the underlay's MTU less 20)", path, *rt.MTU, MaxTunnelMTU+20)
		}
		t.MTU = *rt.MTU
	}
	if rt.TTL != nil {
		if *rt.TTL < 1 || *rt.TTL > 255 {
			return nil, fmt.Errorf("%s.ttl: %d is out of range 1-255", path, *rt.TTL)
		}
		t.HopLimit = *rt.TTL
	}
	if err := t.Routed.parseLink(path, rt); err != nil {
		return nil, err
	}
	for j, s := range rt.Routes {
		p, err := ipv6Prefix(fmt.Sprintf("%s.routes[%d]", path, j), s, 128)
		if err != nil {
			if q, e := netip.ParsePrefix(strings.TrimSpace(s)); e == nil && q.Bits() == 0 {
				p, err = q, nil // ::/0: the default route by the tunnel
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w (mode 6in4 routes IPv6 into the tunnel)", err)
		}
		if !p.Addr().Is6() {
			return nil, fmt.Errorf("%s.routes[%d]: %s is not an IPv6 prefix (mode 6in4 carries IPv6)", path, j, p)
		}
		t.Routes = append(t.Routes, p)
	}
	// A default route (HE.net's usual) overlaps everything and is meant
	// to: longer prefixes win.
	var specific []netip.Prefix
	for _, p := range t.Routes {
		if p.Bits() > 0 {
			specific = append(specific, p)
		}
	}
	if err := t.Routed.parsePrefixes(path, rt, specific, c.LAN); err != nil {
		return nil, err
	}
	return t, nil
}

// ipv4Endpoint parses a 6in4 tunnel's outer address: an IPv4 unicast
// address.
func ipv4Endpoint(path, s, what string) (netip.Addr, error) {
	a, err := underlayAddr(path, s, what)
	if err != nil {
		return netip.Addr{}, err
	}
	if !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%s: %s is an IPv6 address; 6in4 endpoints are IPv4 (%s)", path, a, what)
	}
	return a, nil
}
