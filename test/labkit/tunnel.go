package labkit

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// The DS-Lite / fixed-IPv4 topology:
//
//	host (LAN) — router (xdprouter) — isp (AFTR, aftr.py) — internet
//
// The router's WAN is IPv6 only; IPv4 reaches the internet namespace only
// through the ipip6 tunnel to the AFTR, which relays to it.
const (
	TunLANIf     = "lan0"  // router, towards the host
	TunWANIf     = "wan0"  // router, towards the ISP
	ISPWANIf     = "eth0"  // isp, towards the router
	ISPNetIf     = "inet0" // isp, towards the internet
	AFTRTunIf    = "aftr0" // isp, the AFTR's tun device
	InternetIf   = "eth0"  // internet host
	TunHostIf    = "eth0"  // LAN host
	TunnelName   = "v4tun"
	FixedIPv4Str = "203.0.113.7"
)

var (
	TunHost4      = netip.MustParsePrefix("192.168.1.2/24")
	TunRouterLAN4 = netip.MustParsePrefix("192.168.1.1/24")
	// The WAN address is "prefix::feed" as `ip token ::feed` makes it.
	TunRouterWAN6 = netip.MustParsePrefix("2001:db8:1::feed/64")
	// Another address of the router that is no tunnel's local address.
	TunRouterOther6 = netip.MustParsePrefix("2001:db8:1::beef/64")
	ISPWAN6         = netip.MustParsePrefix("2001:db8:1::1/64")
	AFTR6           = netip.MustParseAddr("2001:db8:f::1")
	ISPNet4         = netip.MustParsePrefix("198.51.100.1/24")
	Internet4       = netip.MustParsePrefix("198.51.100.2/24")
	FixedIPv4       = netip.MustParseAddr(FixedIPv4Str)
)

// TunnelTopology is the lab for tunnel tests.
type TunnelTopology struct {
	Lab                         *netlab.Lab
	Host, Router, ISP, Internet string // namespaces
	BPFFS                       string
	aftr                        relay
	// learnWAN leaves the router's WAN unconfigured: its address and
	// default route come from the ISP's RAs (IPoETopology).
	learnWAN bool
}

// NewTunnelTopology builds the namespaces and links. On error everything
// made so far is removed.
func NewTunnelTopology() (*TunnelTopology, error) {
	return newTunnelTopology(false)
}

func newTunnelTopology(learnWAN bool) (*TunnelTopology, error) {
	lab, err := netlab.New()
	if err != nil {
		return nil, fmt.Errorf("new lab: %w", err)
	}
	t := &TunnelTopology{Lab: lab, BPFFS: filepath.Join(lab.RunDir(), "router"), learnWAN: learnWAN}
	if err := t.build(); err != nil {
		if cerr := lab.Close(); cerr != nil {
			err = fmt.Errorf("%w (and %v)", err, cerr)
		}
		return nil, fmt.Errorf("build host — router — isp — internet: %w", err)
	}
	return t, nil
}

func v6addr(p netip.Prefix, dev string) []string {
	return []string{"ip", "-6", "addr", "add", p.String(), "dev", dev, "nodad"}
}

func (t *TunnelTopology) build() error {
	var err error
	for _, n := range []struct {
		dst *string
		nm  string
		fwd bool
	}{{&t.Host, "host", false}, {&t.Router, "router", true}, {&t.ISP, "isp", true}, {&t.Internet, "internet", false}} {
		if *n.dst, err = t.Lab.AddNS(n.nm, n.fwd); err != nil {
			return err
		}
	}
	if err := t.Lab.Veth(t.Host, TunHostIf, t.Router, TunLANIf); err != nil {
		return err
	}
	if err := t.Lab.Veth(t.Router, TunWANIf, t.ISP, ISPWANIf); err != nil {
		return err
	}
	if err := t.Lab.Veth(t.ISP, ISPNetIf, t.Internet, InternetIf); err != nil {
		return err
	}
	// Complete checksums on every sender whose frames XDP or the AFTR
	// read as bytes (see topology.go): the hosts, and the router's WAN,
	// where the TC slow path sends the router's own TCP.
	for _, e := range []struct{ ns, dev string }{
		{t.Host, TunHostIf}, {t.Internet, InternetIf}, {t.Router, TunWANIf}, {t.ISP, ISPNetIf},
	} {
		if _, err := t.Lab.Exec(e.ns, "ethtool", "-K", e.dev, "tx", "off"); err != nil {
			return fmt.Errorf("checksum offload off: %w", err)
		}
	}
	if err := t.Lab.MustExec(t.Host,
		[]string{"ip", "addr", "add", TunHost4.String(), "dev", TunHostIf},
		[]string{"ip", "route", "add", "default", "via", TunRouterLAN4.Addr().String()}); err != nil {
		return err
	}
	// The LAN IPv4 address comes from the config (apply installs it).
	if !t.learnWAN {
		if err := t.Lab.MustExec(t.Router,
			v6addr(TunRouterWAN6, TunWANIf), v6addr(TunRouterOther6, TunWANIf),
			[]string{"ip", "-6", "route", "add", "default", "via", ISPWAN6.Addr().String()}); err != nil {
			return err
		}
	}
	if err := t.Lab.MustExec(t.ISP,
		v6addr(ISPWAN6, ISPWANIf),
		[]string{"ip", "-6", "addr", "add", AFTR6.String() + "/128", "dev", "lo"},
		[]string{"ip", "addr", "add", ISPNet4.String(), "dev", ISPNetIf},
		[]string{"ip", "tuntap", "add", "dev", AFTRTunIf, "mode", "tun"}); err != nil {
		return err
	}
	return t.Lab.MustExec(t.Internet,
		[]string{"ip", "addr", "add", Internet4.String(), "dev", InternetIf},
		[]string{"ip", "route", "add", "default", "via", ISPNet4.Addr().String()})
}

// QuietISPGRO turns GRO off on the ISP's side of the WAN link, so that
// the AFTR reads packets as the router sent them rather than merged into
// 64 KB super-packets it could not relay. A veth only accepts XDP
// redirects while GRO or an XDP program keeps its NAPI on, so the (plain
// forwarding) xdprouter program is attached there first, in a bpffs of
// its own: lab plumbing, not part of the router under test.
func (t *TunnelTopology) QuietISPGRO(ctx context.Context, bin string) error {
	return quietGRO(ctx, t.Lab, t.ISP, ISPWANIf, bin)
}

// quietGRO turns GRO off on dev in ns, keeping its veth's NAPI with a
// plain xdprouter program in a bpffs of its own (named after ns).
func quietGRO(ctx context.Context, lab *netlab.Lab, ns, dev, bin string) error {
	cli := CLI{Bin: bin, NS: ns, BPFFS: filepath.Join(lab.RunDir(), "gro-"+ns)}
	if _, err := cli.Run(ctx, "attach", dev, "--mode", "native"); err != nil {
		return err
	}
	_, err := lab.Exec(ns, "ethtool", "-K", dev, "gro", "off")
	return err
}

// StartAFTR runs test/aftr/aftr.py in the isp namespace (python3 with
// scapy from Debian, not pyenv's) and routes the LAN and fixed-IPv4
// addresses into its tun device.
func (t *TunnelTopology) StartAFTR(ctx context.Context, root string) error {
	t.aftr = relay{name: "aftr.py", stats: filepath.Join(t.Lab.RunDir(), "aftr-stats.json")}
	cmd := t.Lab.Command(t.ISP, "/usr/bin/python3", filepath.Join(root, "test/aftr/aftr.py"), "relay",
		"--wan", ISPWANIf, "--tun", AFTRTunIf, "--aftr", AFTR6.String(), "--stats", t.aftr.stats)
	if err := t.aftr.start(ctx, cmd); err != nil {
		return err
	}
	return t.Lab.MustExec(t.ISP,
		[]string{"ip", "link", "set", AFTRTunIf, "up"},
		[]string{"ip", "route", "add", TunHost4.Masked().String(), "dev", AFTRTunIf},
		[]string{"ip", "route", "add", FixedIPv4.String() + "/32", "dev", AFTRTunIf})
}

// AFTRStats is what aftr.py counted and checked.
type AFTRStats struct {
	Decapsulated  int      `json:"decapsulated"`
	Encapsulated  int      `json:"encapsulated"`
	BadExtHeader  int      `json:"bad_ext_header"`
	BadHopLimit   int      `json:"bad_hop_limit"`
	BadTClass     int      `json:"bad_tclass"`
	ZeroFlowLabel int      `json:"zero_flow_label"`
	BadLength     int      `json:"bad_length"`
	NoB4          int      `json:"no_b4"`
	HopLimits     []int    `json:"hop_limits"`
	MSSSeen       []int    `json:"mss_seen"`
	InnerSources  []string `json:"inner_sources"`
}

// Violations lists what the AFTR found wrong with the outer headers.
func (s AFTRStats) Violations() []string {
	var out []string
	for name, n := range map[string]int{
		"extension header before ipip": s.BadExtHeader, "hop limit": s.BadHopLimit,
		"traffic class != inner TOS": s.BadTClass, "flow label 0": s.ZeroFlowLabel,
		"payload length != inner length": s.BadLength,
	} {
		if n > 0 {
			out = append(out, fmt.Sprintf("%s: %d packets", name, n))
		}
	}
	return out
}

// AFTRStats asks aftr.py for its counters (SIGUSR1 makes it write them).
func (t *TunnelTopology) AFTRStats() (AFTRStats, error) {
	var s AFTRStats
	return s, t.aftr.readStats(&s)
}

// Close stops the AFTR and removes the namespaces.
func (t *TunnelTopology) Close() error {
	t.aftr.stop()
	return t.Lab.Close()
}
