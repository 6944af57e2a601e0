package wanra

import (
	"maps"
	"time"
)

// Stats is what the tracker has done, for the status API.
type Stats struct {
	Interface string `json:"interface"`
	Received  uint64 `json:"ra_received"`
	Accepted  uint64 `json:"ra_accepted"`
	// Rejected counts RAs by the reason they failed validation (the
	// Reject* constants).
	Rejected map[string]uint64 `json:"ra_rejected,omitempty"`
	// IgnoredOptions counts options of accepted RAs that were not used
	// (the Ignore* constants).
	IgnoredOptions map[string]uint64 `json:"ra_options_ignored,omitempty"`
	RSSent         uint64            `json:"rs_sent"`
	SendErrors     uint64            `json:"send_errors"`
	// SocketErrors counts failures to open or read the socket (each is
	// followed by a retry).
	SocketErrors uint64    `json:"socket_errors"`
	LastRA       time.Time `json:"last_ra,omitzero"`
	LastRASource string    `json:"last_ra_source,omitempty"`
	// Routers and Prefixes are the live entries in the last snapshot.
	Routers  int `json:"routers"`
	Prefixes int `json:"prefixes"`
}

// Stats returns a copy of the counters.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	s.Rejected = maps.Clone(s.Rejected)
	s.IgnoredOptions = maps.Clone(s.IgnoredOptions)
	return s
}

func (t *Tracker) count(f func(*Stats)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.stats)
}
