package endpoint

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Issue 13 item 5: an AFTR name that resolves to ::, ff02::1, ::1,
// fe80::1 or an IPv4-mapped address is no tunnel remote: such addresses
// are left out and counted, an answer with nothing else is a failure, and
// the answer in force stays.
func TestResolverRefusesUnusableAddresses(t *testing.T) {
	srv, err := startDNS(t, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	const name = "aftr.example.jp"
	srv.set(name, record{addrs: []string{"2404:8e00::feed:140"}, ttl: 60})
	rig := startResolver(t, srv.Addr.Port(), "")
	rig.dns.SetServers([]netip.Addr{srv.Addr.Addr()})
	rig.r.SetNames([]string{name})
	rig.published(t)
	rig.idle(t)

	for i, bad := range [][]string{{"::"}, {"ff02::1"}, {"::1"}, {"fe80::1"}, {"::ffff:192.0.2.1"}, {"::", "fe80::1", "ff02::1"}} {
		srv.set(name, record{addrs: bad, ttl: 60})
		rig.clock.Advance(time.Minute)
		eventually(t, "failure counted", func() bool { return rig.name(t, name).FailedInARow == i+1 })
		rig.idle(t) // nothing published
		if n := rig.name(t, name); !slices.Equal(n.Addrs, addrs("2404:8e00::feed:140")) || n.LastError == "" {
			t.Fatalf("after an answer of %v: %+v, want the last good answer kept", bad, n)
		}
	}
	// (An IPv4-mapped AAAA is dropped when the answer is parsed: that
	// one failed as no_aaaa.)
	n := rig.name(t, name)
	want := map[string]uint64{RefusedUnspecified: 2, RefusedMulticast: 2, RefusedLoopback: 1, RefusedLinkLocal: 2}
	for k, v := range want {
		if n.Refused[k] != v {
			t.Errorf("refused %v, want %v", n.Refused, want)
			break
		}
	}
	// A mixed answer: the good address is used, the rest counted.
	srv.set(name, record{addrs: []string{"::", "2404:8e00::feed:141"}, ttl: 60})
	rig.clock.Advance(time.Minute)
	if got := rig.published(t); !slices.Equal(got.Addrs, addrs("2404:8e00::feed:141")) {
		t.Errorf("published %v, want only the global address", got.Addrs)
	}
	if n := rig.name(t, name); n.Refused[RefusedUnspecified] != 3 || n.FailedInARow != 0 {
		t.Errorf("after a mixed answer: %+v", n)
	}
}
