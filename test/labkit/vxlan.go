package labkit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// The seed-001 lab: fixed prefixes over VXLAN next to the ISP's prefix.
//
//	host (LAN) — router (xdprouter) — isp (radvd, kea) —v4— internet —v4— server (plain Linux) — far
//	                                     |
//	                                   native
//
// The ISP gives the router IPv6 natively (the WAN /64 by RA, a /56 by
// DHCPv6-PD: the "FLET'S prefix") and IPv4; native is an IPv6 host the
// ISP reaches. Between the ISP and the server there is only IPv4 (the
// internet namespace routes nothing else), so the server's /40 reaches
// the router only through the VXLAN tunnel, which the server sets up
// exactly as in the seed (kernel vxlan, `ip -6 route … via`); far is an
// IPv6 host behind the server.
const (
	VXLANName    = "vxlan01"
	VXLANNetIf   = "inet0" // isp, towards the internet
	VXLANNatIf   = "nat0"  // isp, towards the native host
	VXLANFarIf   = "far0"  // server, towards far
	VXLANInetISP = "isp0"  // internet, towards the isp
	VXLANInetSrv = "srv0"  // internet, towards the server
)

var (
	VXLANRouterWAN4 = netip.MustParsePrefix("192.0.2.2/24") // the router's "global" IPv4 (seed: 10.1.1.2)
	VXLANISPWAN4    = netip.MustParsePrefix("192.0.2.1/24")
	VXLANISPNet4    = netip.MustParsePrefix("203.0.113.1/24")
	VXLANInetISP4   = netip.MustParsePrefix("203.0.113.254/24")
	VXLANInetSrv4   = netip.MustParsePrefix("198.51.100.254/24")
	VXLANServer4    = netip.MustParsePrefix("198.51.100.1/24") // the server's global IPv4 (seed: 10.1.1.1)
	VXLANISPWAN6    = netip.MustParsePrefix("2001:db8:1::1/64")
	VXLANWANPrefix  = netip.MustParsePrefix("2001:db8:1::/64")
	VXLANPool       = netip.MustParsePrefix("2001:db8:100::/48") // the ISP's delegation pool
	VXLANISPNat6    = netip.MustParsePrefix("2001:db8:e::1/64")
	VXLANNative6    = netip.MustParsePrefix("2001:db8:e::2/64")
	// The seed's /40 and what peer 1 gets of it.
	VXLANParent     = netip.MustParsePrefix("2001:db8:ae00::/40")
	VXLANLinkServer = netip.MustParsePrefix("2001:db8:ae00:0:1::1/80")
	VXLANLinkClient = netip.MustParsePrefix("2001:db8:ae00:0:1::2/80")
	VXLANPeer64     = netip.MustParsePrefix("2001:db8:ae00:1::/64")
	VXLANPeer48     = netip.MustParsePrefix("2001:db8:ae01::/48")
	VXLANFarServer6 = netip.MustParsePrefix("2001:db8:beef::1/64")
	VXLANFar6       = netip.MustParsePrefix("2001:db8:beef::2/64")
	// The LAN host's interface identifier (`ip token`), so its SLAAC
	// addresses are known: <prefix>::2.
	VXLANHostToken = "::2"
)

// VXLANTopology is the seed-001 lab.
type VXLANTopology struct {
	Lab                                              *netlab.Lab
	Host, Router, ISP, Internet, Server, Far, Native string // namespaces
	BPFFS                                            string
	Radvd                                            *Radvd
	Kea                                              *Kea
}

// NewVXLANTopology builds the lab and starts the ISP's radvd and kea; the
// server's side of the tunnel is ServerSeed001's. On error everything made
// so far is removed.
func NewVXLANTopology() (*VXLANTopology, error) {
	lab, err := netlab.New()
	if err != nil {
		return nil, fmt.Errorf("new lab: %w", err)
	}
	t := &VXLANTopology{Lab: lab, BPFFS: filepath.Join(lab.RunDir(), "router")}
	if err := t.build(); err != nil {
		if cerr := t.Close(); cerr != nil {
			err = fmt.Errorf("%w (and %v)", err, cerr)
		}
		return nil, fmt.Errorf("build the seed-001 lab: %w", err)
	}
	return t, nil
}

func (t *VXLANTopology) build() error {
	var err error
	for _, n := range []struct {
		dst *string
		nm  string
		fwd bool
	}{{&t.Host, "host", false}, {&t.Router, "router", true}, {&t.ISP, "isp", true}, {&t.Internet, "internet", true},
		{&t.Server, "server", true}, {&t.Far, "far", false}, {&t.Native, "native", false}} {
		if *n.dst, err = t.Lab.AddNS(n.nm, n.fwd); err != nil {
			return err
		}
	}
	for _, l := range []struct{ nsA, ifA, nsB, ifB string }{
		{t.Host, TunHostIf, t.Router, TunLANIf},
		{t.Router, TunWANIf, t.ISP, ISPWANIf},
		{t.ISP, VXLANNatIf, t.Native, InternetIf},
		{t.ISP, VXLANNetIf, t.Internet, VXLANInetISP},
		{t.Internet, VXLANInetSrv, t.Server, ISPWANIf},
		{t.Server, VXLANFarIf, t.Far, InternetIf},
	} {
		if err := t.Lab.Veth(l.nsA, l.ifA, l.nsB, l.ifB); err != nil {
			return err
		}
	}
	// Complete checksums from every sender whose frames XDP reads as
	// bytes (see topology.go): the hosts, and the ISP towards the router,
	// whose software GSO would otherwise hand XDP the segments of what
	// GRO merged with checksums left to "hardware" (a redirected frame
	// loses that state and reaches the LAN host with a bad checksum).
	for _, e := range []struct{ ns, dev string }{{t.Host, TunHostIf}, {t.Native, InternetIf}, {t.Far, InternetIf},
		{t.Server, VXLANFarIf}, {t.ISP, ISPWANIf}} {
		if _, err := t.Lab.Exec(e.ns, "ethtool", "-K", e.dev, "tx", "off"); err != nil {
			return fmt.Errorf("checksum offload off: %w", err)
		}
	}
	v4 := func(p netip.Prefix, dev string) []string {
		return []string{"ip", "addr", "add", p.String(), "dev", dev}
	}
	// The internet carries IPv4 only: IPv6 is off on its links.
	noV6 := func(dev string) []string {
		return []string{"sysctl", "-qw", "net.ipv6.conf." + dev + ".disable_ipv6=1"}
	}
	if err := t.Lab.MustExec(t.Host,
		[]string{"sysctl", "-qw", "net.ipv6.conf." + TunHostIf + ".accept_ra=1"},
		[]string{"sysctl", "-qw", "net.ipv6.conf." + TunHostIf + ".autoconf=1"},
		[]string{"ip", "token", "set", VXLANHostToken, "dev", TunHostIf}); err != nil {
		return err
	}
	// The router's IPv4 is the user's (a static address here); its IPv6
	// comes from the ISP through the daemon.
	if err := t.Lab.MustExec(t.Router,
		v4(VXLANRouterWAN4, TunWANIf),
		[]string{"ip", "route", "add", "default", "via", VXLANISPWAN4.Addr().String()}); err != nil {
		return err
	}
	if err := t.Lab.MustExec(t.ISP,
		v4(VXLANISPWAN4, ISPWANIf), v6addr(VXLANISPWAN6, ISPWANIf),
		v6addr(VXLANISPNat6, VXLANNatIf),
		v4(VXLANISPNet4, VXLANNetIf), noV6(VXLANNetIf),
		[]string{"ip", "route", "add", VXLANServer4.Masked().String(), "via", VXLANInetISP4.Addr().String()}); err != nil {
		return err
	}
	if err := t.Lab.MustExec(t.Internet,
		noV6(VXLANInetISP), noV6(VXLANInetSrv),
		v4(VXLANInetISP4, VXLANInetISP), v4(VXLANInetSrv4, VXLANInetSrv),
		[]string{"ip", "route", "add", VXLANRouterWAN4.Masked().String(), "via", VXLANISPNet4.Addr().String()}); err != nil {
		return err
	}
	if err := t.Lab.MustExec(t.Native,
		v6addr(VXLANNative6, InternetIf),
		[]string{"ip", "-6", "route", "add", "default", "via", VXLANISPNat6.Addr().String()}); err != nil {
		return err
	}
	if err := t.Lab.MustExec(t.Server,
		v4(VXLANServer4, ISPWANIf), noV6(ISPWANIf),
		[]string{"ip", "route", "add", "default", "via", VXLANInetSrv4.Addr().String()},
		v6addr(VXLANFarServer6, VXLANFarIf)); err != nil {
		return err
	}
	if err := t.Lab.MustExec(t.Far,
		v6addr(VXLANFar6, InternetIf),
		[]string{"ip", "-6", "route", "add", "default", "via", VXLANFarServer6.Addr().String()}); err != nil {
		return err
	}
	if t.Radvd, err = StartRadvd(t.Lab, t.ISP, RadvdConfig{Interface: ISPWANIf,
		MinInterval: 3 * time.Second, MaxInterval: 4 * time.Second, RouterLifetime: 1800 * time.Second,
		Prefixes: []RadvdPrefix{{Prefix: VXLANWANPrefix, Valid: 2 * time.Hour, Preferred: time.Hour}}}); err != nil {
		return err
	}
	t.Kea, err = StartKea(KeaConfig{Namespace: t.ISP, Interface: ISPWANIf, Pools: []KeaPool{{Prefix: VXLANPool, DelegatedLen: 56}},
		Renew: 30 * time.Second, Rebind: 45 * time.Second, Preferred: time.Minute, Valid: 2 * time.Minute,
		Dir: filepath.Join(t.Lab.RunDir(), "kea")})
	return err
}

// ServerSeed001 configures the server exactly as the seed's
// /etc/network/interfaces for vxlan01 does (remote = the router's IPv4).
func (t *VXLANTopology) ServerSeed001() error {
	return t.Lab.MustExec(t.Server, ServerSeed001Commands()...)
}

// ServerSeed001Commands are the seed's post-up lines for vxlan01 on the
// server, as ServerSeed001 runs them.
func ServerSeed001Commands() [][]string {
	return [][]string{
		{"ip", "link", "add", VXLANName, "type", "vxlan", "id", "01", "dstport", "4789",
			"remote", VXLANRouterWAN4.Addr().String(), "dev", ISPWANIf},
		{"ip", "link", "set", VXLANName, "up"},
		{"ip", "-6", "addr", "add", VXLANLinkServer.String(), "dev", VXLANName, "nodad"},
		{"ip", "-6", "route", "add", VXLANPeer64.String(), "via", VXLANLinkClient.Addr().String(), "dev", VXLANName},
		{"ip", "-6", "route", "add", VXLANPeer48.String(), "via", VXLANLinkClient.Addr().String(), "dev", VXLANName},
	}
}

// ServerConfig is the server's config when xdprouter runs there too: a
// delegation of the seed's /40 with the router as peer 1 (vxlan01), the
// same tunnel and routes ServerSeed001 makes by hand.
func (t *VXLANTopology) ServerConfig() string {
	return fmt.Sprintf(`wan: {interface: %s}
lan: [{interface: %s}]
delegations:
  - prefix: %s
    peers: [{id: 1, remote: %s}]
`, ISPWANIf, VXLANFarIf, VXLANParent, VXLANRouterWAN4.Addr())
}

// ClientConfig is the router's config: the ISP's prefix by DHCPv6-PD on
// lan0 (sla-id 0), and seed 001's vxlan01 with the /64 and /48 the server
// routes to it.
func (t *VXLANTopology) ClientConfig() string {
	return fmt.Sprintf(`wan:
  interface: %s
  token: "::feed"
  dhcpv6-pd: { prefix-length-hint: 56 }
lan:
  - { interface: %s, sla-id: 0 }
tunnels:
  - name: %s
    mode: vxlan
    vni: 1
    remote: %s
    address: %s
    gateway: %s
    prefixes: [%s, %s]
`, TunWANIf, TunLANIf, VXLANName, VXLANServer4.Addr(), VXLANLinkClient, VXLANLinkServer.Addr(), VXLANPeer64, VXLANPeer48)
}

// RouteDelegated routes the ISP's delegation pool to the router's
// link-local address, as the ISP's edge does for each binding.
func (t *VXLANTopology) RouteDelegated() error {
	out, err := t.Lab.Exec(t.Router, "ip", "-6", "-o", "addr", "show", "dev", TunWANIf, "scope", "link")
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`inet6 (fe80::[0-9a-f:]+)/64`).FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("no link-local address on the router's %s: %q", TunWANIf, out)
	}
	_, err = t.Lab.Exec(t.ISP, "ip", "-6", "route", "replace", VXLANPool.String(), "via", m[1], "dev", ISPWANIf)
	return err
}

// VXLANLAN is what the LAN has once the daemon learned the ISP's prefix:
// that /64, and the LAN host's SLAAC addresses in it and in the tunnel's
// /64 and the first /64 of its /48.
type VXLANLAN struct {
	ISPPrefix                netip.Prefix
	HostISP, HostTun, Host48 netip.Addr
}

// WaitLAN waits until the router's daemon (cli) has a delegated prefix on
// lan0, routes the ISP's pool to the router (RouteDelegated), and waits
// until the LAN host has its three addresses from the router's RAs, DAD
// done. The error says which of these did not happen by the deadline.
func (t *VXLANTopology) WaitLAN(ctx context.Context, cli CLI, timeout time.Duration) (VXLANLAN, error) {
	deadline := time.Now().Add(timeout)
	var l VXLANLAN
	if err := pollUntil(ctx, deadline, "a delegated prefix on "+TunLANIf, func() bool {
		st, err := cli.Status(ctx)
		if err != nil || st.Daemon == nil || st.Daemon.IPv6 == nil || len(st.Daemon.IPv6.LANs) == 0 {
			return false
		}
		l.ISPPrefix, err = netip.ParsePrefix(st.Daemon.IPv6.LANs[0].Prefix.Prefix)
		return err == nil
	}); err != nil {
		return l, err
	}
	if err := t.RouteDelegated(); err != nil {
		return l, err
	}
	l.HostISP = WithHost(l.ISPPrefix, 2)
	l.HostTun = WithHost(VXLANPeer64, 2)
	l.Host48 = WithHost(netip.PrefixFrom(VXLANPeer48.Addr(), 64), 2)
	var out string
	if err := pollUntil(ctx, deadline, "the LAN host's SLAAC addresses in the ISP's /64 and the tunnel's /64 and /48", func() bool {
		var err error
		out, err = t.Lab.Exec(t.Host, "ip", "-6", "addr", "show", "dev", TunHostIf, "scope", "global")
		return err == nil && strings.Contains(out, l.HostISP.String()+"/64") && strings.Contains(out, l.HostTun.String()+"/64") &&
			strings.Contains(out, l.Host48.String()+"/64") && !strings.Contains(out, "tentative")
	}); err != nil {
		return l, fmt.Errorf("%w; the host has:\n%s", err, out)
	}
	return l, nil
}

// DevPackets is what the router's vxlan01 sent and received: the tunnel
// packets the kernel carried rather than XDP. Read by netlink (ip -s -j),
// not from /sys/class/net, which shows the devices of the namespace sysfs
// was mounted in, not necessarily the router's.
func (t *VXLANTopology) DevPackets() (uint64, error) {
	out, err := t.Lab.Exec(t.Router, "ip", "-s", "-j", "link", "show", "dev", VXLANName)
	if err != nil {
		return 0, err
	}
	var links []struct {
		Stats struct {
			RX, TX struct{ Packets uint64 }
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("%s statistics: %v in %q", VXLANName, err, out)
	}
	return links[0].Stats.RX.Packets + links[0].Stats.TX.Packets, nil
}

// WithHost is p's first address with host as its last byte.
func WithHost(p netip.Prefix, host byte) netip.Addr {
	b := p.Masked().Addr().As16()
	b[15] = host
	return netip.AddrFrom16(b)
}

// pollUntil calls ok every 100 ms until it holds, the deadline passes or
// ctx ends.
func pollUntil(ctx context.Context, deadline time.Time, what string, ok func() bool) error {
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not there in time", what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// Close stops the ISP's servers and removes the namespaces.
func (t *VXLANTopology) Close() error {
	if t.Radvd != nil {
		t.Radvd.Stop()
	}
	if t.Kea != nil {
		t.Kea.Stop()
	}
	return t.Lab.Close()
}
