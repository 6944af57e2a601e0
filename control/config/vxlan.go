package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// VXLAN is a tunnel through the kernel's own vxlan device (IPv6 in VXLAN
// over IPv4 or IPv6, RFC 7348), which xdprouter creates and owns: seed
// 001's fixed prefixes, routed to this router by a server that owns them.
// The kernel encapsulates and decapsulates (the slow path); XDP leaves
// every packet routed into it to the kernel (pass_tunnel_dev).
type VXLAN struct {
	Name string // the netdev's name
	// Path is where it was configured, for messages: "tunnels[0]", or
	// "delegations[0].peers[3]" for a peer a delegation made.
	Path     string
	VNI      uint32
	Port     uint16     // UDP destination port
	Remote   netip.Addr // the far end's underlay address, IPv4 or IPv6
	Local    netip.Addr // invalid: the kernel picks the source by route
	Underlay string     // where the outer packets leave: wan.interface unless given
	MTU      int        // 0: the kernel's (underlay MTU - 50, or - 70 over IPv6)
	Routed
	// Routes are IPv6 prefixes this router sends to Gateway (server
	// side: a peer's /64 and /48, `ip -6 route PREFIX via GATEWAY dev NAME`).
	Routes []netip.Prefix
}

// Routed is the IPv6 side of a tunnel that brings IPv6 to this router,
// the same for vxlan and 6in4: a link net, the peer on it, and the
// prefixes the peer routes here, carved to the LANs and steered by source.
type Routed struct {
	// Address is this router's address on the link net, with its length
	// (seed 001: 2001:db8:ae00:0:1::2/80; HE.net: the client's ::2/64);
	// invalid when none.
	Address netip.Prefix
	// Gateway is the peer's address on the link net: the next hop of
	// what leaves by this tunnel.
	Gateway netip.Addr
	// Prefixes are what the peer routes to this router (client side):
	// each is carved into LAN /64s by sla-id (Carved), advertised on the
	// LANs, and traffic from them leaves by this tunnel (Table, Priority).
	Prefixes []netip.Prefix
	Carved   []CarvedPrefix
	// Table and Priority are the policy routing table and rule priority
	// of the tunnel's source steering (0 when it has no Prefixes).
	Table    int
	Priority int
}

// CarvedPrefix is one LAN's /64 of a tunnel prefix.
type CarvedPrefix struct {
	LAN    string       // the LAN interface
	Prefix netip.Prefix // the /64
	From   netip.Prefix // the tunnel prefix it was carved from
}

// DefaultVXLANPort is the IANA port of VXLAN (RFC 7348), the kernel's
// `dstport 4789`.
const DefaultVXLANPort = 4789

// MaxVNI is the largest 24-bit VXLAN network identifier.
const MaxVNI = 1<<24 - 1

// vxlanFieldsGiven and ipip6FieldsGiven list the settings only one mode
// reads: given to the other, they are errors rather than silently ignored.
func (rt *rawTunnel) vxlanFieldsGiven() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"vni", rt.VNI != nil}, {"port", rt.Port != nil}, {"underlay", rt.Underlay != nil},
		{"address", rt.Address != nil}, {"gateway", rt.Gateway != nil}, {"prefixes", rt.Prefixes != nil}} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

func (rt *rawTunnel) ipip6FieldsGiven() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"hop-limit", rt.HopLimit != nil}, {"ipv4-address", rt.IPv4Address != nil},
		{"nat44", rt.NAT44 != nil}, {"provisioning", rt.Provisioning != nil}} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// validateVXLAN checks a `mode: vxlan` tunnel. LANs are validated (the
// prefixes are carved by their sla-id); the table and priority are set
// by validateTunnels, which knows the tunnel's index.
func (rt *rawTunnel) validateVXLAN(path string, c *Config) (*VXLAN, error) {
	v := &VXLAN{Name: rt.Name, Path: path, Port: DefaultVXLANPort}
	if err := checkIfname(path+".name", rt.Name); err != nil {
		return nil, err
	}
	if given := rt.ipip6FieldsGiven(); len(given) > 0 {
		return nil, fmt.Errorf("%s.%s: not a setting of mode vxlan (only of ipip6)", path, given[0])
	}
	if rt.TTL != nil {
		return nil, fmt.Errorf("%s.ttl: not a setting of mode vxlan (only of 6in4)", path)
	}
	if rt.VNI == nil {
		return nil, fmt.Errorf("%s.vni: required for mode vxlan (the VXLAN network identifier, 0-%d; the seed uses the peer's number)", path, MaxVNI)
	}
	if *rt.VNI < 0 || *rt.VNI > MaxVNI {
		return nil, fmt.Errorf("%s.vni: %d is out of range 0-%d (24 bits)", path, *rt.VNI, MaxVNI)
	}
	v.VNI = uint32(*rt.VNI)
	var err error
	if v.Remote, err = underlayAddr(path+".remote", rt.Remote, "the peer's underlay address, e.g. 10.1.1.1"); err != nil {
		return nil, err
	}
	if err := v.underlaySettings(path, rt.Local, rt.Underlay, rt.Port, rt.MTU, c); err != nil {
		return nil, err
	}
	if v.Local.IsValid() {
		if v.Local.Is4() != v.Remote.Is4() {
			return nil, fmt.Errorf("%s.local: %s and remote %s are of different families", path, v.Local, v.Remote)
		}
		if v.Local == v.Remote {
			return nil, fmt.Errorf("%s.local: %s is also the remote address", path, v.Local)
		}
	}
	if err := v.Routed.parseLink(path, rt); err != nil {
		return nil, err
	}
	for j, s := range rt.Routes {
		p, err := ipv6Prefix(fmt.Sprintf("%s.routes[%d]", path, j), s, 128)
		if err != nil {
			return nil, fmt.Errorf("%w (mode vxlan routes IPv6 to the gateway; IPv4 over vxlan is not supported yet)", err)
		}
		v.Routes = append(v.Routes, p)
	}
	if len(v.Routes) > 0 && !v.Gateway.IsValid() {
		return nil, fmt.Errorf("%s.gateway: required with routes (their next hop, the peer's link address)", path)
	}
	if err := v.Routed.parsePrefixes(path, rt, v.Routes, c.LAN); err != nil {
		return nil, err
	}
	return v, nil
}

// parseLink reads the link net's address and gateway.
func (r *Routed) parseLink(path string, rt *rawTunnel) error {
	var err error
	if rt.Address != nil {
		if r.Address, err = linkAddress(path+".address", *rt.Address); err != nil {
			return err
		}
	}
	if rt.Gateway != nil {
		if r.Gateway, err = gatewayAddr(path+".gateway", *rt.Gateway, r.Address); err != nil {
			return err
		}
	}
	return nil
}

// parsePrefixes reads the prefixes the peer routes here, refuses overlaps
// with the link net and the tunnel's IPv6 routes, and carves them to lans.
func (r *Routed) parsePrefixes(path string, rt *rawTunnel, routes []netip.Prefix, lans []LAN) error {
	for j, s := range rt.Prefixes {
		p, err := ipv6Prefix(fmt.Sprintf("%s.prefixes[%d]", path, j), s, 64)
		if err != nil {
			return err
		}
		r.Prefixes = append(r.Prefixes, p)
	}
	if len(r.Prefixes) > 0 && !r.Gateway.IsValid() {
		return fmt.Errorf("%s.gateway: required with prefixes (traffic from them leaves via the peer's link address)", path)
	}
	if err := r.checkOverlaps(path, routes); err != nil {
		return err
	}
	return r.carve(path, lans)
}

// underlaySettings reads what a tunnel entry and a delegation both give:
// local, underlay, port and mtu.
func (v *VXLAN) underlaySettings(path, local string, underlay *string, port, mtu *int, c *Config) error {
	switch local = strings.TrimSpace(local); local {
	case "", "auto":
		// The kernel picks the source of the route to the remote, as
		// `ip link add … type vxlan` without `local`: it follows the
		// underlay's address with nothing to learn.
	default:
		a, err := underlayAddr(path+".local", local, "this router's underlay address, or auto")
		if err != nil {
			return err
		}
		v.Local = a
	}
	switch {
	case underlay != nil:
		if err := checkIfname(path+".underlay", *underlay); err != nil {
			return err
		}
		v.Underlay = *underlay
	case c.WAN != nil:
		v.Underlay = c.WAN.Interface
	default:
		return fmt.Errorf("%s.underlay: required without wan (the interface the outer packets leave by)", path)
	}
	if port != nil {
		if *port < 1 || *port > 65535 {
			return fmt.Errorf("%s.port: %d is out of range 1-65535", path, *port)
		}
		v.Port = uint16(*port)
	}
	if mtu != nil {
		// The inner packets are IPv6: at least its minimum link MTU.
		if *mtu < 1280 || *mtu > MaxTunnelMTU {
			return fmt.Errorf("%s.mtu: %d is out of range 1280-%d (IPv6 needs 1280)", path, *mtu, MaxTunnelMTU)
		}
		v.MTU = *mtu
	}
	return nil
}

// checkOverlaps refuses a tunnel whose own prefixes, routes and link net
// overlap: each would take the other's traffic.
func (v *Routed) checkOverlaps(path string, routes []netip.Prefix) error {
	type named struct {
		p    netip.Prefix
		what string
	}
	var all []named
	if v.Address.IsValid() {
		all = append(all, named{v.Address.Masked(), path + ".address"})
	}
	for j, p := range v.Prefixes {
		all = append(all, named{p, fmt.Sprintf("%s.prefixes[%d]", path, j)})
	}
	for j, p := range routes {
		all = append(all, named{p, fmt.Sprintf("%s.routes[%d]", path, j)})
	}
	for i := range all {
		for _, o := range all[:i] {
			if all[i].p.Overlaps(o.p) {
				return fmt.Errorf("%s: %s overlaps %s (%s)", all[i].what, all[i].p, o.p, o.what)
			}
		}
	}
	return nil
}

// carve gives each LAN the sla-id'th /64 of each prefix, like a delegated
// prefix. A prefix no LAN's sla-id fits would be routed here for nothing.
func (v *Routed) carve(path string, lans []LAN) error {
	for j, p := range v.Prefixes {
		n := 0
		for _, l := range lans {
			sub, err := Subnet64(p, l.SLAID)
			if err != nil {
				continue
			}
			v.Carved = append(v.Carved, CarvedPrefix{LAN: l.Interface, Prefix: sub, From: p})
			n++
		}
		if n == 0 {
			room := 64 - p.Bits()
			if len(lans) == 0 {
				return fmt.Errorf("%s.prefixes[%d]: %s is carved into LAN /64s, and there is no lan", path, j, p)
			}
			return fmt.Errorf("%s.prefixes[%d]: %s holds sla-ids 0-%d and no lan[].sla-id is among them: give a LAN one of them", path, j, p, 1<<min(room, 16)-1)
		}
	}
	return nil
}

// underlayAddr parses a tunnel's outer address: IPv4 or IPv6 unicast,
// private or global (a lab's or a data centre's underlay may be either).
func underlayAddr(path, s, what string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, fmt.Errorf("%s: required (%s)", path, what)
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || a.Zone() != "":
		if dnsName.MatchString(s) {
			return netip.Addr{}, fmt.Errorf("%s: %q is a DNS name; mode vxlan takes an address", path, s)
		}
		return netip.Addr{}, fmt.Errorf("%s: %q is not an IPv4 or IPv6 address", path, s)
	case a.Is4In6():
		return netip.Addr{}, fmt.Errorf("%s: %s is IPv4-mapped; write the IPv4 address", path, a)
	case !a.IsGlobalUnicast() && !a.IsPrivate():
		return netip.Addr{}, fmt.Errorf("%s: %s is not a unicast address (multicast, loopback, link-local and unspecified cannot be endpoints)", path, a)
	}
	return a, nil
}

// linkAddress parses this router's address on a link net: an IPv6
// address with the net's length, not the net's own address.
func linkAddress(path, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%s: %q is not an IPv6 address with prefix length like 2001:db8:ae00:0:1::2/80", path, s)
	}
	if !p.Addr().IsGlobalUnicast() {
		return netip.Prefix{}, fmt.Errorf("%s: %s is not a global unicast address", path, p.Addr())
	}
	if p.Bits() < 64 || p.Bits() > 127 {
		return netip.Prefix{}, fmt.Errorf("%s: /%d is out of range /64-/127 for a link net", path, p.Bits())
	}
	if p.Addr() == p.Masked().Addr() {
		return netip.Prefix{}, fmt.Errorf("%s: %s is the link net's own address (the subnet-router anycast); give this router's, e.g. %s", path, p.Addr(), withHost(p, 2))
	}
	return p, nil
}

// gatewayAddr parses the peer's link address, which must be on the link
// net when one is given.
func gatewayAddr(path, s string, link netip.Prefix) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s: %q is not an IPv6 address", path, s)
	}
	if !a.IsGlobalUnicast() && !a.IsLinkLocalUnicast() {
		return netip.Addr{}, fmt.Errorf("%s: %s is not a unicast address", path, a)
	}
	if link.IsValid() && !a.IsLinkLocalUnicast() {
		if !link.Masked().Contains(a) {
			return netip.Addr{}, fmt.Errorf("%s: %s is not on the link net %s of address", path, a, link.Masked())
		}
		if a == link.Addr() {
			return netip.Addr{}, fmt.Errorf("%s: %s is this router's own address", path, a)
		}
	}
	if !link.IsValid() && !a.IsLinkLocalUnicast() {
		return netip.Addr{}, fmt.Errorf("%s: %s is a global address and no address (link net) is given: give address, or a link-local gateway", path, a)
	}
	return a, nil
}

// ipv6Prefix parses an IPv6 prefix of at most maxBits, host bits zero,
// global unicast.
func ipv6Prefix(path, s string, maxBits int) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%s: %q is not an IPv6 prefix like 2001:db8:ae01::/48", path, s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%s: %s has host bits set; did you mean %s?", path, p, p.Masked())
	}
	if !p.Addr().IsGlobalUnicast() || p.Bits() < 16 {
		return netip.Prefix{}, fmt.Errorf("%s: %s is not a global unicast prefix of /16 or longer", path, p)
	}
	if p.Bits() > maxBits {
		return netip.Prefix{}, fmt.Errorf("%s: /%d is longer than /%d", path, p.Bits(), maxBits)
	}
	return p, nil
}

// checkVXLANSet refuses what two vxlan tunnels cannot share: the kernel
// tells them apart by VNI on a port of an underlay family (a second
// device is refused with "already exists"), and a prefix, route or link
// net can lead to one of them only.
func checkVXLANSet(vs []VXLAN) []error {
	type key struct {
		vni  uint32
		port uint16
		v4   bool
	}
	type owned struct {
		p    netip.Prefix
		what string
	}
	var (
		errs []error
		all  []owned
		vnis = map[key]string{}
	)
	for _, v := range vs {
		k := key{v.VNI, v.Port, v.Remote.Is4()}
		if prev, dup := vnis[k]; dup {
			errs = append(errs, fmt.Errorf("%s.vni: %d on port %d is already %s's: the kernel tells vxlan tunnels apart by VNI", v.Path, v.VNI, v.Port, prev))
		}
		vnis[k] = v.Path
		var mine []owned
		if v.Address.IsValid() {
			mine = append(mine, owned{v.Address.Masked(), v.Path + ".address"})
		}
		for j, p := range v.Prefixes {
			mine = append(mine, owned{p, fmt.Sprintf("%s.prefixes[%d]", v.Path, j)})
		}
		for j, p := range v.Routes {
			mine = append(mine, owned{p, fmt.Sprintf("%s.routes[%d]", v.Path, j)})
		}
		for _, m := range mine {
			for _, o := range all {
				if m.p.Overlaps(o.p) {
					errs = append(errs, fmt.Errorf("%s: %s overlaps %s (%s)", m.what, m.p, o.p, o.what))
				}
			}
		}
		all = append(all, mine...)
	}
	return errs
}

// RoutedTunnel is a tunnel that brings IPv6 prefixes to this router (a
// vxlan or 6in4 one): its netdev's name and its IPv6 side.
type RoutedTunnel struct {
	Name string
	*Routed
}

// RoutedTunnels lists the vxlan tunnels, then the 6in4 ones: what carving,
// LAN RAs, the firewall and source steering treat alike.
func (c *Config) RoutedTunnels() []RoutedTunnel {
	var out []RoutedTunnel
	for i := range c.VXLAN {
		out = append(out, RoutedTunnel{c.VXLAN[i].Name, &c.VXLAN[i].Routed})
	}
	for i := range c.Tunnels {
		if c.Tunnels[i].Mode == "6in4" {
			out = append(out, RoutedTunnel{c.Tunnels[i].Name, &c.Tunnels[i].Routed})
		}
	}
	return out
}
