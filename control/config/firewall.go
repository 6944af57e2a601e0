package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Firewall is the CPE firewall xdprouter keeps in nftables (RFC 7084,
// RFC 6092). Mode "default" (also when the section is absent) installs
// it; "off" leaves filtering to the user's own ruleset, while the NAT
// table (NAT44 masquerade and the port forwards) is still installed.
type Firewall struct {
	Mode    string // "default" or "off"
	Allow   []Pinhole
	Forward []PortForward
	// LearnedLAN is not read from the file: each reconcile pass sets it
	// to the IPv6 prefixes each LAN has then (delegated or shared /64s,
	// current and deprecated), by interface, as NPT.Exclude is set.
	LearnedLAN map[string][]netip.Prefix
}

// On says whether xdprouter installs its filter rules.
func (f Firewall) On() bool { return f.Mode != FirewallOff }

// Firewall modes.
const (
	FirewallDefault = "default"
	FirewallOff     = "off"
)

// Pinhole lets new connections from the WAN side reach a LAN host.
type Pinhole struct {
	// To is the destination: an address (as a /32 or /128) or prefix.
	// Invalid when ToIID is set.
	To netip.Prefix
	// ToIID is an interface identifier ("::10"): that host in each LAN's
	// IPv6 /64s, which follow the delegated prefix. Invalid when To is set.
	ToIID   netip.Addr
	Proto   string      // "tcp", "udp", "icmpv6", "icmp" (IPv4) or "any"
	Ports   []PortRange // empty: every port (tcp/udp only)
	From    netip.Prefix
	Comment string
}

// IPv4 says whether the pinhole is for IPv4 (a LAN ipv4 subnet).
func (p Pinhole) IPv4() bool { return p.To.IsValid() && p.To.Addr().Is4() }

// PortRange is First-Last inclusive; First == Last for one port.
type PortRange struct{ First, Last uint16 }

func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// PortForward sends connections to Port of a tunnel's fixed IPv4 address
// to a LAN host (DNAT), as a kernel router with that address would.
type PortForward struct {
	Tunnel  string
	Addr    netip.Addr // the tunnel's ipv4-address
	Proto   string     // "tcp" or "udp"
	Port    uint16
	To      netip.Addr
	ToPort  uint16 // Port when not given
	Comment string
}

type rawFirewall struct {
	Mode    *string          `yaml:"mode"`
	Allow   []rawPinhole     `yaml:"allow"`
	Forward []rawPortForward `yaml:"forward"`
}

type rawPinhole struct {
	To      *string  `yaml:"to"`
	Proto   *string  `yaml:"proto"`
	Port    *string  `yaml:"port"`
	Ports   []string `yaml:"ports"`
	From    *string  `yaml:"from"`
	Comment string   `yaml:"comment"`
}

type rawPortForward struct {
	Tunnel  string  `yaml:"tunnel"`
	Proto   *string `yaml:"proto"`
	Port    *int    `yaml:"port"`
	To      *string `yaml:"to"`
	ToPort  *int    `yaml:"to-port"`
	Comment string  `yaml:"comment"`
}

func (r *rawConfig) validateFirewall(c *Config) []error {
	c.Firewall = Firewall{Mode: FirewallDefault}
	f := r.Firewall
	if f == nil {
		return nil
	}
	var errs []error
	if f.Mode != nil {
		switch *f.Mode {
		case FirewallDefault, FirewallOff:
			c.Firewall.Mode = *f.Mode
		default:
			errs = append(errs, fmt.Errorf("firewall.mode: %q is not one of default, off", *f.Mode))
		}
	}
	if c.Firewall.Mode == FirewallOff && len(f.Allow) > 0 {
		errs = append(errs, fmt.Errorf("firewall.allow: pinholes are rules of the default firewall, and mode is off: "+
			"open them in your own ruleset (port forwards stay: they are NAT)"))
	}
	for i, rp := range f.Allow {
		p, err := rp.validate(fmt.Sprintf("firewall.allow[%d]", i), c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.Firewall.Allow = append(c.Firewall.Allow, *p)
	}
	seen := map[string]string{}
	for i, rf := range f.Forward {
		path := fmt.Sprintf("firewall.forward[%d]", i)
		pf, err := rf.validate(path, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		key := fmt.Sprintf("%s %s %d", pf.Tunnel, pf.Proto, pf.Port)
		if prev, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("%s.port: %s %d on tunnel %s is already forwarded by %s", path, pf.Proto, pf.Port, pf.Tunnel, prev))
			continue
		}
		seen[key] = path
		c.Firewall.Forward = append(c.Firewall.Forward, *pf)
	}
	return errs
}

func (rp *rawPinhole) validate(path string, c *Config) (*Pinhole, error) {
	p := &Pinhole{Proto: "any", Comment: rp.Comment}
	if rp.To == nil || strings.TrimSpace(*rp.To) == "" {
		return nil, fmt.Errorf("%s.to: required (a LAN host's address, a LAN prefix, or an interface identifier like \"::10\")", path)
	}
	if err := p.parseTo(path+".to", strings.TrimSpace(*rp.To), c); err != nil {
		return nil, err
	}
	if rp.Proto != nil {
		p.Proto = *rp.Proto
	}
	switch p.Proto {
	case "tcp", "udp", "any":
	case "icmpv6":
		if p.IPv4() {
			return nil, fmt.Errorf("%s.proto: icmpv6 to the IPv4 address %s; IPv4 uses icmp", path, p.To)
		}
	case "icmp":
		if !p.IPv4() {
			return nil, fmt.Errorf("%s.proto: icmp is IPv4's; for an IPv6 host write icmpv6", path)
		}
	default:
		return nil, fmt.Errorf("%s.proto: %q is not one of tcp, udp, icmpv6, icmp, any", path, p.Proto)
	}
	var ports []string
	switch {
	case rp.Port != nil && rp.Ports != nil:
		return nil, fmt.Errorf("%s.ports: give port or ports, not both", path)
	case rp.Port != nil:
		ports = []string{*rp.Port}
	default:
		ports = rp.Ports
	}
	for j, s := range ports {
		sub := fmt.Sprintf("%s.ports[%d]", path, j)
		if rp.Port != nil {
			sub = path + ".port"
		}
		if p.Proto != "tcp" && p.Proto != "udp" {
			return nil, fmt.Errorf("%s: a port needs proto tcp or udp (proto is %s)", sub, p.Proto)
		}
		r, err := parsePortRange(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sub, err)
		}
		p.Ports = append(p.Ports, r)
	}
	if rp.From != nil {
		f, err := parsePrefixOrAddr(strings.TrimSpace(*rp.From))
		if err != nil {
			return nil, fmt.Errorf("%s.from: %q is not an address or prefix like 2001:db8::/32", path, *rp.From)
		}
		if f.Addr().Is4() != p.IPv4() {
			return nil, fmt.Errorf("%s.from: %s and to are of different address families", path, f)
		}
		p.From = f
	}
	return p, nil
}

// parseTo takes an interface identifier, an IPv4 address or prefix in a
// LAN ipv4 subnet, or an IPv6 address or prefix, checked against the LAN
// prefixes the config fixes (npt inside prefixes) when those are all the
// LAN prefixes there can be; delegated ones are checked by every pass.
func (p *Pinhole) parseTo(path, s string, c *Config) error {
	if a, err := netip.ParseAddr(s); err == nil && a.Is6() && !a.Is4In6() {
		if b := a.As16(); allZero(b[:8]) && !a.IsUnspecified() && !a.IsLoopback() {
			p.ToIID = a
			if len(c.LAN) == 0 {
				return fmt.Errorf("%s: %s is an interface identifier in the LAN /64s, and there is no lan", path, a)
			}
			return nil
		}
	}
	to, err := parsePrefixOrAddr(s)
	if err != nil {
		return fmt.Errorf("%s: %q is not an address, prefix or interface identifier (\"::10\")", path, s)
	}
	p.To = to
	if to.Addr().Is4() {
		for _, l := range c.LAN {
			if l.IPv4.IsValid() && to.Bits() >= l.IPv4.Bits() && l.IPv4.Masked().Contains(to.Addr()) {
				return nil
			}
		}
		return fmt.Errorf("%s: %s is not in any lan ipv4 subnet", path, to)
	}
	if a := to.Addr(); a.Is4In6() || !a.IsGlobalUnicast() || a.IsLinkLocalUnicast() {
		return fmt.Errorf("%s: %s is not a global unicast or ULA address", path, to)
	}
	if inside := c.StaticLANPrefixes(); !c.DynamicLANPrefixes() && len(inside) > 0 {
		for _, q := range inside {
			if to.Bits() >= q.Bits() && q.Contains(to.Addr()) {
				return nil
			}
		}
		return fmt.Errorf("%s: %s is not in any LAN prefix (%s)", path, to, joinPrefixes(inside))
	}
	return nil
}

// StaticLANPrefixes are the LAN IPv6 prefixes the config itself names:
// the npt inside prefixes.
func (c *Config) StaticLANPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range c.NPT {
		out = append(out, n.Inside)
	}
	return out
}

// DynamicLANPrefixes says whether LAN prefixes are learned: delegated by
// DHCPv6-PD, or the WAN /64 shared with the LAN.
func (c *Config) DynamicLANPrefixes() bool {
	if c.WAN == nil {
		return false
	}
	if c.WAN.DHCPv6PD != nil {
		return true
	}
	for _, n := range c.NDPProxy {
		if n.Interface == c.WAN.Interface && n.Mode == "lan-neighbor" && n.Auto {
			return true
		}
	}
	return false
}

func (rf *rawPortForward) validate(path string, c *Config) (*PortForward, error) {
	pf := &PortForward{Tunnel: rf.Tunnel, Comment: rf.Comment}
	if rf.Tunnel == "" {
		return nil, fmt.Errorf("%s.tunnel: required (the tunnel whose ipv4-address is forwarded)", path)
	}
	var tun *Tunnel
	for i := range c.Tunnels {
		if c.Tunnels[i].Name == rf.Tunnel {
			tun = &c.Tunnels[i]
		}
	}
	switch {
	case tun == nil:
		return nil, fmt.Errorf("%s.tunnel: %q is not a configured tunnel", path, rf.Tunnel)
	case !tun.IPv4Address.IsValid():
		return nil, fmt.Errorf("%s.tunnel: %q has no ipv4-address; a port forward needs the tunnel's fixed IPv4 address", path, rf.Tunnel)
	}
	pf.Addr = tun.IPv4Address
	if rf.Proto == nil {
		return nil, fmt.Errorf("%s.proto: required (tcp or udp)", path)
	}
	if *rf.Proto != "tcp" && *rf.Proto != "udp" {
		return nil, fmt.Errorf("%s.proto: %q is not one of tcp, udp", path, *rf.Proto)
	}
	pf.Proto = *rf.Proto
	if rf.Port == nil {
		return nil, fmt.Errorf("%s.port: required (1-65535)", path)
	}
	port, err := portNumber(*rf.Port)
	if err != nil {
		return nil, fmt.Errorf("%s.port: %w", path, err)
	}
	pf.Port, pf.ToPort = port, port
	if rf.ToPort != nil {
		if pf.ToPort, err = portNumber(*rf.ToPort); err != nil {
			return nil, fmt.Errorf("%s.to-port: %w", path, err)
		}
	}
	if rf.To == nil {
		return nil, fmt.Errorf("%s.to: required (a LAN host's IPv4 address)", path)
	}
	to, err := netip.ParseAddr(strings.TrimSpace(*rf.To))
	if err != nil || !to.Is4() {
		return nil, fmt.Errorf("%s.to: %q is not an IPv4 address", path, *rf.To)
	}
	for _, l := range c.LAN {
		if !l.IPv4.IsValid() || !l.IPv4.Masked().Contains(to) {
			continue
		}
		if to == l.IPv4.Addr() {
			return nil, fmt.Errorf("%s.to: %s is the router's own address on %s", path, to, l.Interface)
		}
		pf.To = to
		return pf, nil
	}
	return nil, fmt.Errorf("%s.to: %s is not in any lan ipv4 subnet", path, to)
}

func portNumber(n int) (uint16, error) {
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("%d is out of range 1-65535", n)
	}
	return uint16(n), nil
}

func parsePortRange(s string) (PortRange, error) {
	first, last, isRange := strings.Cut(strings.TrimSpace(s), "-")
	a, err := strconv.Atoi(first)
	if err != nil {
		return PortRange{}, fmt.Errorf("%q is not a port (1-65535) or range like 8000-8010", s)
	}
	pa, err := portNumber(a)
	if err != nil {
		return PortRange{}, err
	}
	r := PortRange{pa, pa}
	if isRange {
		b, err := strconv.Atoi(last)
		if err != nil {
			return PortRange{}, fmt.Errorf("%q is not a port (1-65535) or range like 8000-8010", s)
		}
		if r.Last, err = portNumber(b); err != nil {
			return PortRange{}, err
		}
		if r.Last < r.First {
			return PortRange{}, fmt.Errorf("%q ends before it starts", s)
		}
	}
	return r, nil
}

// parsePrefixOrAddr reads "2001:db8::1" as a /128 and "192.0.2.0/24" as
// is; a prefix with host bits set is refused, so a typo cannot widen it.
func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("zone")
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, err
	}
	if p != p.Masked() {
		return p, fmt.Errorf("host bits set")
	}
	return p, nil
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
