package dhcp6pd

import (
	"encoding/hex"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/xdprouter/xdprouter/control/learned"
)

// lease is one delegated prefix with its deadlines.
type lease struct {
	prefix           netip.Prefix
	preferred, valid time.Time
}

// binding is what the client holds from its server: the prefixes of its
// IA_PD, when to renew and rebind, and the DNS servers the server named.
type binding struct {
	serverID dhcpv6.DUID
	leases   []lease
	t1, t2   time.Time
	dns      []netip.Addr
}

// apply merges an IA_PD from a Reply received at now (RFC 8415 section
// 18.2.10.1): prefixes with valid lifetime 0 are withdrawn, the others
// added or refreshed, and prefixes the server did not mention keep their
// old lifetimes.
func (b *binding) apply(now time.Time, ia iaResult) {
	for _, o := range ia.prefixes {
		i := slices.IndexFunc(b.leases, func(l lease) bool { return l.prefix == o.prefix })
		if o.valid == 0 {
			if i >= 0 {
				b.leases = slices.Delete(b.leases, i, i+1)
			}
			continue
		}
		l := lease{prefix: o.prefix, preferred: learned.Deadline(now, o.preferred), valid: learned.Deadline(now, o.valid)}
		if i >= 0 {
			b.leases[i] = l
		} else {
			b.leases = append(b.leases, l)
		}
	}
	b.setTimers(now, ia.t1, ia.t2)
}

// setTimers sets T1 and T2 from the server's values; a 0 leaves the
// choice to the client, which takes 0.5 and 0.8 of the shortest preferred
// lifetime (RFC 8415 section 14.2).
func (b *binding) setTimers(now time.Time, t1, t2 time.Duration) {
	shortest := learned.Infinite
	for _, l := range b.leases {
		lt := learned.Remaining(l.preferred, now)
		if lt == 0 {
			// A deprecated prefix says nothing about when to renew.
			lt = learned.Remaining(l.valid, now)
		}
		if lt < shortest {
			shortest = lt
		}
	}
	if t1 == 0 {
		t1 = shortest / 2
		if shortest >= learned.Infinite {
			t1 = learned.Infinite
		}
	}
	if t2 == 0 {
		t2 = shortest * 4 / 5
		if shortest >= learned.Infinite {
			t2 = learned.Infinite
		}
	}
	if t1 > t2 {
		t1 = t2
	}
	b.t1, b.t2 = learned.Deadline(now, t1), learned.Deadline(now, t2)
}

// expire drops the prefixes whose valid lifetime has ended by now and
// reports whether any went.
func (b *binding) expire(now time.Time) bool {
	n := len(b.leases)
	b.leases = slices.DeleteFunc(b.leases, func(l lease) bool { return !now.Before(l.valid) })
	return len(b.leases) != n
}

// end is when the last prefix expires (zero without prefixes).
func (b *binding) end() time.Time {
	var end time.Time
	for _, l := range b.leases {
		if l.valid.After(end) {
			end = l.valid
		}
	}
	return end
}

// firstExpiry is when the next prefix expires (zero without prefixes).
func (b *binding) firstExpiry() time.Time {
	var first time.Time
	for _, l := range b.leases {
		if first.IsZero() || l.valid.Before(first) {
			first = l.valid
		}
	}
	return first
}

func (b *binding) serverHex() string {
	if b.serverID == nil {
		return ""
	}
	return hex.EncodeToString(b.serverID.ToBytes())
}

// delegation is the published view of the binding.
func (b *binding) delegation(ifname string) learned.Delegation {
	d := learned.Delegation{Interface: ifname}
	if len(b.leases) == 0 {
		return d
	}
	for _, l := range b.leases {
		d.Prefixes = append(d.Prefixes, learned.Prefix{Prefix: l.prefix, Valid: l.valid, Preferred: l.preferred})
	}
	d.DNS = slices.Clone(b.dns)
	d.T1, d.T2 = b.t1, b.t2
	d.ServerID = b.serverHex()
	return d
}

// sameDelegation compares two published views.
func sameDelegation(a, b learned.Delegation) bool {
	return a.Interface == b.Interface && a.ServerID == b.ServerID &&
		a.T1.Equal(b.T1) && a.T2.Equal(b.T2) &&
		slices.Equal(a.DNS, b.DNS) &&
		slices.EqualFunc(a.Prefixes, b.Prefixes, func(x, y learned.Prefix) bool {
			return x.Prefix == y.Prefix && x.Valid.Equal(y.Valid) && x.Preferred.Equal(y.Preferred)
		})
}

func (b *binding) prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(b.leases))
	for _, l := range b.leases {
		out = append(out, l.prefix)
	}
	return out
}

// offered is the binding as an IA_PD to request again.
func (b *binding) offered() []offered {
	out := make([]offered, 0, len(b.leases))
	for _, l := range b.leases {
		out = append(out, offered{prefix: l.prefix, valid: 1})
	}
	return out
}
