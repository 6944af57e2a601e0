package dhcp6pd

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/xdprouter/xdprouter/control/learned"
)

// State is where the client is in RFC 8415's exchanges.
type State string

const (
	StateStarting   State = "starting" // waiting for the socket
	StateSoliciting State = "soliciting"
	StateRequesting State = "requesting"
	StateBound      State = "bound"
	StateRenewing   State = "renewing"
	StateRebinding  State = "rebinding"
	StateReleasing  State = "releasing"
	StateStopped    State = "stopped"
)

// Stats is a snapshot of the client for the status API.
type Stats struct {
	Interface string `json:"interface"`
	State     State  `json:"state"`
	DUID      string `json:"duid,omitempty"`
	IAID      string `json:"iaid,omitempty"`
	// Sent and Received count messages by type ("solicit", "reply", ...).
	Sent            map[string]uint64 `json:"sent"`
	Received        map[string]uint64 `json:"received"`
	Retransmissions uint64            `json:"retransmissions"`
	// StatusCodes counts the non-success status codes servers sent.
	StatusCodes map[string]uint64 `json:"status_codes"`
	// Ignored counts received messages not acted on: malformed, another
	// client's or transaction's, or an Advertise without a prefix.
	Ignored  uint64 `json:"ignored"`
	Bound    uint64 `json:"bound"`    // Replies that established a binding
	Renewed  uint64 `json:"renewed"`  // successful Renew exchanges
	Rebound  uint64 `json:"rebound"`  // successful Rebind exchanges
	Expired  uint64 `json:"expired"`  // bindings lost at the end of the valid lifetime
	Backoffs uint64 `json:"backoffs"` // Solicits delayed after a failure
	// Restarts counts solicitations started again at once because the
	// link came up or a router began to advertise M/O (Client.Restart);
	// RestartsSkipped those asked for within MinRestartGap of the last.
	Restarts        uint64 `json:"restarts"`
	RestartsSkipped uint64 `json:"restarts_skipped"`
	SendErrors      uint64 `json:"send_errors"`
	// SocketErrors counts failures to open or read the socket.
	SocketErrors uint64    `json:"socket_errors"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	Binding      *Binding  `json:"binding,omitempty"`
}

// Binding is the delegation held, with lifetimes left in seconds.
type Binding struct {
	ServerID string        `json:"server_id"`
	Prefixes []PrefixLease `json:"prefixes"`
	DNS      []netip.Addr  `json:"dns,omitempty"`
	T1       time.Time     `json:"t1"`
	T2       time.Time     `json:"t2"`
	Received time.Time     `json:"received"`
}

// PrefixLease is one delegated prefix.
type PrefixLease struct {
	Prefix    netip.Prefix `json:"prefix"`
	Valid     uint32       `json:"valid_lifetime"`
	Preferred uint32       `json:"preferred_lifetime"`
}

func (s *Stats) clone() Stats {
	c := *s
	c.Sent = maps.Clone(s.Sent)
	c.Received = maps.Clone(s.Received)
	c.StatusCodes = maps.Clone(s.StatusCodes)
	if s.Binding != nil {
		b := *s.Binding
		b.Prefixes = slices.Clone(b.Prefixes)
		b.DNS = slices.Clone(b.DNS)
		c.Binding = &b
	}
	return c
}

func typeName(t dhcpv6.MessageType) string {
	return strings.ToLower(t.String())
}

func seconds(d time.Duration) uint32 {
	if d >= learned.Infinite {
		return 0xffffffff
	}
	return uint32(d / time.Second)
}
