package config

import (
	"fmt"
	"net/netip"
)

// NPT is one NPTv6 mapping (RFC 6296) on the outside interface.
type NPT struct {
	Interface string
	Inside    netip.Prefix
	// Outside is invalid when OutsideAuto: the daemon fills in the WAN
	// prefix it learns, and changes it when the ISP renumbers.
	Outside     netip.Prefix
	OutsideAuto bool
	// Exclude is not read from the file: the daemon sets it to its WAN
	// address when Outside contains it, so traffic to the router itself
	// is not translated. (`apply` finds the router's address on the
	// interface when it programs the rule: control.excludeOwn.)
	Exclude netip.Addr
	Mode    string // "rfc6296" (default) or "preserve-host"
}

// NDPProxy answers Neighbor Solicitations on Interface for Prefixes.
type NDPProxy struct {
	Interface string
	Prefixes  []netip.Prefix
	// Auto: also every NPT outside prefix on Interface, resolved by apply
	// (or the daemon). Deriving the proxied prefix from NPT is what makes
	// the seed-000 mistake (proxying the inside prefix) impossible.
	Auto bool
	Mode string // "prefix" (default) or "lan-neighbor"
	// Foreign is not read from the file: the daemon sets it to the
	// addresses other nodes on the link are known to hold (the WAN
	// routers' global addresses from their RAs); the proxy never answers
	// for them.
	Foreign []netip.Addr
}

type rawNPT struct {
	Interface string  `yaml:"interface"`
	Inside    *string `yaml:"inside"`
	Outside   *string `yaml:"outside"`
	Mode      *string `yaml:"mode"`
}

type rawNDPProxy struct {
	Interface string   `yaml:"interface"`
	Prefixes  []string `yaml:"prefixes"`
	Mode      *string  `yaml:"mode"`
}

// nptPrefix parses an NPT prefix: IPv6, host bits zero, /1 to /64 (the
// interface identifier is never part of the prefix, RFC 6296 section 3).
func nptPrefix(path string, s *string) (netip.Prefix, error) {
	if s == nil {
		return netip.Prefix{}, fmt.Errorf("%s: required", path)
	}
	p, err := netip.ParsePrefix(*s)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return p, fmt.Errorf("%s: %q is not an IPv6 prefix like 2001:db8:1::/48", path, *s)
	}
	if p.Masked() != p {
		return p, fmt.Errorf("%s: %s has bits set after /%d; the prefix is %s", path, p, p.Bits(), p.Masked())
	}
	if p.Bits() < 1 || p.Bits() > 64 {
		return p, fmt.Errorf("%s: /%d is out of range /1-/64 (NPT never rewrites the interface identifier)", path, p.Bits())
	}
	return p, nil
}

func (r *rawConfig) validateNPT(c *Config) []error {
	var errs []error
	for i, rn := range r.NPT {
		path := fmt.Sprintf("npt[%d]", i)
		n, err := rn.validate(path, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for j, prev := range c.NPT {
			if prev.Inside.Overlaps(n.Inside) {
				errs = append(errs, fmt.Errorf("%s.inside: %s overlaps npt[%d].inside %s", path, n.Inside, j, prev.Inside))
			}
			if !n.OutsideAuto && !prev.OutsideAuto && prev.Outside.Overlaps(n.Outside) {
				errs = append(errs, fmt.Errorf("%s.outside: %s overlaps npt[%d].outside %s", path, n.Outside, j, prev.Outside))
			}
			if n.OutsideAuto && prev.OutsideAuto && n.Interface == prev.Interface {
				errs = append(errs, fmt.Errorf("%s.outside: auto is already used by npt[%d] on %s (one WAN prefix maps one inside prefix)", path, j, n.Interface))
			}
		}
		c.NPT = append(c.NPT, *n)
	}
	return errs
}

func (rn *rawNPT) validate(path string, c *Config) (*NPT, error) {
	n := &NPT{Interface: rn.Interface, Mode: "rfc6296"}
	if err := checkIfname(path+".interface", rn.Interface); err != nil {
		return nil, err
	}
	onWAN := c.WAN != nil && c.WAN.Interface == rn.Interface
	var tun *RoutedTunnel
	if !onWAN {
		var err error
		if tun, err = nptTunnel(path, rn.Interface, c); err != nil {
			return nil, err
		}
	}
	var err error
	if n.Inside, err = nptPrefix(path+".inside", rn.Inside); err != nil {
		return nil, err
	}
	if rn.Outside != nil && *rn.Outside == "auto" {
		if tun != nil {
			return nil, fmt.Errorf("%s.outside: auto is the WAN prefix the daemon learns, and %s is a tunnel: "+
				"give a prefix of its prefixes (%s)", path, rn.Interface, joinPrefixes(tun.Prefixes))
		}
		n.OutsideAuto = true
	} else {
		if n.Outside, err = nptPrefix(path+".outside", rn.Outside); err != nil {
			return nil, err
		}
		if n.Outside.Bits() != n.Inside.Bits() {
			return nil, fmt.Errorf("%s.outside: %s is a /%d but inside %s is a /%d; NPT maps prefixes of one length",
				path, n.Outside, n.Outside.Bits(), n.Inside, n.Inside.Bits())
		}
		if n.Outside.Overlaps(n.Inside) {
			return nil, fmt.Errorf("%s.outside: %s overlaps inside %s", path, n.Outside, n.Inside)
		}
		if tun != nil {
			if err := tun.checkNPTOutside(path+".outside", n.Outside); err != nil {
				return nil, err
			}
		}
	}
	if rn.Mode != nil {
		switch *rn.Mode {
		case "rfc6296", "preserve-host":
			n.Mode = *rn.Mode
		default:
			return nil, fmt.Errorf("%s.mode: %q is not one of rfc6296, preserve-host", path, *rn.Mode)
		}
	}
	return n, nil
}

func (r *rawConfig) validateNDPProxy(c *Config) []error {
	var errs []error
	attached := map[string]bool{}
	for _, ifname := range c.Interfaces() {
		attached[ifname] = true
	}
	seen := map[string]string{}
	for i, rp := range r.NDPProxy {
		path := fmt.Sprintf("ndp-proxy[%d]", i)
		p := NDPProxy{Interface: rp.Interface, Mode: "prefix"}
		if err := checkIfname(path+".interface", rp.Interface); err != nil {
			errs = append(errs, err)
			continue
		}
		if !attached[rp.Interface] {
			errs = append(errs, fmt.Errorf("%s.interface: %q is neither the wan nor a lan interface; the proxy runs where xdprouter is attached", path, rp.Interface))
			continue
		}
		if prev, dup := seen[rp.Interface]; dup {
			errs = append(errs, fmt.Errorf("%s.interface: %q already has %s; list all its prefixes there", path, rp.Interface, prev))
			continue
		}
		seen[rp.Interface] = path
		if len(rp.Prefixes) == 0 {
			errs = append(errs, fmt.Errorf("%s.prefixes: required (a list of IPv6 prefixes, or [auto])", path))
			continue
		}
		if rp.Mode != nil {
			switch *rp.Mode {
			case "prefix", "lan-neighbor":
				p.Mode = *rp.Mode
			default:
				errs = append(errs, fmt.Errorf("%s.mode: %q is not one of prefix, lan-neighbor", path, *rp.Mode))
			}
		}
		for j, s := range rp.Prefixes {
			if err := p.addPrefix(fmt.Sprintf("%s.prefixes[%d]", path, j), s, c); err != nil {
				errs = append(errs, err)
			}
		}
		c.NDPProxy = append(c.NDPProxy, p)
	}
	return errs
}

func (p *NDPProxy) addPrefix(path, s string, c *Config) error {
	if s == "auto" {
		for _, n := range c.NPT {
			if n.Interface == p.Interface {
				p.Auto = true
				return nil
			}
		}
		// A line that hands out one shared /64 and no PD: the LAN uses the
		// WAN's /64 and the proxy answers for its hosts.
		if p.Mode == "lan-neighbor" && c.WAN != nil && c.WAN.Interface == p.Interface {
			p.Auto = true
			return nil
		}
		return fmt.Errorf("%s: auto means the outside prefixes of the npt entries on %s, and there is none "+
			"(or, with mode lan-neighbor on the WAN interface, the WAN /64 shared with the LAN)", path, p.Interface)
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil || !pfx.Addr().Is6() || pfx.Addr().Is4In6() || pfx.Addr().Zone() != "" {
		return fmt.Errorf("%s: %q is neither auto nor an IPv6 prefix like 2001:db8:1::/64", path, s)
	}
	if pfx.Masked() != pfx {
		return fmt.Errorf("%s: %s has bits set after /%d; the prefix is %s", path, pfx, pfx.Bits(), pfx.Masked())
	}
	// Seed 000: VyOS proxied the inside prefix after an upgrade and the
	// upstream router's solicitations for the outside addresses went
	// unanswered.
	for i, n := range c.NPT {
		if n.Inside.Overlaps(pfx) {
			out := "auto"
			if !n.OutsideAuto {
				out = n.Outside.String()
			}
			return fmt.Errorf("%s: %s overlaps npt[%d].inside %s, the prefix before translation; upstream only ever "+
				"solicits outside addresses (npt[%d].outside %s): write `auto` instead", path, pfx, i, n.Inside, i, out)
		}
	}
	p.Prefixes = append(p.Prefixes, pfx)
	return nil
}

// nptTunnel finds the tunnel an npt entry off the WAN translates on: a
// vxlan or 6in4 tunnel with prefixes (its netdev's name), whose peer routes
// the outside prefix here and to which the inside prefix is steered.
func nptTunnel(path, ifname string, c *Config) (*RoutedTunnel, error) {
	for _, t := range c.RoutedTunnels() {
		if t.Name == ifname {
			if len(t.Prefixes) == 0 {
				return nil, fmt.Errorf("%s.interface: tunnel %q has no prefixes; NPT on a tunnel maps the inside "+
					"prefix onto one the peer routes here (its prefixes)", path, ifname)
			}
			return &t, nil
		}
	}
	for _, t := range c.Tunnels {
		if t.Name == ifname {
			return nil, fmt.Errorf("%s.interface: %q is an %s tunnel, which carries IPv4; NPT translates IPv6 on the "+
				"wan or on a vxlan or 6in4 tunnel", path, ifname, t.Mode)
		}
	}
	return nil, fmt.Errorf("%s.interface: %q is neither the wan interface nor a vxlan or 6in4 tunnel; NPT translates "+
		"on an outside interface", path, ifname)
}

// checkNPTOutside says whether out can be an NPT outside prefix on the
// tunnel: within one of its prefixes (what the peer routes here, so the
// replies come back by it) and carved to no LAN (DNPT would take the LAN's
// traffic).
func (t *RoutedTunnel) checkNPTOutside(path string, out netip.Prefix) error {
	in := false
	for _, p := range t.Prefixes {
		if p.Bits() <= out.Bits() && p.Contains(out.Addr()) {
			in = true
		}
	}
	if !in {
		return fmt.Errorf("%s: %s is not within the prefixes of tunnel %s (%s); the peer routes only those here",
			path, out, t.Name, joinPrefixes(t.Prefixes))
	}
	for _, cp := range t.Carved {
		if cp.Prefix.Overlaps(out) {
			return fmt.Errorf("%s: %s overlaps %s, carved from %s to lan %s; NPT's outside must be a part no LAN uses "+
				"(give that lan another sla-id, or the tunnel another prefix)", path, out, cp.Prefix, cp.From, cp.LAN)
		}
	}
	return nil
}
