package lanra

import "time"

// Stats is what the sender has done, for the status API.
type Stats struct {
	Interfaces []InterfaceStats `json:"interfaces"`
}

// InterfaceStats is one LAN interface's counters.
type InterfaceStats struct {
	Interface string `json:"interface"`
	// Advertising is false once the interface was removed (or the
	// sender stopped): its final RA has gone out.
	Advertising bool   `json:"advertising"`
	Source      string `json:"source,omitempty"` // link-local address RAs come from
	Unsolicited uint64 `json:"ra_unsolicited"`
	Solicited   uint64 `json:"ra_solicited"`
	Final       uint64 `json:"ra_final"`
	RSReceived  uint64 `json:"rs_received"`
	// RSInvalid counts solicitations ignored, by reason (Reject*).
	RSInvalid    map[string]uint64 `json:"rs_invalid,omitempty"`
	SendErrors   uint64            `json:"send_errors"`
	SocketErrors uint64            `json:"socket_errors"`
	LastSent     time.Time         `json:"last_sent,omitzero"`
	// LastSendError is the last send the kernel refused, and when; an
	// RA refused is tried again a second later (the interface is
	// advertising again once LastSent is later).
	LastSendError   string    `json:"last_send_error,omitempty"`
	LastSendErrorAt time.Time `json:"last_send_error_at,omitzero"`
	// RouterLifetime (seconds) and Prefixes are as in the last RA sent.
	RouterLifetime int          `json:"router_lifetime"`
	Prefixes       []PrefixStat `json:"prefixes"`
	// DNSWithheld are the learned DNS servers the last RA left out: not
	// global unicast, or the router's own address (Advert.DNS).
	DNSWithheld []string `json:"dns_withheld,omitempty"`
}
