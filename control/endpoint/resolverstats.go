package endpoint

import (
	"net/netip"
	"time"
)

// Failures counts failed queries by reason (the Reason constants).
type Failures map[string]uint64

// NameStats is the resolver's state and counters for one name.
type NameStats struct {
	Name  string       `json:"name"`
	Addrs []netip.Addr `json:"addrs"` // the answer in force (kept through failures)
	// Until is when the answer in force was due to be refreshed; Stale
	// says that time has passed and re-resolution keeps failing.
	Until       time.Time      `json:"until,omitzero"`
	Stale       bool           `json:"stale"`
	NextRefresh time.Time      `json:"next_refresh,omitzero"`
	Server      netip.AddrPort `json:"server,omitzero"` // that gave the answer in force
	Queries     uint64         `json:"queries"`
	Answers     uint64         `json:"answers"`
	Failures    Failures       `json:"failures"`
	// Refused counts addresses in answers that were not used, by why
	// (the Refused* constants); an answer with nothing else is a failure
	// and the answer in force stays.
	Refused map[string]uint64 `json:"refused,omitempty"`
	// Changes counts answers published (the first one included).
	Changes uint64 `json:"changes"`
	// FailedInARow counts resolutions (all servers tried) that failed
	// since the last answer; it drives the retry backoff.
	FailedInARow int       `json:"failed_in_a_row"`
	LastAnswer   time.Time `json:"last_answer,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
}

// ResolverStats is what the status API shows about the resolver.
type ResolverStats struct {
	Servers []netip.AddrPort `json:"servers"`
	// ServerSource is SourceLearned, SourceResolvConf (nothing learned
	// yet: the system's servers stand in) or SourceNone.
	ServerSource string      `json:"server_source"`
	Names        []NameStats `json:"names"`
}
