package control

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/loader"
)

// Translator programs NPT and the NDP proxy; tests pass a fake.
type Translator interface {
	AttachNPTSlowPath(ifname string) (string, error)
	SyncNPT(rules []loader.NPTRule) error
	NPTRules() ([]loader.NPTRule, error)
	SyncNDPProxy(entries []loader.NDPProxyEntry) error
	NDPProxyEntries() ([]loader.NDPProxyEntry, error)
}

// LearnedWANPrefix is the name under which the task that learns the WAN
// prefix (the RA tracker) reports it; `npt: outside: auto` follows it.
const LearnedWANPrefix = "wan-prefix"

// withLearnedNPT returns cfg with every `outside: auto` NPT entry set to the
// learned WAN prefix, so that one reconcile pass moves NPT and the NDP
// proxy (prefixes: [auto]) together when the ISP renumbers. cfg itself is
// not changed. Without a learned prefix the entry is an error naming it.
func withLearnedNPT(cfg *config.Config, learned map[string]netip.Prefix) (*config.Config, error) {
	auto := false
	for _, n := range cfg.NPT {
		auto = auto || n.OutsideAuto
	}
	if !auto {
		return cfg, nil
	}
	wan, ok := learned[LearnedWANPrefix]
	out := *cfg
	out.NPT = slices.Clone(cfg.NPT)
	for i, n := range out.NPT {
		if !n.OutsideAuto {
			continue
		}
		switch {
		case !ok:
			return nil, fmt.Errorf("npt[%d].outside: auto, and no WAN prefix has been learned yet", i)
		case wan.Bits() != n.Inside.Bits():
			return nil, fmt.Errorf("npt[%d].outside: auto is the learned WAN prefix %s, a /%d, but inside %s is a /%d",
				i, wan, wan.Bits(), n.Inside, n.Inside.Bits())
		}
		out.NPT[i].Outside, out.NPT[i].OutsideAuto = wan.Masked(), false
	}
	return &out, nil
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
		rules = append(rules, loader.NPTRule{Interface: n.Interface, Inside: n.Inside, Outside: n.Outside, Mode: mode})
	}
	var proxy []loader.NDPProxyEntry
	for i, p := range cfg.NDPProxy {
		mode, err := loader.ParseNDPMode(p.Mode)
		if err != nil {
			return nil, nil, fmt.Errorf("ndp-proxy[%d].mode: %w", i, err)
		}
		prefixes := p.Prefixes
		if p.Auto {
			for _, r := range rules {
				if r.Interface == p.Interface {
					prefixes = append(prefixes, r.Outside)
				}
			}
		}
		for _, pfx := range prefixes {
			proxy = append(proxy, loader.NDPProxyEntry{Interface: p.Interface, Prefix: pfx, Mode: mode})
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
	return steps, undo, nil
}
