package config

import "fmt"

// PolicyRouting is the routing tables and rule priorities xdprouter owns
// for source steering (tunnels[].prefixes): traffic from a tunnel's
// prefixes leaves by that tunnel, everything else by the main table.
//
// Rules at Priority send what is addressed to a LAN prefix in force to the
// main table (a host with a tunnel address reaches the other LANs
// directly, not through the peer); tunnels[i] gets table Table+i, holding
// its default route via the gateway and an unreachable route for each of
// its prefixes, and rules at Priority+1+i: `from PREFIX lookup Table+i`
// for its prefixes and link net, `to PREFIX lookup Table+i` for its
// prefixes (what no LAN uses is unreachable, not sent back to the peer).
// Every rule and route carries protocol 200; xdprouter removes those it
// no longer wants and leaves everything else alone.
type PolicyRouting struct {
	Table    int
	Priority int
}

// Defaults of the policy-routing section, away from the kernel's own
// tables (253-255) and rules (0, 32766, 32767) and from wg-quick's
// 51820 and Tailscale's 52 and 5210-5270.
const (
	DefaultSteeringTable    = 2000
	DefaultSteeringPriority = 2000
	// MaxSteeredTunnels is how many table numbers and rule priorities
	// past the bases xdprouter owns: tunnels[0] to tunnels[63].
	MaxSteeredTunnels = 64
)

type rawPolicyRouting struct {
	Table    *int `yaml:"table"`
	Priority *int `yaml:"priority"`
}

func (r *rawPolicyRouting) validate(path string) (PolicyRouting, error) {
	pr := PolicyRouting{Table: DefaultSteeringTable, Priority: DefaultSteeringPriority}
	if r == nil {
		return pr, nil
	}
	if r.Table != nil {
		t := *r.Table
		// 0 is "unspecified", 253-255 are default, main and local.
		if t < 1 || t > 1<<32-1-MaxSteeredTunnels {
			return pr, fmt.Errorf("%s.table: %d is out of range 1-%d", path, t, 1<<32-1-MaxSteeredTunnels)
		}
		if t <= 255 && t+MaxSteeredTunnels > 253 {
			return pr, fmt.Errorf("%s.table: %d-%d would include the kernel's tables 253-255 (default, main, local)", path, t, t+MaxSteeredTunnels-1)
		}
		pr.Table = t
	}
	if r.Priority != nil {
		p := *r.Priority
		// Before the main table's rule (32766), after the local one (0).
		if p < 1 || p+MaxSteeredTunnels > 32765 {
			return pr, fmt.Errorf("%s.priority: %d is out of range 1-%d (the rules %d-%d must come before the main table's at 32766)",
				path, p, 32765-MaxSteeredTunnels, p, p+MaxSteeredTunnels)
		}
		pr.Priority = p
	}
	return pr, nil
}

// steering hands out each steered tunnel's table and rule priority.
type steering struct{ pr PolicyRouting }

func newSteering(pr PolicyRouting) steering { return steering{pr} }

// assign gives tunnels[i] its table and priority when it has prefixes.
func (s steering) assign(path string, i int, v *Routed) error {
	if len(v.Prefixes) == 0 {
		return nil
	}
	if i >= MaxSteeredTunnels {
		return fmt.Errorf("%s.prefixes: only tunnels[0] to tunnels[%d] can steer by source (policy-routing owns %d tables)", path, MaxSteeredTunnels-1, MaxSteeredTunnels)
	}
	v.Table = s.pr.Table + i
	v.Priority = s.pr.Priority + 1 + i
	return nil
}
