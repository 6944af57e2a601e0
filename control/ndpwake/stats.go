package ndpwake

import (
	"maps"
	"slices"
	"time"
)

// Stats is what the waker has done, for the status API.
type Stats struct {
	// Interfaces are the proxy interfaces whose socket is open.
	Interfaces []string `json:"interfaces"`
	// NSSeen counts solicitations the XDP proxy passed to the kernel
	// (a target without a resolved neighbour, or not proxied at all).
	NSSeen uint64 `json:"ns_seen"`
	// Ignored counts solicitations not acted on, by reason (Ignore*).
	Ignored map[string]uint64 `json:"ns_ignored,omitempty"`
	// OutsidePrefixes counts targets in no lan-neighbor prefix of the
	// interface.
	OutsidePrefixes uint64 `json:"ns_outside_prefixes"`
	// Probes counts resolutions asked of the kernel, one per target and
	// LAN.
	Probes            uint64 `json:"probes_sent"`
	RateLimitedTarget uint64 `json:"rate_limited_target"`
	RateLimitedGlobal uint64 `json:"rate_limited_global"`
	TableFull         uint64 `json:"rate_limited_table_full"`
	ProbeErrors       uint64 `json:"probe_errors"`
	// SocketErrors counts failures to open or read a socket (each is
	// followed by a retry).
	SocketErrors uint64    `json:"socket_errors"`
	LastProbe    time.Time `json:"last_probe,omitzero"`
	LastTarget   string    `json:"last_target,omitempty"`
}

// Stats returns a copy of the counters.
func (w *Waker) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.Ignored = maps.Clone(s.Ignored)
	s.Interfaces = slices.Clone(s.Interfaces)
	return s
}

func (w *Waker) count(f func(*Stats)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stats.Ignored == nil {
		w.stats.Ignored = map[string]uint64{}
	}
	f(&w.stats)
}
