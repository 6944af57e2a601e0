package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// The firewall lab: upstream — router — lan. The router forwards with the
// kernel alone and runs only the ruleset xdprouter generates; its "fixed"
// interface stands in for a fixed-IPv4 tunnel netdev (a veth to upstream:
// the rules match it by name, and this kernel has no ipip6 anyway).
var (
	fwWANRouter  = netip.MustParseAddr("2001:db8:f::1")
	fwWANUp      = netip.MustParseAddr("2001:db8:f::2")
	fwLANRouter6 = netip.MustParseAddr("2001:db8:1:1::1")
	fwLANHost6   = netip.MustParseAddr("2001:db8:1:1::10")
	fwLANRouter4 = netip.MustParseAddr("192.168.1.1")
	fwLANHost4   = netip.MustParseAddr("192.168.1.10")
	fwFixed4     = netip.MustParseAddr("203.0.113.7")
	fwUp4        = netip.MustParseAddr("198.51.100.2")
	// Sources a LAN host has no right to (BCP 38).
	fwSpoof6 = netip.MustParseAddr("2001:db8:bad::10")
	fwSpoof4 = netip.MustParseAddr("10.99.0.5")
)

const fwConfig = `
wan: {interface: wan0, token: "::1", dhcpv6-pd: {}}
lan: [{interface: lan0, sla-id: 1, ipv4: 192.168.1.1/24}]
tunnels:
  - {name: fixed, remote: "2001:db8:f::2", local: "2001:db8:f::1", ipv4-address: 203.0.113.7, nat44: true, routes: [0.0.0.0/0]}
firewall:
  allow: [{to: "::10", proto: tcp, port: 2222, comment: pinhole}]
  forward: [{tunnel: fixed, proto: tcp, port: 8080, to: 192.168.1.10, to-port: 80, comment: web}]
`

type fwLab struct {
	lab             *netlab.Lab
	up, router, lan string
	rulesetScript   string
	rs              *control.Ruleset
}

func newFirewallLab(t *testing.T) *fwLab {
	t.Helper()
	needRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (Debian package nftables)")
	}
	l := labkit.NewLab(t)
	f := &fwLab{lab: l}
	var err error
	for _, ns := range []struct {
		p   *string
		n   string
		fwd bool
	}{{&f.up, "up", false}, {&f.router, "router", true}, {&f.lan, "lan", false}} {
		if *ns.p, err = l.AddNS(ns.n, ns.fwd); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range [][4]string{{f.up, "up6", f.router, "wan0"}, {f.up, "up4", f.router, "fixed"}, {f.lan, "eth0", f.router, "lan0"}} {
		if err := l.Veth(v[0], v[1], v[2], v[3]); err != nil {
			t.Fatal(err)
		}
	}
	must := func(ns string, cmds ...string) {
		t.Helper()
		for _, c := range cmds {
			if out, err := l.Exec(ns, strings.Fields(c)...); err != nil {
				t.Fatalf("%s: %s: %v %s", ns, c, err, out)
			}
		}
	}
	must(f.router,
		"ip addr add 2001:db8:f::1/64 dev wan0 nodad", "ip -6 route add default via 2001:db8:f::2",
		"ip addr add 2001:db8:1:1::1/64 dev lan0 nodad", "ip addr add 192.168.1.1/24 dev lan0",
		"ip addr add 203.0.113.7/32 dev fixed", "ip route add 198.51.100.0/24 dev fixed", "ip route add default via 198.51.100.2 dev fixed")
	must(f.up,
		"ip addr add 2001:db8:f::2/64 dev up6 nodad", "ip -6 route add 2001:db8:1::/48 via 2001:db8:f::1",
		"ip addr add 198.51.100.2/24 dev up4", "ip route add 203.0.113.7/32 dev up4",
		// An attacker on the tunnel's path routes the LAN subnet at the
		// router, which only the firewall (no NAT) then stops.
		"ip route add 192.168.1.0/24 via 203.0.113.7 dev up4 onlink",
		// Sources that are the router's own addresses, for spoofing.
		"ip addr add 2001:db8:1:1::1/128 dev lo", "ip addr add 192.168.1.1/32 dev lo")
	must(f.lan,
		"ip addr add 2001:db8:1:1::10/64 dev eth0 nodad", "ip -6 route add default via 2001:db8:1:1::1",
		"ip addr add 192.168.1.10/24 dev eth0", "ip route add default via 192.168.1.1",
		"ip addr add 2001:db8:bad::10/128 dev lo", "ip addr add 10.99.0.5/32 dev lo")

	// What the daemon's pass computes with a /56 delegated: lan0 gets
	// 2001:db8:1:1::/64 (sla-id 1).
	cfg, err := config.Parse(strings.NewReader(fwConfig))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	in := control.Inputs{Config: cfg, Learned: control.Learned{PD: &learned.Delegation{Interface: "wan0",
		Prefixes: []learned.Prefix{{Prefix: netip.MustParsePrefix("2001:db8:1::/56"), Valid: now.Add(time.Hour), Preferred: now.Add(time.Hour)}}}}}
	rs, pending := control.RulesetFor(in, control.NewPlan(in, now))
	if len(pending) > 0 {
		t.Fatalf("pending: %v", pending)
	}
	f.rulesetScript, f.rs = rs.Script(), rs
	return f
}

// load puts the generated ruleset in force in the router.
func (f *fwLab) load(t *testing.T) {
	t.Helper()
	if err := f.lab.NFT(f.router, f.rulesetScript); err != nil {
		t.Fatal(err)
	}
}

// counters reads the named counters of xdprouter's tables in the router.
func (f *fwLab) counters(t *testing.T) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	var st *control.FirewallStatus
	if err := f.lab.Do(f.router, func() error {
		// nft talks netlink in the namespace of the thread that runs it;
		// the child inherits this locked thread's namespace.
		st = control.ReadFirewall()
		return nil
	}); err != nil || st == nil || st.Error != "" {
		t.Fatalf("read the firewall: %v %+v", err, st)
	}
	for _, c := range st.Counters {
		out[c.Name] = c.Packets
	}
	return out
}

// listen accepts TCP on addr:port in ns and answers each connection with
// its peer's address, until the test ends.
func (f *fwLab) listen(t *testing.T, ns string, addr netip.Addr, port uint16) {
	t.Helper()
	var ln net.Listener
	if err := f.lab.Do(ns, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, port).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap())
			c.Close()
		}
	}()
}

// dial connects from ns (from src when valid) and returns what the
// listener said: the source address it saw.
func (f *fwLab) dial(ns string, src netip.Addr, dst netip.AddrPort) (string, error) {
	var conn net.Conn
	err := f.lab.Do(ns, func() (err error) {
		d := net.Dialer{Timeout: 1500 * time.Millisecond}
		if src.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		conn, err = d.Dial("tcp", dst.String())
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(conn)
	return strings.TrimSpace(string(b)), err
}

func (f *fwLab) ping(ns string, dst netip.Addr) error {
	_, err := f.lab.Exec(ns, "ping", "-c", "1", "-W", "1", dst.String())
	return err
}

// TestFirewallDefaults runs a table of flows through a router running
// only xdprouter's generated ruleset, with kernel forwarding: what the
// default CPE firewall must let through and what it must stop, each
// drop under its counter.
func TestFirewallDefaults(t *testing.T) {
	f := newFirewallLab(t)
	t.Logf("ruleset:\n%s", f.rulesetScript)
	f.listen(t, f.lan, fwLANHost6, 80)
	f.listen(t, f.lan, fwLANHost4, 80)
	f.listen(t, f.lan, fwLANHost6, 2222)
	f.listen(t, f.up, fwWANUp, 80)
	f.listen(t, f.up, fwUp4, 80)
	// Without the ruleset the router forwards what the firewall must
	// stop: the blocked cases below are the firewall's doing.
	for _, dst := range []netip.AddrPort{netip.AddrPortFrom(fwLANHost6, 80), netip.AddrPortFrom(fwLANHost4, 80)} {
		if _, err := f.dial(f.up, netip.Addr{}, dst); err != nil {
			t.Fatalf("before the ruleset, upstream cannot reach %s: %v (the lab is broken)", dst, err)
		}
	}
	f.load(t)

	type flow struct {
		name    string
		ns      string
		src     netip.Addr // unset: the kernel's choice
		dst     netip.AddrPort
		ping    bool
		ok      bool
		seen    string // the source the far end must see, when ok
		counter string // must grow, when blocked
	}
	ap := netip.AddrPortFrom
	for _, fl := range []flow{
		{name: "WAN to LAN TCP IPv6, unsolicited", ns: f.up, dst: ap(fwLANHost6, 80), counter: control.CtrDropWANForward},
		{name: "WAN to LAN TCP IPv4, unsolicited (routed at the fixed address)", ns: f.up, dst: ap(fwLANHost4, 80), counter: control.CtrDropWANForward},
		{name: "WAN to LAN ping IPv6", ns: f.up, dst: ap(fwLANHost6, 0), ping: true, counter: control.CtrDropWANForward},
		{name: "WAN to LAN ping IPv4", ns: f.up, dst: ap(fwLANHost4, 0), ping: true, counter: control.CtrDropWANForward},
		{name: "LAN to WAN TCP IPv6", ns: f.lan, dst: ap(fwWANUp, 80), ok: true, seen: fwLANHost6.String()},
		{name: "LAN to WAN TCP IPv4, masqueraded to the fixed address", ns: f.lan, dst: ap(fwUp4, 80), ok: true, seen: fwFixed4.String()},
		{name: "LAN to WAN ping IPv6", ns: f.lan, dst: ap(fwWANUp, 0), ping: true, ok: true},
		{name: "LAN to WAN ping IPv4", ns: f.lan, dst: ap(fwUp4, 0), ping: true, ok: true},
		{name: "WAN to router ping IPv6", ns: f.up, dst: ap(fwWANRouter, 0), ping: true, ok: true},
		{name: "WAN to router TCP IPv6", ns: f.up, dst: ap(fwWANRouter, 22), counter: control.CtrDropWANInput},
		{name: "pinhole ::10 tcp 2222", ns: f.up, dst: ap(fwLANHost6, 2222), ok: true, seen: fwWANUp.String(), counter: "allow_0"},
		{name: "port forward 203.0.113.7:8080 to 192.168.1.10:80", ns: f.up, dst: ap(fwFixed4, 8080), ok: true, seen: fwUp4.String(), counter: "forward_0"},
		{name: "LAN source outside the LAN prefix (IPv6)", ns: f.lan, src: fwSpoof6, dst: ap(fwWANUp, 80), counter: control.CtrDropLANSpoofed},
		{name: "LAN source outside the LAN subnet (IPv4)", ns: f.lan, src: fwSpoof4, dst: ap(fwUp4, 80), counter: control.CtrDropLANSpoofed},
		{name: "router's own address as source from the WAN (IPv6)", ns: f.up, src: fwLANRouter6, dst: ap(fwLANHost6, 80), counter: control.CtrDropSelfSpoofed},
		{name: "router's own address as source from the tunnel (IPv4)", ns: f.up, src: fwLANRouter4, dst: ap(fwLANHost4, 80), counter: control.CtrDropSelfSpoofed},
	} {
		t.Run(fl.name, func(t *testing.T) {
			before := f.counters(t)
			var err error
			seen := ""
			if fl.ping {
				err = f.ping(fl.ns, fl.dst.Addr())
			} else {
				seen, err = f.dial(fl.ns, fl.src, fl.dst)
			}
			after := f.counters(t)
			switch {
			case fl.ok && err != nil:
				t.Errorf("blocked, want through: %v", err)
			case fl.ok && fl.seen != "" && seen != fl.seen:
				t.Errorf("the far end saw %q, want %s", seen, fl.seen)
			case !fl.ok && err == nil:
				t.Errorf("got through (far end saw %q), want blocked", seen)
			case !fl.ok && !fl.ping && !isTimeout(err):
				t.Errorf("error %v: want a timeout (dropped, not refused)", err)
			}
			if fl.counter != "" && after[fl.counter] <= before[fl.counter] {
				t.Errorf("counter %s %d -> %d: want it to grow", fl.counter, before[fl.counter], after[fl.counter])
			}
		})
	}
	st := f.counters(t)
	t.Logf("counters after the flows: %v", st)

	// A reconcile pass with the same ruleset leaves the tables alone, and
	// a changed one (a new pinhole) replaces them keeping the counts.
	apply := func(rs *control.Ruleset) bool {
		var changed bool
		if err := f.lab.Do(f.router, func() (err error) {
			changed, err = control.NFTables{}.Apply(rs)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return changed
	}
	if apply(f.rs) {
		t.Error("the same ruleset again: Apply says it changed something")
	}
	more := *f.rs
	fw := *more.Firewall
	fw.Pinholes = append(fw.Pinholes, control.ResolvedPinhole{Index: 1, Pinhole: config.Pinhole{Proto: "any"},
		Dst: []netip.Prefix{netip.PrefixFrom(fwLANHost6, 128)}})
	more.Firewall = &fw
	if !apply(&more) {
		t.Error("a new pinhole: Apply says nothing changed")
	}
	if got := f.counters(t); got[control.CtrDropLANSpoofed] != st[control.CtrDropLANSpoofed] || got["allow_0"] != st["allow_0"] {
		t.Errorf("counters after the replace %v, want those before %v", got, st)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}
