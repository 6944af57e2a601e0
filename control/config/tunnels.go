package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/xdprouter/xdprouter/control/endpoint"
)

type rawTunnel struct {
	Name         string                 `yaml:"name"`
	Mode         *string                `yaml:"mode"`
	Remote       string                 `yaml:"remote"`
	Local        string                 `yaml:"local"`
	Routes       []string               `yaml:"routes"`
	MTU          *int                   `yaml:"mtu"`
	HopLimit     *int                   `yaml:"hop-limit"`
	IPv4Address  *string                `yaml:"ipv4-address"`
	NAT44        *bool                  `yaml:"nat44"`
	Provisioning *endpoint.Provisioning `yaml:"provisioning"`
	// mode 6in4 (sixinfour.go): the outer IPv4 header's TTL
	TTL *int `yaml:"ttl"`
	// mode vxlan (vxlan.go)
	VNI      *int     `yaml:"vni"`
	Port     *int     `yaml:"port"`
	Underlay *string  `yaml:"underlay"`
	Address  *string  `yaml:"address"`
	Gateway  *string  `yaml:"gateway"`
	Prefixes []string `yaml:"prefixes"`
}

// Tunnel defaults: MTU 1460 is what IPoE (FLET'S) ipip6 services ask for
// (1500 minus the 40-octet IPv6 header); 64 is the usual hop limit.
const (
	DefaultTunnelMTU      = 1460
	DefaultTunnelHopLimit = 64
	// MinTunnelMTU is IPv4's minimum reassembly size every host accepts
	// (RFC 791); MaxTunnelMTU leaves room for the outer header in a
	// 9000-octet jumbo frame.
	MinTunnelMTU = 576
	MaxTunnelMTU = 9000 - 40
)

// Tunnel is a validated ipip6 tunnel (IPv4 routed into it is carried to
// Remote inside IPv6 from Local) or 6in4 tunnel (IPv6 inside IPv4:
// Remote and Local are IPv4, Routes IPv6, HopLimit the outer TTL, and
// Routed its IPv6 side).
type Tunnel struct {
	Name string // also the name of the tunnel's netdev
	Mode string // "ipip6" or "6in4"
	// Remote is the far end. RemoteName is set instead when the config
	// gives a DNS name, which only the daemon resolves (and re-resolves).
	Remote     netip.Addr
	RemoteName string
	// Local is the outer source. LocalAuto means "the WAN prefix plus
	// wan.token", which follows renumbering; only the daemon learns it.
	Local     netip.Addr
	LocalAuto bool
	Routes    []netip.Prefix
	MTU       int
	HopLimit  int
	// IPv4Address is the fixed IPv4 address of the service (invalid for
	// DS-Lite, where the AFTR's NAT owns the public address).
	IPv4Address netip.Addr
	NAT44       bool
	// Provisioning is the HTTP request some fixed-IPv4 services need
	// before they carry traffic (an ISP's "update URL", requested from the
	// tunnel's local address after every change of it); nil when none.
	Provisioning *endpoint.Provisioning
	// Routed is a 6in4 tunnel's link net, gateway and routed prefixes
	// (zero for ipip6).
	Routed
}

var dnsName = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}\.?$`)

func (r *rawConfig) validateTunnels(c *Config) []error {
	var errs []error
	names := map[string]string{}
	pairs := map[[2]string]string{}
	routes := map[netip.Prefix]string{}
	for _, ifname := range c.Interfaces() {
		names[ifname] = "an interface of wan/lan"
	}
	steer := newSteering(c.PolicyRouting)
	for i, rt := range r.Tunnels {
		path := fmt.Sprintf("tunnels[%d]", i)
		switch mode := tunnelMode(rt.Mode); mode {
		case "vxlan":
			v, err := rt.validateVXLAN(path, c)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if prev, dup := names[v.Name]; dup {
				errs = append(errs, fmt.Errorf("%s.name: %q is already %s; the tunnel's netdev takes this name", path, v.Name, prev))
			}
			names[v.Name] = "used by " + path + ".name"
			if err := steer.assign(path, i, &v.Routed); err != nil {
				errs = append(errs, err)
				continue
			}
			c.VXLAN = append(c.VXLAN, *v)
			continue
		case "6in4", "ipip6":
		default:
			errs = append(errs, fmt.Errorf("%s.mode: %q is not supported; the modes are ipip6 (IPv4 in IPv6), 6in4 (IPv6 in IPv4) and vxlan (the kernel's vxlan device)", path, mode))
			continue
		}
		var (
			t   *Tunnel
			err error
		)
		if tunnelMode(rt.Mode) == "6in4" {
			if t, err = rt.validate6in4(path, c); err == nil {
				err = steer.assign(path, i, &t.Routed)
			}
		} else {
			t, err = rt.validate(path, c)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := names[t.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is already %s; the tunnel's netdev takes this name", path, t.Name, prev))
		}
		names[t.Name] = "used by " + path + ".name"
		if t.Remote.IsValid() && t.Local.IsValid() {
			k := [2]string{t.Remote.String(), t.Local.String()}
			if prev, dup := pairs[k]; dup {
				errs = append(errs, fmt.Errorf("%s: remote %s and local %s are already %s's: decapsulation could not tell them apart", path, t.Remote, t.Local, prev))
			}
			pairs[k] = path
		}
		for j, p := range t.Routes {
			if prev, dup := routes[p]; dup {
				errs = append(errs, fmt.Errorf("%s.routes[%d]: %s is already routed into %s; give each prefix to one tunnel (longer prefixes may overlap shorter ones)", path, j, p, prev))
			}
			routes[p] = path
		}
		c.Tunnels = append(c.Tunnels, *t)
	}
	return errs
}

// tunnelMode is the mode a tunnel entry asks for; ipip6 when absent.
func tunnelMode(m *string) string {
	if m == nil {
		return "ipip6"
	}
	return strings.TrimSpace(*m)
}

func (r *rawTunnel) validate(path string, c *Config) (*Tunnel, error) {
	t := &Tunnel{Name: r.Name, Mode: "ipip6", MTU: DefaultTunnelMTU, HopLimit: DefaultTunnelHopLimit}
	if err := checkIfname(path+".name", r.Name); err != nil {
		return nil, err
	}
	if given := r.vxlanFieldsGiven(); len(given) > 0 {
		return nil, fmt.Errorf("%s.%s: not a setting of mode ipip6 (only of vxlan)", path, given[0])
	}
	if r.TTL != nil {
		return nil, fmt.Errorf("%s.ttl: not a setting of mode ipip6 (its outer header is IPv6: hop-limit)", path)
	}
	if c.WAN == nil {
		return nil, fmt.Errorf("%s: a tunnel leaves by the WAN: give wan.interface", path)
	}

	switch remote := strings.TrimSpace(r.Remote); {
	case remote == "":
		return nil, fmt.Errorf("%s.remote: required (the AFTR's or peer's IPv6 address, or a DNS name)", path)
	case dnsName.MatchString(remote):
		t.RemoteName = remote
	default:
		a, err := tunnelAddr(remote)
		if err != nil {
			return nil, fmt.Errorf("%s.remote: %q %v", path, remote, err)
		}
		t.Remote = a
	}

	switch local := strings.TrimSpace(r.Local); local {
	case "":
		return nil, fmt.Errorf("%s.local: required (an IPv6 address of this router, or auto)", path)
	case "auto":
		if !c.WAN.Token.IsValid() {
			return nil, fmt.Errorf("%s.local: auto is the WAN prefix plus wan.token, and wan.token is not set", path)
		}
		t.LocalAuto = true
	default:
		a, err := tunnelAddr(local)
		if err != nil {
			return nil, fmt.Errorf("%s.local: %q %v", path, local, err)
		}
		t.Local = a
	}
	if t.Local.IsValid() && t.Local == t.Remote {
		return nil, fmt.Errorf("%s.local: %s is also the remote address", path, t.Local)
	}

	for j, s := range r.Routes {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("%s.routes[%d]: %q is not an IPv4 prefix like 0.0.0.0/0 or 10.20.0.0/16", path, j, s)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("%s.routes[%d]: %s has host bits set; did you mean %s?", path, j, p, p.Masked())
		}
		for _, l := range c.LAN {
			if l.IPv4.IsValid() && p.Bits() >= l.IPv4.Bits() && l.IPv4.Masked().Contains(p.Addr()) {
				return nil, fmt.Errorf("%s.routes[%d]: %s lies inside the LAN subnet %s of %s", path, j, p, l.IPv4.Masked(), l.Interface)
			}
		}
		for _, q := range t.Routes {
			if q == p {
				return nil, fmt.Errorf("%s.routes[%d]: %s is listed twice", path, j, p)
			}
		}
		t.Routes = append(t.Routes, p)
	}

	if r.MTU != nil {
		if *r.MTU < MinTunnelMTU || *r.MTU > MaxTunnelMTU {
			return nil, fmt.Errorf("%s.mtu: %d is out of range %d-%d", path, *r.MTU, MinTunnelMTU, MaxTunnelMTU)
		}
		t.MTU = *r.MTU
	}
	if r.HopLimit != nil {
		if *r.HopLimit < 1 || *r.HopLimit > 255 {
			return nil, fmt.Errorf("%s.hop-limit: %d is out of range 1-255", path, *r.HopLimit)
		}
		t.HopLimit = *r.HopLimit
	}
	if r.IPv4Address != nil {
		a, err := netip.ParseAddr(strings.TrimSpace(*r.IPv4Address))
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%s.ipv4-address: %q is not an IPv4 address (the fixed address, without prefix length)", path, *r.IPv4Address)
		}
		if !a.IsGlobalUnicast() && !a.IsPrivate() {
			return nil, fmt.Errorf("%s.ipv4-address: %s is not a unicast address", path, a)
		}
		t.IPv4Address = a
	}
	if r.NAT44 != nil && *r.NAT44 {
		if !t.IPv4Address.IsValid() {
			return nil, fmt.Errorf("%s.nat44: needs ipv4-address, the address LAN IPv4 is masqueraded to (DS-Lite needs no NAT44: the AFTR does it)", path)
		}
		t.NAT44 = true
	}
	if p := r.Provisioning; p != nil {
		if err := p.Validate(path + ".provisioning"); err != nil {
			return nil, err
		}
		t.Provisioning = p
	}
	return t, nil
}

// tunnelAddr accepts a global IPv6 unicast address: the outer header is
// routed across the ISP's network, so link-local, multicast, loopback and
// IPv4-mapped addresses cannot be endpoints.
func tunnelAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("is not an IPv6 address")
	case a.Is4() || a.Is4In6():
		return netip.Addr{}, fmt.Errorf("is an IPv4 address; ipip6 endpoints are IPv6")
	case !a.IsGlobalUnicast():
		return netip.Addr{}, fmt.Errorf("is not a global unicast IPv6 address")
	}
	return a, nil
}
