package control

import (
	"fmt"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/loader"
)

// Translator programs NPT and the NDP proxy; tests pass a fake.
type Translator interface {
	AttachNPTSlowPath(ifname string) (string, error)
	DetachNPTSlowPath(ifname string) (bool, error)
	SyncNPT(rules []loader.NPTRule) error
	NPTRules() ([]loader.NPTRule, error)
	SyncNDPProxy(entries []loader.NDPProxyEntry) error
	NDPProxyEntries() ([]loader.NDPProxyEntry, error)
}

// desiredNPT turns the config into map contents. `auto` outside prefixes
// need the daemon, which learns the WAN prefix; apply has none, so they are
// an error here, naming the field. NDP proxy `auto` becomes every NPT
// outside prefix on that interface.
func desiredNPT(cfg *config.Config) ([]loader.NPTRule, []loader.NDPProxyEntry, error) {
	var rules []loader.NPTRule
	for i, n := range cfg.NPT {
		if n.OutsideAuto {
			return nil, nil, fmt.Errorf("npt[%d].outside: auto is the WAN prefix learned by the daemon (`xdprouter run`); "+
				"`apply` learns nothing, so give the outside prefix explicitly", i)
		}
		mode, err := loader.ParseNPTMode(n.Mode)
		if err != nil {
			return nil, nil, fmt.Errorf("npt[%d].mode: %w", i, err)
		}
		rules = append(rules, loader.NPTRule{Interface: n.Interface, Inside: n.Inside, Outside: n.Outside, Exclude: n.Exclude, Mode: mode})
	}
	var proxy []loader.NDPProxyEntry
	for i, p := range cfg.NDPProxy {
		mode, err := loader.ParseNDPMode(p.Mode)
		if err != nil {
			return nil, nil, fmt.Errorf("ndp-proxy[%d].mode: %w", i, err)
		}
		prefixes := p.Prefixes
		if p.Auto {
			n := len(prefixes)
			for _, r := range rules {
				if r.Interface == p.Interface {
					prefixes = append(prefixes, r.Outside)
				}
			}
			if len(prefixes) == n {
				return nil, nil, fmt.Errorf("ndp-proxy[%d].prefixes: auto here is the WAN /64 the LAN shares, which the daemon "+
					"(`xdprouter run`) learns; `apply` learns nothing, so give the prefix explicitly", i)
			}
		}
		for _, pfx := range prefixes {
			e := loader.NDPProxyEntry{Interface: p.Interface, Prefix: pfx, Mode: mode}
			for _, a := range p.Foreign {
				if pfx.Contains(a) {
					e.Foreign = append(e.Foreign, a)
				}
			}
			proxy = append(proxy, e)
		}
	}
	return rules, proxy, nil
}

// applyNPT attaches the slow path on every NPT outside interface and makes
// the NPT and NDP proxy maps match the config. It returns an undo that puts
// back what the maps held before.
func applyNPT(t Translator, rules []loader.NPTRule, proxy []loader.NDPProxyEntry) ([]Step, func() error, error) {
	var steps []Step
	prevRules, err := t.NPTRules()
	if err != nil {
		return nil, nil, err
	}
	prevProxy, err := t.NDPProxyEntries()
	if err != nil {
		return nil, nil, err
	}
	undo := func() error {
		if err := t.SyncNPT(prevRules); err != nil {
			return err
		}
		return t.SyncNDPProxy(prevProxy)
	}
	done := map[string]bool{}
	for i, r := range rules {
		if done[r.Interface] {
			continue
		}
		done[r.Interface] = true
		res, err := t.AttachNPTSlowPath(r.Interface)
		if err != nil {
			return steps, undo, fmt.Errorf("npt[%d].interface: slow path on %s: %w", i, r.Interface, err)
		}
		steps = append(steps, Step{What: "npt slow path (tc) on " + r.Interface, Result: res})
	}
	if err := t.SyncNPT(rules); err != nil {
		return steps, undo, fmt.Errorf("npt: %w", err)
	}
	for _, r := range rules {
		steps = append(steps, Step{What: fmt.Sprintf("npt %s %s <-> %s (%s)", r.Interface, r.Inside, r.Outside, r.Mode), Result: "programmed"})
	}
	if err := t.SyncNDPProxy(proxy); err != nil {
		return steps, undo, fmt.Errorf("ndp-proxy: %w", err)
	}
	for _, p := range proxy {
		steps = append(steps, Step{What: fmt.Sprintf("ndp proxy %s %s (%s)", p.Interface, p.Prefix, p.Mode), Result: "programmed"})
	}
	// An interface whose last rule went keeps no slow path. Last, so a
	// failure before leaves the old rules with their slow path.
	for _, r := range prevRules {
		if done[r.Interface] {
			continue
		}
		done[r.Interface] = true
		removed, err := t.DetachNPTSlowPath(r.Interface)
		if err != nil {
			return steps, undo, fmt.Errorf("npt: remove the slow path from %s: %w", r.Interface, err)
		}
		if removed {
			steps = append(steps, Step{What: "npt slow path (tc) on " + r.Interface, Result: "detached"})
		}
	}
	return steps, undo, nil
}
