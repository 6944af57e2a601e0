package lanra

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/control/ndpsock"
	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
	"golang.org/x/net/ipv6"
)

// hostAddr is one address as `ip -j -6 addr` prints it.
type hostAddr struct {
	Local      string `json:"local"`
	PrefixLen  int    `json:"prefixlen"`
	Scope      string `json:"scope"`
	Deprecated bool   `json:"deprecated"`
	Valid      uint32 `json:"valid_life_time"`
	Preferred  uint32 `json:"preferred_life_time"`
}

// TestLinuxHost has the sender advertise on a veth whose other end is a
// plain Linux host (accept_ra on) and checks what the host's kernel made
// of it: SLAAC addresses with the lifetimes sent, deprecation of the old
// prefix on renumbering, the default route gone after the final RA.
func TestLinuxHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	lab, cpe, host := labkit.PairLab(t, labkit.End{NS: "cpe", If: "lan0", Forwarding: true}, labkit.End{NS: "host", If: "eth0"})
	if err := lab.MustExec(host,
		[]string{"sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=1"},
		[]string{"sysctl", "-qw", "net.ipv6.conf.eth0.autoconf=1"},
	); err != nil {
		t.Fatal(err)
	}
	s := &Sender{
		MinInterval: 2 * time.Second, MaxInterval: 3 * time.Second, MinDelay: 500 * time.Millisecond,
		Listen: func(ifname string) (Conn, error) {
			var c Conn
			err := lab.Do(cpe, func() error {
				conn, err := ndpsock.Open(ifname, []ipv6.ICMPType{ipv6.ICMPTypeRouterSolicitation}, allRouters)
				if err == nil {
					c = conn
				}
				return err
			})
			return c, err
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	a := netip.MustParsePrefix("2001:db8:a:1::/64")
	b := netip.MustParsePrefix("2001:db8:b:1::/64")
	now := time.Now()
	pa := learned.Prefix{Prefix: a, Valid: now.Add(3600 * time.Second), Preferred: now.Add(1800 * time.Second)}
	s.Set("lan0", Advert{Prefixes: []learned.Prefix{pa}, MTU: 1480, RouterLifetime: 600 * time.Second,
		DNS: []learned.Server{{Addr: netip.MustParseAddr("2001:db8::53"), Until: learned.Forever}}})
	got := waitHost(t, lab, host, "a SLAAC address in "+a.String(), func(addrs []hostAddr) bool {
		x := inPrefix(addrs, a)
		return x != nil && !x.Deprecated
	})
	x := inPrefix(got, a)
	if x.Valid > 3600 || x.Valid < 3590 || x.Preferred > 1800 || x.Preferred < 1790 {
		t.Errorf("host address %+v, want valid_lft ~3600 and preferred_lft ~1800 as advertised", x)
	}
	if out, err := lab.Exec(host, "ip", "-6", "route", "show", "default"); err != nil || !strings.Contains(out, "via fe80::") {
		t.Errorf("host default route %q (%v), want one via the sender's link-local address", out, err)
	}
	if out, err := lab.Exec(host, "sysctl", "-n", "net.ipv6.conf.eth0.mtu"); err != nil || strings.TrimSpace(out) != "1480" {
		t.Errorf("host IPv6 MTU %q (%v), want 1480 from the MTU option", out, err)
	}

	// Renumbering: a is deprecated, b is new.
	now = time.Now()
	pa.Preferred, pa.Valid = now, now.Add(600*time.Second)
	pb := learned.Prefix{Prefix: b, Valid: now.Add(3600 * time.Second), Preferred: now.Add(1800 * time.Second)}
	s.Set("lan0", Advert{Prefixes: []learned.Prefix{pa, pb}, MTU: 1480, RouterLifetime: 600 * time.Second})
	got = waitHost(t, lab, host, a.String()+" deprecated and "+b.String()+" preferred", func(addrs []hostAddr) bool {
		xa, xb := inPrefix(addrs, a), inPrefix(addrs, b)
		// The flag as well as the lifetime: the kernel zeroes the
		// preferred lifetime when the RA arrives and flags the address
		// deprecated in its address timer a moment later.
		return xa != nil && xb != nil && xa.Preferred == 0 && xa.Deprecated && xb.Preferred > 0
	})
	took := time.Since(now)
	t.Logf("the host saw the renumbering %v after Set", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("renumbering reached the host after %v, want within 2 s", took)
	}
	logHost(t, lab, host)

	// The final RA: the host drops its default route.
	s.Remove("lan0")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := lab.Exec(host, "ip", "-6", "route", "show", "default")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host default route still %q 10 s after Remove", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := s.Stats().Interfaces
	t.Logf("stats: %+v", st)
	if len(st) != 1 || st[0].Final != 1 || st[0].Unsolicited < 2 || st[0].SendErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func inPrefix(addrs []hostAddr, p netip.Prefix) *hostAddr {
	for i, a := range addrs {
		if ip, err := netip.ParseAddr(a.Local); err == nil && p.Contains(ip) {
			return &addrs[i]
		}
	}
	return nil
}

func hostAddrs(lab *netlab.Lab, ns string) ([]hostAddr, error) {
	out, err := lab.Exec(ns, "ip", "-j", "-6", "addr", "show", "dev", "eth0")
	if err != nil {
		return nil, err
	}
	var links []struct {
		AddrInfo []hostAddr `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("ip -j addr: %w: %s", err, out)
	}
	if len(links) != 1 {
		return nil, fmt.Errorf("ip -j addr: %d links", len(links))
	}
	return links[0].AddrInfo, nil
}

func waitHost(t *testing.T, lab *netlab.Lab, ns, what string, ok func([]hostAddr) bool) []hostAddr {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		addrs, err := hostAddrs(lab, ns)
		if err != nil {
			t.Fatal(err)
		}
		if ok(addrs) {
			logHost(t, lab, ns)
			return addrs
		}
		if time.Now().After(deadline) {
			logHost(t, lab, ns)
			t.Fatalf("host has no %s after 20 s: %+v", what, addrs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func logHost(t *testing.T, lab *netlab.Lab, ns string) {
	t.Helper()
	out, _ := lab.Exec(ns, "ip", "-6", "addr", "show", "dev", "eth0")
	route, _ := lab.Exec(ns, "ip", "-6", "route", "show", "default")
	t.Logf("$ ip -6 addr show dev eth0\n%s$ ip -6 route show default\n%s", out, route)
}
