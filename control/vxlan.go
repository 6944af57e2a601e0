package control

import (
	"errors"
	"fmt"
	"slices"

	"net/netip"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/loader"
)

// VXLANDevs manages the kernel vxlan netdevs xdprouter owns; tests pass a
// fake.
type VXLANDevs interface {
	// Ensure creates or adopts v's netdev, with its address, and says
	// its ifindex and whether it was (re)made.
	Ensure(v config.VXLAN) (ifindex int, created bool, err error)
	// SetRoutes makes routes via gw through the netdev exactly these and
	// says whether it changed any.
	SetRoutes(name string, gw netip.Addr, routes []netip.Prefix) (bool, error)
	// Owned lists the netdevs xdprouter made, by name.
	Owned() ([]string, error)
	Remove(name string) error
}

// KernelTunnels is what the data plane records of them (the loader).
type KernelTunnels interface {
	PutKernelTunnel(t loader.KernelTunnel) error
	DeleteKernelTunnel(ifindex int) error
	KernelTunnels() ([]loader.KernelTunnel, error)
}

// applyVXLAN makes the vxlan tunnels exactly those of cfg: each netdev
// with its address and routes, recorded in the data plane (so XDP passes
// what is routed into it as pass_tunnel_dev); then the source steering;
// then the netdevs no longer configured removed. Undo steps for the
// netdevs it creates are appended to undo.
func applyVXLAN(cfg *config.Config, deps Deps, add func(Step), undo *[]func() error) error {
	if deps.VXLAN == nil || deps.KTunnels == nil || deps.Steering == nil {
		if len(cfg.VXLAN) > 0 {
			return errors.New("tunnels: this build of apply cannot program vxlan tunnels")
		}
		return nil
	}
	current := map[string]int{}
	for _, v := range cfg.VXLAN {
		ifindex, created, err := deps.VXLAN.Ensure(v)
		current[v.Name] = ifindex
		if created {
			name, idx := v.Name, ifindex
			*undo = append(*undo, func() error {
				return errors.Join(deps.KTunnels.DeleteKernelTunnel(idx), deps.VXLAN.Remove(name))
			})
		}
		if err != nil {
			return fmt.Errorf("%s: %w", v.Path, err)
		}
		res := map[bool]string{true: "created", false: "present"}[created]
		what := fmt.Sprintf("vxlan netdev %s (ifindex %d, vni %d, remote %s port %d, dev %s", v.Name, ifindex, v.VNI, v.Remote, v.Port, v.Underlay)
		if v.Address.IsValid() {
			what += ", address " + v.Address.String()
		}
		add(Step{What: what + ")", Result: res})
		err = deps.KTunnels.PutKernelTunnel(loader.KernelTunnel{Name: v.Name, Ifindex: ifindex, Kind: "vxlan",
			VNI: v.VNI, Port: v.Port, Remote: v.Remote, Local: v.Local})
		if err != nil {
			return fmt.Errorf("%s: %w", v.Path, err)
		}
		changed, err := deps.VXLAN.SetRoutes(v.Name, v.Gateway, v.Routes)
		if err != nil {
			return fmt.Errorf("%s.routes: %w", v.Path, err)
		}
		for _, r := range v.Routes {
			add(Step{What: fmt.Sprintf("route %s via %s dev %s", r, v.Gateway, v.Name), Result: map[bool]string{true: "set", false: "present"}[changed]})
		}
	}
	s, err := deps.Steering.Sync(desiredSteering(cfg))
	for _, st := range s {
		add(st)
	}
	if err != nil {
		return fmt.Errorf("policy-routing: %w", err)
	}
	return removeStaleVXLAN(cfg, current, deps, add)
}

// removeStaleVXLAN removes the vxlan netdevs xdprouter made (found by
// their mark, or recorded in the data plane) that cfg no longer names,
// and the records of netdevs made anew (current: name -> ifindex now).
func removeStaleVXLAN(cfg *config.Config, current map[string]int, deps Deps, add func(Step)) error {
	keep := func(name string) bool {
		return slices.ContainsFunc(cfg.VXLAN, func(v config.VXLAN) bool { return v.Name == name })
	}
	recorded, err := deps.KTunnels.KernelTunnels()
	if err != nil {
		return err
	}
	owned, err := deps.VXLAN.Owned()
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range recorded {
		if idx, ok := current[t.Name]; ok && idx != t.Ifindex {
			errs = append(errs, deps.KTunnels.DeleteKernelTunnel(t.Ifindex))
			continue
		}
		if !keep(t.Name) {
			errs = append(errs, deps.KTunnels.DeleteKernelTunnel(t.Ifindex))
			if !slices.Contains(owned, t.Name) {
				owned = append(owned, t.Name)
			}
		}
	}
	for _, name := range owned {
		if keep(name) {
			continue
		}
		if err := deps.VXLAN.Remove(name); err != nil {
			errs = append(errs, fmt.Errorf("remove vxlan tunnel %s: %w", name, err))
			continue
		}
		add(Step{What: "vxlan tunnel " + name + " (no longer configured)", Result: "removed"})
	}
	return errors.Join(errs...)
}
