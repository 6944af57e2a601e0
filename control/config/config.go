// Package config reads xdprouter's YAML configuration: strict decoding into
// raw structs, then validation into typed ones. Every error names the field
// path and the reason, e.g. `lan[0].sla-id: 300 is out of range 0-255`.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Config is a validated configuration.
type Config struct {
	WAN      *WAN
	LAN      []LAN
	Tunnels  []Tunnel
	NPT      []NPT
	NDPProxy []NDPProxy
	Firewall Firewall
	// VXLAN are the kernel vxlan tunnels: tunnels[] of mode vxlan, then
	// the delegations' peers.
	VXLAN         []VXLAN
	PolicyRouting PolicyRouting
	Delegations   []Delegation
}

// WAN is the upstream interface.
type WAN struct {
	Interface string
	// Token is the interface identifier of the WAN address (as `ip token`):
	// only its low 64 bits may be set. Invalid when absent.
	Token    netip.Addr
	DHCPv6PD *DHCPv6PD // nil: no prefix delegation requested
	XDPMode  string
}

// DHCPv6PD asks the ISP for a delegated prefix.
type DHCPv6PD struct {
	PrefixLengthHint int // 0: no hint
}

// LAN is one downstream interface.
type LAN struct {
	Interface string
	SLAID     int          // which /64 of the delegated prefix (wide-dhcpv6 sla-id)
	Token     netip.Addr   // interface identifier of the router's LAN address; default ::1
	IPv4      netip.Prefix // router address and subnet; invalid when absent
	XDPMode   string
}

// Interfaces lists every interface the config attaches, WAN first.
func (c *Config) Interfaces() []string {
	var out []string
	if c.WAN != nil {
		out = append(out, c.WAN.Interface)
	}
	for _, l := range c.LAN {
		out = append(out, l.Interface)
	}
	return out
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a config.
func Parse(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 || len(root.Content) == 0 {
		return nil, errors.New("empty configuration: give at least `wan:` or `lan:`")
	}
	var raw rawConfig
	if err := checkKeys(&root, reflect.TypeOf(raw), ""); err != nil {
		return nil, err
	}
	if err := root.Decode(&raw); err != nil {
		return nil, fmt.Errorf("wrong value type: %w", err)
	}
	return raw.validate()
}

func (r *rawConfig) validate() (*Config, error) {
	c := &Config{}
	var errs []error
	if r.WAN != nil {
		w, err := r.WAN.validate("wan")
		errs = append(errs, err)
		c.WAN = w
	}
	seenIf := map[string]string{}
	if c.WAN != nil {
		seenIf[c.WAN.Interface] = "wan.interface"
	}
	seenSLA := map[int]string{}
	for i, rl := range r.LAN {
		path := fmt.Sprintf("lan[%d]", i)
		l, err := rl.validate(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := seenIf[l.Interface]; dup {
			errs = append(errs, fmt.Errorf("%s.interface: %q is already used by %s", path, l.Interface, prev))
		}
		seenIf[l.Interface] = path + ".interface"
		if prev, dup := seenSLA[l.SLAID]; dup {
			errs = append(errs, fmt.Errorf("%s.sla-id: %d is already used by %s: each LAN needs its own /64", path, l.SLAID, prev))
		}
		seenSLA[l.SLAID] = path + ".sla-id"
		c.LAN = append(c.LAN, *l)
	}
	if c.WAN == nil && len(c.LAN) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no interfaces: give `wan:` and/or `lan:`"))
	}
	errs = append(errs, r.validateSections(c)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func (r *rawWAN) validate(path string) (*WAN, error) {
	w := &WAN{Interface: r.Interface}
	if err := checkIfname(path+".interface", r.Interface); err != nil {
		return nil, err
	}
	if r.Token != nil {
		a, err := parseToken(path+".token", *r.Token)
		if err != nil {
			return nil, err
		}
		w.Token = a
	}
	if r.DHCPv6PD != nil {
		pd := &DHCPv6PD{}
		if h := r.DHCPv6PD.PrefixLengthHint; h != nil {
			if *h < 1 || *h > 64 {
				return nil, fmt.Errorf("%s.dhcpv6-pd.prefix-length-hint: %d is out of range 1-64", path, *h)
			}
			pd.PrefixLengthHint = *h
		}
		w.DHCPv6PD = pd
	}
	mode, err := xdpMode(path+".xdp-mode", r.XDPMode)
	w.XDPMode = mode
	return w, err
}

func (r *rawLAN) validate(path string) (*LAN, error) {
	l := &LAN{Interface: r.Interface}
	if err := checkIfname(path+".interface", r.Interface); err != nil {
		return nil, err
	}
	if r.SLAID != nil {
		if *r.SLAID < 0 || *r.SLAID > 0xffff {
			return nil, fmt.Errorf("%s.sla-id: %d is out of range 0-65535", path, *r.SLAID)
		}
		l.SLAID = *r.SLAID
	}
	l.Token = DefaultLANToken
	if r.Token != nil {
		a, err := parseToken(path+".token", *r.Token)
		if err != nil {
			return nil, err
		}
		l.Token = a
	}
	if r.IPv4 != nil {
		p, err := netip.ParsePrefix(*r.IPv4)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("%s.ipv4: %q is not an IPv4 address with prefix length like 192.168.1.1/24", path, *r.IPv4)
		}
		if p.Bits() > 30 || p.Addr() == p.Masked().Addr() {
			return nil, fmt.Errorf("%s.ipv4: %s is a network address or leaves no room for hosts; give the router's address, e.g. 192.168.1.1/24", path, p)
		}
		l.IPv4 = p
	}
	mode, err := xdpMode(path+".xdp-mode", r.XDPMode)
	l.XDPMode = mode
	return l, err
}

// DefaultLANToken is the router's interface identifier on each LAN.
var DefaultLANToken = netip.MustParseAddr("::1")

// parseToken parses an interface identifier written as an IPv6 address
// with only the low 64 bits set (as `ip token`).
func parseToken(path, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return a, fmt.Errorf("%s: %q is not an IPv6 interface identifier like \"::feed\"", path, s)
	}
	if b := a.As16(); !allZero(b[:8]) {
		return a, fmt.Errorf("%s: %s sets bits in the upper 64 (the prefix part); an interface identifier looks like \"::feed\"", path, a)
	}
	if a.IsUnspecified() {
		return a, fmt.Errorf("%s: \"::\" is no interface identifier", path)
	}
	return a, nil
}

func checkIfname(path, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s: required", path)
	case len(name) > 15:
		return fmt.Errorf("%s: %q is longer than 15 characters, the Linux limit", path, name)
	case bytes.ContainsAny([]byte(name), "/ \t\n:"):
		return fmt.Errorf("%s: %q is not a valid interface name", path, name)
	}
	return nil
}

func xdpMode(path string, s *string) (string, error) {
	if s == nil {
		return "auto", nil
	}
	switch *s {
	case "auto", "native", "generic":
		return *s, nil
	}
	return "", fmt.Errorf("%s: %q is not one of auto, native, generic", path, *s)
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
