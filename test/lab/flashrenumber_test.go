package lab

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// Issue 13 item 6, RFC 8978 flash renumbering: the ISP's router restarts
// advertising a new /64 and simply stops advertising the old one (what
// an HGW reboot does; no RA withdraws it). The WAN address and the
// tunnel's `local: auto` follow within one RA interval (radvd's
// MaxRtrAdvInterval, 4 s here); before, they stayed on the old prefix,
// the numerically first, until its lifetimes ran out (hours on FLET'S).
func TestIPoEFlashRenumbering(t *testing.T) {
	needRoot(t)
	needISP(t, "radvd", "kea-dhcp6")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := newIPoELab(t, ctx)
	topo, lab := l.topo, l.topo.Lab
	feed := func(p netip.Prefix) string { return strings.TrimSuffix(p.Addr().String(), "::") + "::feed" }
	wan1, wan2 := feed(labkit.IPoEWAN1), feed(labkit.IPoEWAN2)
	tunnelLocal := func(want string) bool {
		st, err := l.cli.Status(ctx)
		return err == nil && len(st.Tunnels) == 1 && st.Tunnels[0].Local == want
	}
	took := l.waitStatus(t, ctx, "WAN address and tunnel on the first prefix", 30*time.Second, func(d labkit.DaemonStatus) bool {
		return wanAddress(d) == wan1+"/64" && d.IPv6.Gateway != "" && tunnelLocal(wan1)
	})
	t.Logf("WAN address and tunnel local both %s after %s", wan1, took)

	// The ISP's router goes down (radvd's final RA says router lifetime
	// 0, the prefix as before) and comes back with another /64, the old
	// one never mentioned again. The old prefix sorts first.
	if _, err := lab.Exec(topo.ISP, "ip", "-6", "addr", "add", netip.PrefixFrom(labkit.IPoEWAN2.Addr().Next(), 64).String(), "dev", labkit.ISPWANIf, "nodad"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Radvd.Stop(); err != nil {
		t.Fatal(err)
	}
	cfg := topo.RadvdConfig(labkit.IPoEWAN2, netip.Prefix{}, 5400*time.Second)
	r, err := labkit.StartRadvd(lab, topo.ISP, cfg)
	if err != nil {
		t.Fatal(err)
	}
	topo.Radvd = r // stopped by the topology's Close
	took = l.waitStatus(t, ctx, "WAN address and tunnel local on the new prefix", 10*time.Second, func(d labkit.DaemonStatus) bool {
		return wanAddress(d) == wan2+"/64" && d.IPv6.Gateway != "" && tunnelLocal(wan2)
	})
	t.Logf("moved to %s %s after radvd started again (RA interval %s)", wan2, took, cfg.MaxInterval)
	if took > cfg.MaxInterval+time.Second {
		t.Errorf("the move took %s, more than one RA interval (%s)", took, cfg.MaxInterval)
	}
	// The kernel holds the new WAN address, not the old one; the old
	// prefix is still known, deprecated, its valid lifetime untouched.
	out, err := lab.Exec(topo.Router, "ip", "-6", "addr", "show", "dev", labkit.TunWANIf, "scope", "global")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, wan2+"/64") || strings.Contains(out, wan1+"/64") {
		t.Errorf("router WAN addresses:\n%s\nwant %s/64 and not %s/64", out, wan2, wan1)
	}
	st, err := l.cli.Status(ctx)
	if err != nil || st.Daemon == nil {
		t.Fatalf("status: %v", err)
	}
	var ra struct {
		Renumbered uint64 `json:"prefixes_deprecated_renumbered"`
	}
	if err := json.Unmarshal(st.Daemon.Tasks["wan-ra"], &ra); err != nil || ra.Renumbered != 1 {
		t.Errorf("wan-ra stats %s: want prefixes_deprecated_renumbered 1", st.Daemon.Tasks["wan-ra"])
	}
	if !strings.Contains(l.d.Log(), "RFC 8978 flash renumbering") {
		t.Errorf("no log line for the deprecated prefix:\n%s", l.d.Log())
	}
	// The router still reaches the ISP from its new address.
	if _, err := l.cli.Runner.Ping(ctx, topo.Router, labkit.IPoEWAN2.Addr().Next(), 2); err != nil {
		t.Errorf("router -> ISP on the new prefix: %v", err)
	}
}
