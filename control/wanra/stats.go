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
	// Dropped counts entries not learned because their table was at its
	// limit (Limits), by table (the Table* constants).
	Dropped map[string]uint64 `json:"dropped_table_full,omitempty"`
	// Renumbered counts prefixes deprecated because the router that
	// advertised them sent an RA with a new prefix and without them
	// (flash renumbering, RFC 8978).
	Renumbered uint64 `json:"prefixes_deprecated_renumbered"`
	// ManagedSeen counts routers that began to advertise the M or O
	// flag (each restarts the DHCPv6 client's solicitation).
	ManagedSeen uint64 `json:"managed_flag_seen"`
	// Routers, Prefixes, DNS, DNSSL and RouterAddrs are the live entries in the last
	// snapshot; Limits are the most each table holds.
	Routers  int `json:"routers"`
	Prefixes int `json:"prefixes"`
	DNS      int `json:"dns_servers"`
	DNSSL    int `json:"dnssl_domains"`
	// RouterAddrs are the routers' global addresses (R flag) held.
	RouterAddrs int            `json:"router_addresses"`
	Limits      map[string]int `json:"limits"`
}

// Stats returns a copy of the counters.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	s.Rejected = maps.Clone(s.Rejected)
	s.IgnoredOptions = maps.Clone(s.IgnoredOptions)
	s.Dropped = maps.Clone(s.Dropped)
	s.Limits = maps.Clone(limits)
	return s
}

func (t *Tracker) count(f func(*Stats)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.stats)
}
