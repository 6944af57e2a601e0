package control

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
)

// Net6 puts the plan's IPv6 state into the kernel; tests pass a fake.
type Net6 interface {
	// EnsureAddr installs a, or refreshes its lifetimes; it says which.
	EnsureAddr(a Addr6, now time.Time) (string, error)
	RemoveAddr(ifname string, p netip.Prefix) error
	// SetDefault makes xdprouter's default route on ifname point to gw;
	// an invalid gw removes it. It says what it did.
	SetDefault(ifname string, gw netip.Addr) (string, error)
	// SyncUnreachable makes xdprouter's unreachable routes exactly want.
	SyncUnreachable(want []netip.Prefix) ([]Step, error)
}

// applyNet6 installs the plan's addresses and routes. It removes nothing
// but what the plan replaces in place (the default route's gateway);
// pruneNet6 removes what the previous plan had and this one has not, once
// the pass is in force.
func applyNet6(p Plan, n Net6, now time.Time) ([]Step, error) {
	var steps []Step
	for _, a := range p.addrs() {
		res, err := n.EnsureAddr(a, now)
		if err != nil {
			return steps, fmt.Errorf("address %s on %s: %w", a.Prefix, a.Interface, err)
		}
		steps = append(steps, Step{What: fmt.Sprintf("address %s on %s (valid %s, preferred %s)", a.Prefix, a.Interface,
			learned.Left(a.Valid, now), learned.Left(a.Preferred, now)), Result: res})
	}
	if ifname := p.WANInterface; ifname != "" {
		res, err := n.SetDefault(ifname, p.Gateway)
		if err != nil {
			return steps, fmt.Errorf("default route via %s on %s: %w", p.Gateway, ifname, err)
		}
		switch {
		case p.Gateway.IsValid():
			steps = append(steps, Step{What: fmt.Sprintf("default route via %s dev %s", p.Gateway, ifname), Result: res})
		case res != "unchanged":
			steps = append(steps, Step{What: "default route dev " + ifname, Result: res})
		}
	}
	var unreach []netip.Prefix
	for _, d := range p.Delegated {
		unreach = append(unreach, d.Prefix)
	}
	unreach = append(unreach, p.Carved...)
	s, err := n.SyncUnreachable(unreach)
	return append(steps, s...), err
}

// pruneNet6 removes the addresses prev installed that next does not want.
func pruneNet6(prev, next Plan, n Net6) ([]Step, error) {
	want := map[Addr6Key]bool{}
	for _, a := range next.addrs() {
		want[a.key()] = true
	}
	var (
		steps []Step
		errs  []error
	)
	for _, a := range prev.addrs() {
		if want[a.key()] {
			continue
		}
		if err := n.RemoveAddr(a.Interface, a.Prefix); err != nil {
			errs = append(errs, fmt.Errorf("remove address %s from %s: %w", a.Prefix, a.Interface, err))
			continue
		}
		steps = append(steps, Step{What: fmt.Sprintf("address %s on %s", a.Prefix, a.Interface), Result: "removed"})
	}
	return steps, errors.Join(errs...)
}

// teardownNet6 removes everything p installed.
func teardownNet6(p Plan, n Net6) error {
	_, err := pruneNet6(p, Plan{}, n)
	var errs []error
	errs = append(errs, err)
	if ifname := p.WANInterface; ifname != "" {
		if _, err := n.SetDefault(ifname, netip.Addr{}); err != nil {
			errs = append(errs, err)
		}
	}
	_, err = n.SyncUnreachable(nil)
	return errors.Join(append(errs, err)...)
}

// Addr6Key identifies an installed address.
type Addr6Key struct {
	Interface string
	Prefix    netip.Prefix
}

func (a Addr6) key() Addr6Key { return Addr6Key{a.Interface, a.Prefix} }

func (p Plan) addrs() []Addr6 {
	out := []Addr6{}
	if p.WANAddr.IsValid() {
		out = append(out, p.WANAddr)
	}
	for _, l := range p.LANs {
		if l.Addr.IsValid() {
			out = append(out, l.Addr)
		}
		out = append(out, l.RetiredAddrs...)
		for _, f := range l.Fixed {
			if f.Addr.IsValid() {
				out = append(out, f.Addr)
			}
		}
	}
	return out
}

// without is p with no address on the given interfaces (for the pass
// only: the plan in force still has them, so nothing is pruned).
func (p Plan) without(ifnames map[string]string) Plan {
	if len(ifnames) == 0 {
		return p
	}
	out := p
	out.LANs = nil
	for _, l := range p.LANs {
		if ifnames[l.Interface] != "" {
			l.Addr, l.RetiredAddrs = Addr6{}, nil
			l.Fixed = slices.Clone(l.Fixed)
			for i := range l.Fixed {
				l.Fixed[i].Addr = Addr6{}
			}
		}
		out.LANs = append(out.LANs, l)
	}
	return out
}
