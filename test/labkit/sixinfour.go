package labkit

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// The 6in4 lab (HE.net's tunnel broker, seed 000's author's setup):
//
//	host (LAN) — router (xdprouter) —v4— broker (broker.py) — far
//
// Between the router and the broker there is only IPv4 (the underlay);
// the routed /48 reaches the router only through the 6in4 tunnel. The
// broker is test/broker6in4/broker.py on plain Linux: the kernel has no
// sit module, and an xdprouter as the broker would test xdprouter against
// itself.
const (
	SitName     = "he"
	SitBrokerIf = "eth0" // broker, towards the router
	SitTunIf    = "he0"  // broker, its tun device
	SitFarIf    = "far0" // broker, towards far
)

var (
	SitRouterWAN4 = netip.MustParsePrefix("203.0.113.2/24") // HE's "Client IPv4"
	SitBroker4    = netip.MustParsePrefix("203.0.113.1/24") // HE's "Server IPv4"
	SitLinkServer = netip.MustParsePrefix("2001:db8:470:a::1/64")
	SitLinkClient = netip.MustParsePrefix("2001:db8:470:a::2/64")
	SitRouted48   = netip.MustParsePrefix("2001:db8:471::/48")
	// sla-id 1 of the routed /48 on the LAN.
	SitRouterLAN6 = netip.MustParsePrefix("2001:db8:471:1::1/64")
	SitHost6      = netip.MustParsePrefix("2001:db8:471:1::2/64")
	SitFarBroker6 = netip.MustParsePrefix("2001:db8:beef::1/64")
	SitFar6       = netip.MustParsePrefix("2001:db8:beef::2/64")
)

// SitTopology is the 6in4 lab.
type SitTopology struct {
	Lab                       *netlab.Lab
	Host, Router, Broker, Far string // namespaces
	BPFFS                     string
	broker                    relay
}

// NewSitTopology builds the namespaces and links. On error everything
// made so far is removed.
func NewSitTopology() (*SitTopology, error) {
	lab, err := netlab.New()
	if err != nil {
		return nil, fmt.Errorf("new lab: %w", err)
	}
	t := &SitTopology{Lab: lab, BPFFS: filepath.Join(lab.RunDir(), "router")}
	if err := t.build(); err != nil {
		if cerr := lab.Close(); cerr != nil {
			err = fmt.Errorf("%w (and %v)", err, cerr)
		}
		return nil, fmt.Errorf("build host — router — broker — far: %w", err)
	}
	return t, nil
}

func (t *SitTopology) build() error {
	var err error
	for _, n := range []struct {
		dst *string
		nm  string
		fwd bool
	}{{&t.Host, "host", false}, {&t.Router, "router", true}, {&t.Broker, "broker", true}, {&t.Far, "far", false}} {
		if *n.dst, err = t.Lab.AddNS(n.nm, n.fwd); err != nil {
			return err
		}
	}
	for _, l := range []struct{ a, ai, b, bi string }{
		{t.Host, TunHostIf, t.Router, TunLANIf}, {t.Router, TunWANIf, t.Broker, SitBrokerIf}, {t.Broker, SitFarIf, t.Far, InternetIf},
	} {
		if err := t.Lab.Veth(l.a, l.ai, l.b, l.bi); err != nil {
			return err
		}
	}
	// Complete checksums on the senders whose frames XDP or the broker
	// read as bytes (see topology.go).
	for _, e := range []struct{ ns, dev string }{
		{t.Host, TunHostIf}, {t.Far, InternetIf}, {t.Router, TunWANIf}, {t.Broker, SitFarIf},
	} {
		if _, err := t.Lab.Exec(e.ns, "ethtool", "-K", e.dev, "tx", "off"); err != nil {
			return fmt.Errorf("checksum offload off: %w", err)
		}
	}
	if err := t.Lab.MustExec(t.Host, v6addr(SitHost6, TunHostIf),
		[]string{"ip", "-6", "route", "add", "default", "via", SitRouterLAN6.Addr().String()}); err != nil {
		return err
	}
	// The LAN address of the carved /64 by hand: apply programs the
	// tunnel, its routes and the steering, not the LAN's addresses.
	if err := t.Lab.MustExec(t.Router, v6addr(SitRouterLAN6, TunLANIf),
		[]string{"ip", "addr", "add", SitRouterWAN4.String(), "dev", TunWANIf},
		[]string{"ip", "route", "add", "default", "via", SitBroker4.Addr().String()}); err != nil {
		return err
	}
	if err := t.Lab.MustExec(t.Broker,
		[]string{"ip", "addr", "add", SitBroker4.String(), "dev", SitBrokerIf},
		v6addr(SitFarBroker6, SitFarIf),
		[]string{"ip", "tuntap", "add", "dev", SitTunIf, "mode", "tun"}); err != nil {
		return err
	}
	return t.Lab.MustExec(t.Far, v6addr(SitFar6, InternetIf),
		[]string{"ip", "-6", "route", "add", "default", "via", SitFarBroker6.Addr().String()})
}

// Config is the router's config: the LAN's /64 is sla-id 1 of the routed
// /48, and the tunnel is the broker's page line by line (README, "6in4
// tunnels"). It has no firewall section: a caller that wants one adds it.
func (t *SitTopology) Config() string {
	return fmt.Sprintf(`wan: {interface: %s}
lan:
  - {interface: %s, sla-id: 1}
tunnels:
  - name: %s
    mode: 6in4
    remote: %-21s  # Server IPv4 Address
    local: %-22s  # Client IPv4 Address
    address: %-20s  # Client IPv6 Address
    gateway: %-20s  # Server IPv6 Address
    prefixes: [%s]  # Routed /48
`, TunWANIf, TunLANIf, SitName, SitBroker4.Addr(), SitRouterWAN4.Addr(),
		SitLinkClient, SitLinkServer.Addr(), SitRouted48)
}

// QuietBrokerGRO turns GRO off on the broker's side of the underlay, so
// that it reads the 6in4 packets as the router sent them, keeping its
// veth's NAPI with a plain xdprouter program of its own (as
// TunnelTopology.QuietISPGRO).
func (t *SitTopology) QuietBrokerGRO(ctx context.Context, bin string) error {
	return quietGRO(ctx, t.Lab, t.Broker, SitBrokerIf, bin)
}

// StartBroker runs test/broker6in4/broker.py in the broker namespace, with
// args added to its relay command (--no-df), and routes the link net and
// the routed /48 into its tun device.
func (t *SitTopology) StartBroker(ctx context.Context, root string, args ...string) error {
	t.broker = relay{name: "broker.py", stats: filepath.Join(t.Lab.RunDir(), "broker-stats.json")}
	argv := append([]string{"/usr/bin/python3", filepath.Join(root, "test/broker6in4/broker.py"), "relay",
		"--tun", SitTunIf, "--router", SitRouterWAN4.Addr().String(), "--stats", t.broker.stats}, args...)
	cmd := t.Lab.Command(t.Broker, argv...)
	if err := t.broker.start(ctx, cmd); err != nil {
		return err
	}
	return t.Lab.MustExec(t.Broker,
		[]string{"ip", "link", "set", SitTunIf, "up"},
		v6addr(SitLinkServer, SitTunIf),
		[]string{"ip", "-6", "route", "add", SitRouted48.String(), "via", SitLinkClient.Addr().String(), "dev", SitTunIf})
}

// FragmentToRouter gives the broker's route to the router an MTU of mtu:
// what broker.py sends without DF (--no-df) over it leaves in fragments.
func (t *SitTopology) FragmentToRouter(mtu int) error {
	return t.Lab.MustExec(t.Broker, []string{"ip", "route", "add", SitRouterWAN4.Addr().String() + "/32",
		"dev", SitBrokerIf, "mtu", fmt.Sprint(mtu)})
}

// BrokerStats is what broker.py counted and checked.
type BrokerStats struct {
	Decapsulated int   `json:"decapsulated"`
	Encapsulated int   `json:"encapsulated"`
	BadHeader    int   `json:"bad_header"`
	BadTTL       int   `json:"bad_ttl"`
	NoDF         int   `json:"no_df"`
	BadTOS       int   `json:"bad_tos"`
	BadLength    int   `json:"bad_length"`
	BadSource    int   `json:"bad_source"`
	HopLimits    []int `json:"hop_limits"`
}

// Violations lists what the broker found wrong with the outer headers.
func (s BrokerStats) Violations() []string {
	var out []string
	for name, n := range map[string]int{
		"header (version, IHL, checksum, protocol)": s.BadHeader, "ttl": s.BadTTL, "DF": s.NoDF,
		"tos != inner traffic class": s.BadTOS, "length": s.BadLength, "source": s.BadSource,
	} {
		if n > 0 {
			out = append(out, fmt.Sprintf("%s: %d packets", name, n))
		}
	}
	return out
}

// BrokerStats asks broker.py for its counters (SIGUSR1 makes it write them).
func (t *SitTopology) BrokerStats() (BrokerStats, error) {
	var s BrokerStats
	return s, t.broker.readStats(&s)
}

// Close stops the broker and removes the namespaces.
func (t *SitTopology) Close() error {
	t.broker.stop()
	return t.Lab.Close()
}
