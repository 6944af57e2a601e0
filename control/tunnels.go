package control

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/loader"
)

// TunnelDataplane is what tunnel apply needs from the loader.
type TunnelDataplane interface {
	PutTunnel(t loader.Tunnel) error
	DeleteTunnel(ifindex int) error
	Tunnels() ([]loader.Tunnel, error)
	AttachTunnelTC(tunIfname, wanIfname string) error
	SetTunnelSourceFilter(nets []loader.SourceNet) error
}

// TunnelDev is a tunnel's netdev as the data plane needs it.
type TunnelDev struct {
	Ifindex int
	MAC     net.HardwareAddr
}

// TunnelDevs manages the tunnels' netdevs; tests pass a fake.
type TunnelDevs interface {
	// Ensure: addr is an ipip6 tunnel's ipv4-address /32, or with ipv6
	// (6in4) the link net's address.
	Ensure(name string, mtu int, addr netip.Prefix, ipv6 bool) (dev TunnelDev, created bool, err error)
	AddRoutes(name string, routes []netip.Prefix) error
	SetRoutes(name string, routes []netip.Prefix) error
	Remove(name string) error
}

// NAT44 owns xdprouter's nftables tables: NAT44, port forwards and the
// firewall (NFTables); tests pass a fake.
type NAT44 interface {
	// Apply replaces them all at once (nil removes them) and says
	// whether anything changed.
	Apply(rs *Ruleset) (bool, error)
}

// checkTunnelsForApply refuses, before anything is touched, what only the
// daemon can program.
func checkTunnelsForApply(cfg *config.Config) error {
	var errs []error
	for i, t := range cfg.Tunnels {
		path := fmt.Sprintf("tunnels[%d]", i)
		if t.RemoteName != "" {
			errs = append(errs, fmt.Errorf("%s.remote: %q is a DNS name, which the daemon (xdprouter run) resolves and follows; "+
				"for apply give the IPv6 address", path, t.RemoteName))
		}
		if t.LocalAuto {
			errs = append(errs, fmt.Errorf("%s.local: auto follows the WAN prefix, which only the daemon (xdprouter run) learns; "+
				"for apply give the address (WAN prefix + wan.token, e.g. 2001:db8:1:2::feed)", path))
		}
		if t.Provisioning != nil {
			errs = append(errs, fmt.Errorf("%s.provisioning: the request is made by the daemon (xdprouter run), after every change "+
				"of the local address; apply would program a tunnel the ISP does not carry yet", path))
		}
	}
	return errors.Join(errs...)
}

// applyTunnels makes the tunnels exactly those of cfg: netdev, routes,
// map entries and slow-path programs for each, and tunnels no longer
// configured removed; then xdprouter's nftables state (NAT44 for those
// that ask, port forwards, the firewall) in one transaction. Undo steps
// for what it creates are appended to undo.
func applyTunnels(cfg *config.Config, deps Deps, add func(Step), undo *[]func() error) error {
	if deps.Tunnels == nil || deps.TunDevs == nil {
		if len(cfg.Tunnels) > 0 {
			return errors.New("tunnels: this build of apply cannot program tunnels")
		}
		return applyRuleset(cfg, deps, add)
	}
	// Before any tunnel decapsulates.
	if len(cfg.Tunnels) > 0 {
		if err := applyTunnelSources(cfg, deps, add); err != nil {
			return err
		}
	}
	for i, t := range cfg.Tunnels {
		path := fmt.Sprintf("tunnels[%d]", i)
		six := t.Mode == loader.Mode6in4
		addr := t.Address
		if !six && t.IPv4Address.IsValid() {
			addr = netip.PrefixFrom(t.IPv4Address, 32)
		}
		dev, created, err := deps.TunDevs.Ensure(t.Name, t.MTU, addr, six)
		if created {
			name, ifindex := t.Name, dev.Ifindex
			*undo = append(*undo, func() error {
				return errors.Join(deps.Tunnels.DeleteTunnel(ifindex), deps.TunDevs.Remove(name))
			})
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		add(Step{What: fmt.Sprintf("tunnel netdev %s (ifindex %d, mtu %d)", t.Name, dev.Ifindex, t.MTU), Result: map[bool]string{true: "created", false: "present"}[created]})
		err = deps.Tunnels.PutTunnel(loader.Tunnel{
			Name: t.Name, Mode: t.Mode, Ifindex: dev.Ifindex, MAC: dev.MAC, Local: t.Local, Remote: t.Remote,
			MTU: t.MTU, HopLimit: t.HopLimit, NAT44: t.NAT44, IPv4Address: t.IPv4Address,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		add(Step{What: fmt.Sprintf("tunnel %s: %s %s -> %s", t.Name, t.Mode, t.Local, t.Remote), Result: "programmed"})
		if err := deps.Tunnels.AttachTunnelTC(t.Name, cfg.WAN.Interface); err != nil {
			return fmt.Errorf("%s: slow path: %w", path, err)
		}
		if six {
			// IPv6 routes via the broker's link address, as vxlan's.
			if deps.VXLAN == nil {
				return fmt.Errorf("%s: this build of apply cannot route IPv6 into a tunnel", path)
			}
			changed, err := deps.VXLAN.SetRoutes(t.Name, t.Gateway, t.Routes)
			if err != nil {
				return fmt.Errorf("%s.routes: %w", path, err)
			}
			for _, r := range t.Routes {
				add(Step{What: fmt.Sprintf("route %s via %s dev %s", r, t.Gateway, t.Name), Result: map[bool]string{true: "set", false: "present"}[changed]})
			}
			continue
		}
		// Routes last, once the tunnel is programmed; a prefix another
		// tunnel had moves here in one step.
		if err := deps.TunDevs.AddRoutes(t.Name, t.Routes); err != nil {
			return fmt.Errorf("%s.routes: %w", path, err)
		}
		for _, r := range t.Routes {
			add(Step{What: fmt.Sprintf("route %s into %s", r, t.Name), Result: "set"})
		}
	}
	// Every tunnel's routes are in place: now drop those no longer wanted.
	for i, t := range cfg.Tunnels {
		if t.Mode == loader.Mode6in4 {
			continue
		}
		if err := deps.TunDevs.SetRoutes(t.Name, t.Routes); err != nil {
			return fmt.Errorf("tunnels[%d].routes: %w", i, err)
		}
	}
	if err := applyRuleset(cfg, deps, add); err != nil {
		return err
	}
	return removeStaleTunnels(cfg, deps, add)
}

func removeStaleTunnels(cfg *config.Config, deps Deps, add func(Step)) error {
	have, err := deps.Tunnels.Tunnels()
	if err != nil {
		return err
	}
	for _, t := range have {
		if slices.ContainsFunc(cfg.Tunnels, func(c config.Tunnel) bool { return c.Name == t.Name }) {
			continue
		}
		if err := deps.Tunnels.DeleteTunnel(t.Ifindex); err != nil {
			return fmt.Errorf("remove tunnel %s: %w", t.Name, err)
		}
		if err := deps.TunDevs.Remove(t.Name); err != nil {
			return fmt.Errorf("remove tunnel %s: %w", t.Name, err)
		}
		add(Step{What: "tunnel " + t.Name + " (no longer configured)", Result: "removed"})
	}
	return nil
}
