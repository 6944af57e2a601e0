package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Delegation is seed 001's server side: a parent prefix (the seed's /40
// from BGP) carved into per-peer prefixes by peer number, each peer
// reached over its own vxlan tunnel. Peer n (1 and up) gets
//
//   - the n'th /PeerLength of the parent (seed: 2001:db8:ae{n}::/48),
//   - the n'th /SubnetLength of the parent's first /PeerLength
//     (seed: 2001:db8:ae00:{n}::/64),
//   - the n'th /LinkLength of that block's first /SubnetLength as the
//     link net (seed: 2001:db8:ae00:0:{n}::/80), ::1 this router's, ::2
//     the peer's,
//
// the tunnel Prefix+n (seed: vxlan01 to vxlanff) with VNI n, and routes
// for its two prefixes via its link address. The peers' tunnels are in
// Config.VXLAN (with Path delegations[i].peers[j]).
type Delegation struct {
	Prefix                               netip.Prefix
	PeerLength, SubnetLength, LinkLength int
	Name                                 string // netdev name prefix
	Peers                                []DelegatedPeer
}

// DelegatedPeer is one peer's share.
type DelegatedPeer struct {
	ID     int
	Tunnel string       // its vxlan netdev
	Remote netip.Addr   // its underlay address
	Peer   netip.Prefix // its /PeerLength
	Subnet netip.Prefix // its /SubnetLength
	Link   netip.Prefix // the link net, e.g. 2001:db8:ae00:0:1::/80
}

// Defaults of a delegation, as the seed lays out its /40.
const (
	DefaultPeerLength   = 48
	DefaultSubnetLength = 64
	DefaultLinkLength   = 80
	DefaultPeerName     = "vxlan"
)

type rawDelegation struct {
	Prefix       string             `yaml:"prefix"`
	PeerLength   *int               `yaml:"peer-length"`
	SubnetLength *int               `yaml:"subnet-length"`
	LinkLength   *int               `yaml:"link-length"`
	Name         *string            `yaml:"name"`
	Underlay     *string            `yaml:"underlay"`
	Local        string             `yaml:"local"`
	Port         *int               `yaml:"port"`
	MTU          *int               `yaml:"mtu"`
	Peers        []rawDelegatedPeer `yaml:"peers"`
}

type rawDelegatedPeer struct {
	ID     *int   `yaml:"id"`
	Remote string `yaml:"remote"`
}

// validateDelegations carves each delegation and appends its peers'
// tunnels to c.VXLAN. taken are the netdev names already in use (the
// interfaces and tunnels), with what uses them.
func (r *rawConfig) validateDelegations(c *Config, taken map[string]string) []error {
	var errs []error
	for i, rd := range r.Delegations {
		path := fmt.Sprintf("delegations[%d]", i)
		d, vs, err := rd.validate(path, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, prev := range c.Delegations {
			if prev.Prefix.Overlaps(d.Prefix) {
				errs = append(errs, fmt.Errorf("%s.prefix: %s overlaps %s of another delegation", path, d.Prefix, prev.Prefix))
			}
		}
		for _, v := range c.VXLAN {
			for j, p := range v.Prefixes {
				if p.Overlaps(d.Prefix) {
					errs = append(errs, fmt.Errorf("%s.prefix: %s overlaps %s (%s.prefixes[%d]), which a peer routes here", path, d.Prefix, p, v.Path, j))
				}
			}
		}
		for _, v := range vs {
			if prev, dup := taken[v.Name]; dup {
				errs = append(errs, fmt.Errorf("%s.id: its tunnel %q is already %s; give the delegation another name", v.Path, v.Name, prev))
			}
			taken[v.Name] = "used by " + v.Path
		}
		c.Delegations = append(c.Delegations, *d)
		c.VXLAN = append(c.VXLAN, vs...)
	}
	return errs
}

func (rd *rawDelegation) validate(path string, c *Config) (*Delegation, []VXLAN, error) {
	d := &Delegation{PeerLength: DefaultPeerLength, SubnetLength: DefaultSubnetLength, LinkLength: DefaultLinkLength, Name: DefaultPeerName}
	parent, err := ipv6Prefix(path+".prefix", rd.Prefix, 64)
	if err != nil {
		if strings.TrimSpace(rd.Prefix) == "" {
			return nil, nil, fmt.Errorf("%s.prefix: required (the prefix to carve, e.g. 2001:db8:ae00::/40)", path)
		}
		return nil, nil, err
	}
	d.Prefix = parent
	for _, l := range []struct {
		name string
		raw  *int
		dst  *int
	}{{"peer-length", rd.PeerLength, &d.PeerLength}, {"subnet-length", rd.SubnetLength, &d.SubnetLength}, {"link-length", rd.LinkLength, &d.LinkLength}} {
		if l.raw != nil {
			*l.dst = *l.raw
		}
	}
	switch {
	case d.PeerLength <= parent.Bits() || d.PeerLength > 64:
		return nil, nil, fmt.Errorf("%s.peer-length: /%d must be longer than the prefix's /%d and at most /64", path, d.PeerLength, parent.Bits())
	case d.SubnetLength <= d.PeerLength || d.SubnetLength > 64:
		return nil, nil, fmt.Errorf("%s.subnet-length: /%d must be longer than peer-length /%d and at most /64", path, d.SubnetLength, d.PeerLength)
	case d.LinkLength <= d.SubnetLength || d.LinkLength > 126:
		return nil, nil, fmt.Errorf("%s.link-length: /%d must be longer than subnet-length /%d and at most /126 (::1 and ::2)", path, d.LinkLength, d.SubnetLength)
	}
	// Peer 0's share holds the subnets and link nets: ids from 1 to the
	// smallest of the three counts, less one.
	maxID := 1<<min(d.PeerLength-parent.Bits(), d.SubnetLength-d.PeerLength, d.LinkLength-d.SubnetLength, 24) - 1
	if rd.Name != nil {
		d.Name = *rd.Name
	}
	if err := checkIfname(path+".name", d.Name+peerSuffix(maxID)); err != nil {
		return nil, nil, fmt.Errorf("%w (the name prefix plus the peer number in hex)", err)
	}
	// What every peer's tunnel shares.
	base := VXLAN{Port: DefaultVXLANPort}
	if err := base.underlaySettings(path, rd.Local, rd.Underlay, rd.Port, rd.MTU, c); err != nil {
		return nil, nil, err
	}
	if len(rd.Peers) == 0 {
		return nil, nil, fmt.Errorf("%s.peers: required (each peer's id and remote)", path)
	}
	block0 := subnet(parent, d.PeerLength, 0)
	links := subnet(block0, d.SubnetLength, 0)
	seen := map[int]string{}
	var vs []VXLAN
	for j, rp := range rd.Peers {
		pp := fmt.Sprintf("%s.peers[%d]", path, j)
		if rp.ID == nil {
			return nil, nil, fmt.Errorf("%s.id: required (the peer's number: its prefixes, VNI and tunnel name follow from it)", pp)
		}
		id := *rp.ID
		if id < 1 || id > maxID {
			return nil, nil, fmt.Errorf("%s.id: %d does not fit: %s carved into /%d, /%d and /%d holds peers 1-%d", pp, id, parent, d.PeerLength, d.SubnetLength, d.LinkLength, maxID)
		}
		if prev, dup := seen[id]; dup {
			return nil, nil, fmt.Errorf("%s.id: %d is already %s's", pp, id, prev)
		}
		seen[id] = pp
		remote, err := underlayAddr(pp+".remote", rp.Remote, "the peer's underlay address, e.g. 10.1.1.2")
		if err != nil {
			return nil, nil, err
		}
		if base.Local.IsValid() && base.Local.Is4() != remote.Is4() {
			return nil, nil, fmt.Errorf("%s.remote: %s and local %s are of different families", pp, remote, base.Local)
		}
		p := DelegatedPeer{ID: id, Tunnel: d.Name + peerSuffix(id), Remote: remote,
			Peer: subnet(parent, d.PeerLength, uint64(id)), Subnet: subnet(block0, d.SubnetLength, uint64(id)),
			Link: subnet(links, d.LinkLength, uint64(id))}
		d.Peers = append(d.Peers, p)
		v := base
		v.Name, v.Path, v.VNI, v.Remote = p.Tunnel, pp, uint32(id), remote
		v.Address = netip.PrefixFrom(withHost(p.Link, 1), d.LinkLength)
		v.Gateway = withHost(p.Link, 2)
		v.Routes = []netip.Prefix{p.Subnet, p.Peer}
		vs = append(vs, v)
	}
	return d, vs, nil
}

// peerSuffix is a peer number as the seed writes it in its tunnel's
// name: at least two hex digits (vxlan01 … vxlanff).
func peerSuffix(id int) string { return fmt.Sprintf("%02x", id) }
