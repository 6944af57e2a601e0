package control

import (
	"fmt"
	"maps"
	"net/netip"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/control/learned"
)

// Inputs is everything the desired state is computed from: the config in
// force and what control-plane tasks have learned (Router Advertisements,
// a delegated prefix, tunnel remotes' addresses). The reconciler owns the
// current Inputs; tasks change them only by sending an InputChange.
type Inputs struct {
	Config *config.Config
	// Generation counts the configs put in force by this process, 1 for
	// the one it started with; a rejected config does not count.
	Generation uint64
	Learned    Learned
}

// Learned is what the daemon's tasks have reported. The RA and PD values
// are replaced whole, never changed in place, so sharing them is safe.
type Learned struct {
	RA      *learned.RA               // WAN Router Advertisements; nil until heard
	PD      *learned.Delegation       // DHCPv6-PD binding; nil until there is one
	Remotes map[string]learned.Remote // tunnel remote DNS name -> its addresses
	// Retired holds, per LAN interface, prefixes it advertised before a
	// renumbering: they stay advertised with preferred lifetime 0 until
	// their valid lifetime ends, so hosts move to the new prefix.
	Retired map[string][]learned.Prefix
	// WANPrefix is the /64 the WAN address was made in by the pass
	// before (the reconciler sets it): the plan keeps it while its
	// router still advertises it preferred, so that equal choices do
	// not take turns.
	WANPrefix netip.Prefix `json:"wan_prefix_in_use,omitzero"`
}

func (l Learned) clone() Learned {
	out := l
	out.Remotes = maps.Clone(l.Remotes)
	out.Retired = maps.Clone(l.Retired)
	return out
}

// InputChange is one change to the Inputs: exactly one of Config, RA, PD,
// Remote or Retry is set.
type InputChange struct {
	Config *config.Config      // a new config (from a reload)
	RA     *learned.RA         // what the WAN RA tracker now knows
	PD     *learned.Delegation // the DHCPv6-PD binding now (no prefixes: lost)
	Remote *learned.Remote     // a tunnel remote name's current addresses
	// Retry asks for a pass with the same inputs, saying why: an
	// interface the config names appeared or went.
	Retry string
	// Result, when set, receives the outcome of the pass that applied
	// this change (nil when it is in force).
	Result chan<- error
}

func (c InputChange) String() string {
	switch {
	case c.Config != nil:
		return "new config"
	case c.RA != nil:
		return fmt.Sprintf("router advertisements on %s: %d prefixes, %d routers", c.RA.Interface, len(c.RA.Prefixes), len(c.RA.Routers))
	case c.PD != nil:
		if len(c.PD.Prefixes) == 0 {
			return "delegated prefix lost"
		}
		return fmt.Sprintf("delegated prefix %s", c.PD.Prefixes[0].Prefix)
	case c.Remote != nil:
		return fmt.Sprintf("%s resolved to %v", c.Remote.Name, c.Remote.Addrs)
	case c.Retry != "":
		return c.Retry
	}
	return "no change"
}

func (in Inputs) with(c InputChange) Inputs {
	out := in
	out.Learned = in.Learned.clone()
	switch {
	case c.Config != nil:
		out.Config = c.Config
		out.Generation++
	case c.RA != nil:
		out.Learned.RA = c.RA
	case c.PD != nil:
		out.Learned.PD = c.PD
	case c.Remote != nil:
		if out.Learned.Remotes == nil {
			out.Learned.Remotes = map[string]learned.Remote{}
		}
		if len(c.Remote.Addrs) == 0 {
			delete(out.Learned.Remotes, c.Remote.Name) // withdrawn
		} else {
			out.Learned.Remotes[c.Remote.Name] = *c.Remote
		}
	}
	return out
}
