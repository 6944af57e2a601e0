package control

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/xdprouter/xdprouter/control/config"
)

// Prune removes what prev put on the system and next does not want: the
// data plane from interfaces next no longer names, LAN IPv4 addresses next
// no longer gives. A nil next removes everything prev had (tunnels and
// NAT44 and firewall tables included), which is how
// `run --detach-on-exit` leaves. It goes on after an error, so one stuck
// interface does not keep the others attached, and reports them all.
func Prune(prev, next *config.Config, deps Deps) ([]Step, error) {
	if prev == nil {
		return nil, nil
	}
	var keepIf []string
	keepAddr := map[string]netip.Prefix{}
	if next != nil {
		keepIf = next.Interfaces()
		for _, l := range next.LAN {
			if l.IPv4.IsValid() {
				keepAddr[l.Interface+" "+l.IPv4.String()] = l.IPv4
			}
		}
	}
	var (
		steps []Step
		errs  []error
	)
	// Tunnels go with the whole config (a reload's Apply already removed
	// those the new config dropped): devices, routes, maps, NAT44 rules,
	// vxlan netdevs and the steering rules and tables.
	if next == nil && deps.Tunnels != nil && deps.TunDevs != nil {
		if err := removeStaleTunnels(&config.Config{}, deps, func(s Step) { steps = append(steps, s) }); err != nil {
			errs = append(errs, err)
		}
	}
	if next == nil && deps.VXLAN != nil && deps.KTunnels != nil && deps.Steering != nil {
		s, err := deps.Steering.Sync(SteeringState{})
		steps = append(steps, s...)
		errs = append(errs, err)
		if err := removeStaleVXLAN(&config.Config{}, nil, deps, func(s Step) { steps = append(steps, s) }); err != nil {
			errs = append(errs, err)
		}
	}
	if next == nil && deps.NAT != nil {
		if _, err := deps.NAT.Apply(nil); err != nil {
			errs = append(errs, fmt.Errorf("remove the nftables tables (nat44, firewall): %w", err))
		}
	}
	// Addresses first: they live on interfaces that may be detached next.
	for i, l := range prev.LAN {
		if !l.IPv4.IsValid() {
			continue
		}
		if _, keep := keepAddr[l.Interface+" "+l.IPv4.String()]; keep {
			continue
		}
		if err := deps.Addrs.Remove(l.Interface, l.IPv4); err != nil {
			errs = append(errs, fmt.Errorf("remove lan[%d].ipv4 %s from %s (no longer configured): %w", i, l.IPv4, l.Interface, err))
			continue
		}
		steps = append(steps, Step{What: fmt.Sprintf("address %s on %s", l.IPv4, l.Interface), Result: "removed"})
	}
	for _, ifname := range prev.Interfaces() {
		if slices.Contains(keepIf, ifname) {
			continue
		}
		if err := deps.DP.Detach(ifname); err != nil {
			errs = append(errs, fmt.Errorf("detach %s (no longer configured): %w", ifname, err))
			continue
		}
		steps = append(steps, Step{What: "attach " + ifname, Result: "detached"})
	}
	return steps, errors.Join(errs...)
}

// ApplyInputs is one reconcile pass's steps: the config with what the
// tasks learned resolved into it (resolveLearned) goes through Apply, the
// same steps as `xdprouter apply`, and the plan's IPv6 addresses and
// routes are installed, so one pass updates every piece that depends on a
// learned prefix. plan is NewPlan of in: the reconciler computes it once
// per pass and keeps it as what the kernel holds.
func ApplyInputs(in Inputs, plan Plan, deps Deps) ([]Step, error) {
	cfg, pending := resolveLearned(in.Config, plan, in.Learned.Remotes)
	steps, err := Apply(cfg, deps)
	if err != nil {
		return steps, err
	}
	if deps.Net6 != nil {
		// Addresses on a LAN interface that does not exist yet wait
		// with it (Apply said so); the pass after it appears adds them.
		s, err := applyNet6(plan.without(waitedFor(steps)), deps.Net6, time.Now())
		steps = append(steps, s...)
		if err != nil {
			return steps, err
		}
	}
	for _, p := range append(plan.Pending, pending...) {
		steps = append(steps, Step{What: p, Result: "waiting"})
	}
	return steps, nil
}
