// Package api is the daemon's local status API: HTTP with JSON over a
// root-only unix socket, served by `xdprouter run` and read by
// `xdprouter status` and `xdprouter stats`.
package api

import (
	"encoding/json"
	"time"

	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/loader"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/xdprouter/xdprouter.sock"

// Status is `xdprouter status --json` when a daemon runs: the pinned
// state, as without one, plus the daemon's own.
type Status struct {
	loader.Status
	// Firewall is xdprouter's nftables state as the kernel holds it
	// (mode, rules, counters); nil where nft is not installed.
	Firewall *control.FirewallStatus `json:"firewall,omitempty"`
	// Steering is xdprouter's source steering as the kernel holds it:
	// its policy rules and the routes of its tables (policy-routing);
	// nil when there is none.
	Steering *control.SteeringState `json:"steering,omitempty"`
	Daemon   *Daemon                `json:"daemon,omitempty"`
	// OuterFragments says what becomes of ipip6 and 6in4 fragmented in
	// the outer header (only the daemon decapsulates them); empty without
	// tunnels. The name is older than 6in4.
	OuterFragments string `json:"ipip6_outer_fragments,omitempty"`
}

// Daemon describes the running daemon and its reconciler.
type Daemon struct {
	PID        int       `json:"pid"`
	ConfigFile string    `json:"config_file"`
	Started    time.Time `json:"started"`
	control.ReconcileStats
	// LastReloadError is why the last SIGHUP's config was not put in
	// force; empty when it was.
	LastReloadError string `json:"last_reload_error,omitempty"`
	// IPv6 is what the learned prefixes mean for the router now: WAN
	// address, default router, LAN prefixes, what waits for an input.
	IPv6 *control.Plan `json:"ipv6,omitempty"`
	// Learned is what the tasks reported (RA, DHCPv6-PD, DNS).
	Learned *control.Learned `json:"learned,omitempty"`
	// Tasks holds each control-plane task's counters (its Stats as
	// JSON), by task name.
	Tasks map[string]json.RawMessage `json:"tasks,omitempty"`
}

// Backend is what the server reports from.
type Backend interface {
	// BPFFS is the directory of the state the daemon manages.
	BPFFS() string
	Status() (Status, error)
	Counters() ([]loader.Counter, error)
}

type errorBody struct {
	Error string `json:"error"`
}
