package control

import (
	"errors"
	"fmt"

	"github.com/xdprouter/xdprouter/control/config"
)

// applyRuleset puts xdprouter's nftables state for cfg in force: NAT44,
// port forwards and the firewall, built from cfg with the learned LAN
// prefixes resolveLearned put into it, so every pass that changes a
// prefix replaces the rules too.
func applyRuleset(cfg *config.Config, deps Deps, add func(Step)) error {
	rs, pending := desiredRuleset(cfg)
	if deps.NAT == nil {
		if len(rs.NAT) > 0 || len(rs.Forwards) > 0 {
			return errors.New("tunnels: nat44 or port forwards requested but this build of apply cannot program NAT")
		}
		// Tests without nftables, and no NAT asked: the firewall is
		// someone else's to check.
		return nil
	}
	changed, err := deps.NAT.Apply(rs)
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	// "unchanged" tells the reconciler (and a restarted daemon's first
	// pass) that the tables in force were adopted, not rebuilt.
	res := map[bool]string{true: "set", false: "unchanged"}[changed]
	for _, r := range rs.NAT {
		add(Step{What: fmt.Sprintf("nat44: %s masqueraded to %s", r.Ifname, r.Addr), Result: res})
	}
	for i, f := range rs.Forwards {
		add(Step{What: fmt.Sprintf("firewall.forward[%d]: %s %s:%d to %s:%d", i, f.Proto, f.Addr, f.Port, f.To, f.ToPort), Result: res})
	}
	if fw := rs.Firewall; fw != nil {
		add(Step{What: fmt.Sprintf("firewall: default (table inet %s: %d wan-side and %d lan interfaces, %d pinholes)",
			nftTable, len(fw.WAN), len(fw.LANs), len(fw.Pinholes)), Result: res})
	} else {
		add(Step{What: "firewall: off (your own ruleset filters)", Result: res})
	}
	for _, p := range pending {
		add(Step{What: p, Result: "waiting"})
	}
	return nil
}
