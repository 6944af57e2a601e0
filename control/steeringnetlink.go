package control

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetlinkSteering is Steering on the real kernel. Its rules and routes
// carry protocol 200 (rtprotXDPRouter): rules with it, and such routes
// in any table but main, local and default, are xdprouter's steering and
// nothing else is touched.
type NetlinkSteering struct{}

// Sync makes xdprouter's IPv6 policy rules and steering routes exactly
// want: routes first (a rule never points at an empty table), then the
// rules, then what is no longer wanted removed.
func (NetlinkSteering) Sync(want SteeringState) ([]Step, error) {
	var steps []Step
	haveRoutes, err := steeringRoutes()
	if err != nil {
		return nil, err
	}
	haveRules, err := steeringRules()
	if err != nil {
		return nil, err
	}
	for _, r := range want.Routes {
		if slices.Contains(haveRoutes, r) {
			continue
		}
		nr, err := r.netlink()
		if err != nil {
			return steps, err
		}
		if err := netlink.RouteReplace(nr); err != nil {
			return steps, fmt.Errorf("%s: %w", r, err)
		}
		steps = append(steps, Step{What: "route " + r.String(), Result: "added"})
	}
	for _, r := range want.Rules {
		if slices.Contains(haveRules, r) {
			continue
		}
		if err := netlink.RuleAdd(r.netlink()); err != nil && !errors.Is(err, unix.EEXIST) {
			return steps, fmt.Errorf("rule %s: %w", r, err)
		}
		steps = append(steps, Step{What: "rule " + r.String(), Result: "added"})
	}
	var errs []error
	for _, r := range haveRules {
		if slices.Contains(want.Rules, r) {
			continue
		}
		if err := netlink.RuleDel(r.netlink()); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove rule %s: %w", r, err))
			continue
		}
		steps = append(steps, Step{What: "rule " + r.String(), Result: "removed"})
	}
	for _, r := range haveRoutes {
		if slices.Contains(want.Routes, r) {
			continue
		}
		nr, err := r.netlink()
		if err == nil {
			err = netlink.RouteDel(nr)
		}
		if err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove route %s: %w", r, err))
			continue
		}
		steps = append(steps, Step{What: "route " + r.String(), Result: "removed"})
	}
	return steps, errors.Join(errs...)
}

func (r SteeringRule) netlink() *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V6
	nr.Priority = r.Priority
	nr.Table = r.Table
	nr.Protocol = rtprotXDPRouter
	if r.Src.IsValid() {
		nr.Src = &net.IPNet{IP: r.Src.Addr().AsSlice(), Mask: net.CIDRMask(r.Src.Bits(), 128)}
	}
	if r.Dst.IsValid() {
		nr.Dst = &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), 128)}
	}
	return nr
}

func (r SteeringRoute) netlink() (*netlink.Route, error) {
	nr := &netlink.Route{Table: r.Table, Protocol: rtprotXDPRouter, Family: netlink.FAMILY_V6,
		Dst: &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), 128)}}
	if r.Unreachable {
		nr.Type = unix.RTN_UNREACHABLE
		return nr, nil
	}
	l, err := netlink.LinkByName(r.Dev)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	nr.LinkIndex = l.Attrs().Index
	nr.Gw = r.Gateway.AsSlice()
	return nr, nil
}

// steeringRules reads xdprouter's IPv6 policy rules.
func steeringRules() ([]SteeringRule, error) {
	rules, err := netlink.RuleList(netlink.FAMILY_V6)
	if err != nil {
		return nil, fmt.Errorf("list ipv6 rules: %w", err)
	}
	var out []SteeringRule
	for _, r := range rules {
		if r.Protocol != rtprotXDPRouter {
			continue
		}
		sr := SteeringRule{Priority: r.Priority, Table: r.Table}
		if r.Src != nil {
			sr.Src = netlinkPrefix(r.Src)
		}
		if r.Dst != nil {
			sr.Dst = netlinkPrefix(r.Dst)
		}
		out = append(out, sr)
	}
	return out, nil
}

// steeringRoutes reads the routes xdprouter put in its own tables.
func steeringRoutes() ([]SteeringRoute, error) {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V6,
		&netlink.Route{Table: unix.RT_TABLE_UNSPEC, Protocol: rtprotXDPRouter},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list ipv6 routes: %w", err)
	}
	var out []SteeringRoute
	for _, r := range rs {
		switch r.Table {
		case unix.RT_TABLE_MAIN, unix.RT_TABLE_LOCAL, unix.RT_TABLE_DEFAULT:
			continue
		}
		sr := SteeringRoute{Table: r.Table, Dst: netlinkPrefix(r.Dst), Unreachable: r.Type == unix.RTN_UNREACHABLE}
		if !sr.Unreachable {
			if gw, ok := netip.AddrFromSlice(r.Gw); ok {
				sr.Gateway = gw
			}
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				sr.Dev = l.Attrs().Name
			}
		}
		out = append(out, sr)
	}
	return out, nil
}

// ReadSteering is the steering in force, read from the kernel (status,
// with or without a daemon); nil when there is none.
func ReadSteering() *SteeringState {
	rules, rerr := steeringRules()
	routes, terr := steeringRoutes()
	if rerr != nil || terr != nil || (len(rules) == 0 && len(routes) == 0) {
		return nil
	}
	return &SteeringState{Rules: rules, Routes: routes}
}

// RemoveSteering removes every rule and route of xdprouter's steering
// (detach --all).
func RemoveSteering() error {
	_, err := NetlinkSteering{}.Sync(SteeringState{})
	return err
}
