package lab

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/test/labkit"
)

// NetlinkNet6 on a real kernel: addresses with the ISP's lifetimes (the
// kernel counts them down), a default route replaced in one step, and
// unreachable routes over delegated space.
func TestNetlinkNet6(t *testing.T) {
	needRoot(t)
	lab, r, _ := labkit.PairLab(t, labkit.End{NS: "r", If: "wan0", Forwarding: true}, labkit.End{NS: "p", If: "up0"})
	var n control.NetlinkNet6
	in := func(fn func() error) {
		t.Helper()
		if err := lab.Do(r, fn); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	a := control.Addr6{Interface: "wan0", Prefix: netip.MustParsePrefix("2001:db8:1:2::feed/64"),
		Valid: now.Add(90 * time.Minute), Preferred: now.Add(30 * time.Minute)}
	var res []string
	in(func() error {
		for i := 0; i < 2; i++ {
			s, err := n.EnsureAddr(a, now)
			if err != nil {
				return err
			}
			res = append(res, s)
		}
		return nil
	})
	if strings.Join(res, ",") != "added,refreshed" {
		t.Errorf("EnsureAddr twice: %v", res)
	}
	out, _ := lab.Exec(r, "ip", "-6", "addr", "show", "dev", "wan0", "scope", "global")
	m := regexp.MustCompile(`inet6 2001:db8:1:2::feed/64 .*\n\s+valid_lft (\d+)sec preferred_lft (\d+)sec`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("address not installed with lifetimes:\n%s", out)
	}
	if v, _ := strconv.Atoi(m[1]); v < 5390 || v > 5400 {
		t.Errorf("valid_lft %d, want about 5400", v)
	}
	if pr, _ := strconv.Atoi(m[2]); pr < 1790 || pr > 1800 {
		t.Errorf("preferred_lft %d, want about 1800", pr)
	}
	if strings.Contains(out, "tentative") {
		t.Errorf("the router's address waits for DAD:\n%s", out)
	}

	route := func() string {
		out, _ := lab.Exec(r, "ip", "-6", "route", "show", "default")
		return strings.TrimSpace(out)
	}
	for _, gw := range []string{"fe80::1", "fe80::2"} {
		in(func() error {
			_, err := n.SetDefault("wan0", netip.MustParseAddr(gw))
			return err
		})
		if got := route(); got != "default via "+gw+" dev wan0 proto 200 metric 1023 pref medium" {
			t.Errorf("default route %q, want via %s", got, gw)
		}
	}
	in(func() error {
		s, err := n.SetDefault("wan0", netip.MustParseAddr("fe80::2"))
		if s != "unchanged" {
			t.Errorf("same gateway again: %q", s)
		}
		return err
	})
	in(func() error {
		_, err := n.SetDefault("wan0", netip.Addr{})
		return err
	})
	if got := route(); got != "" {
		t.Errorf("default route left: %q", got)
	}

	d1, d2 := netip.MustParsePrefix("2001:db8:100:ab00::/56"), netip.MustParsePrefix("2001:db8:200::/48")
	unreach := func() string {
		out, _ := lab.Exec(r, "ip", "-6", "route", "show", "type", "unreachable", "proto", "200")
		return out
	}
	in(func() error {
		_, err := n.SyncUnreachable([]netip.Prefix{d1, d2})
		return err
	})
	if u := unreach(); !strings.Contains(u, d1.String()) || !strings.Contains(u, d2.String()) {
		t.Errorf("unreachable routes:\n%s", u)
	}
	in(func() error {
		_, err := n.SyncUnreachable([]netip.Prefix{d2})
		return err
	})
	if u := unreach(); strings.Contains(u, d1.String()) || !strings.Contains(u, d2.String()) {
		t.Errorf("after sync to %s:\n%s", d2, u)
	}
	in(func() error { return n.RemoveAddr("wan0", a.Prefix) })
	in(func() error { return n.RemoveAddr("wan0", a.Prefix) }) // already gone: fine
	if out, _ := lab.Exec(r, "ip", "-6", "addr", "show", "dev", "wan0", "scope", "global"); strings.Contains(out, "feed") {
		t.Errorf("address left:\n%s", out)
	}
	// An infinite lifetime is "forever" to the kernel.
	a.Valid, a.Preferred = learned.Forever, learned.Forever
	in(func() error { _, err := n.EnsureAddr(a, now); return err })
	if out, _ := lab.Exec(r, "ip", "-6", "addr", "show", "dev", "wan0", "scope", "global"); !strings.Contains(out, "valid_lft forever preferred_lft forever") {
		t.Errorf("infinite lifetime:\n%s", out)
	}
}
