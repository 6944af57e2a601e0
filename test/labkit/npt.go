package labkit

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// The seed-000 topology: an ISP router (plain Linux, no proxy anything)
// that treats the customer's outside /64 as on-link and so sends Neighbor
// Solicitations for every address in it; a CPE running xdprouter with NPT
// between that outside prefix and the LAN's inside prefix; a LAN host that
// only knows its inside address.
var (
	NPTOutside = netip.MustParsePrefix("2001:db8:aaaa::/64")
	NPTInside  = netip.MustParsePrefix("2001:db8:bbbb::/64")
	// ISPAddr is the ISP side's own address (a prefix the CPE routes by
	// default), so nothing of the ISP sits in the proxied prefix.
	ISPAddr      = netip.MustParseAddr("2001:db8:100::1")
	ISPLinkLocal = netip.MustParseAddr("fe80::1")
	CPELANAddr   = netip.MustParsePrefix("2001:db8:bbbb::1/64")
	LANHostAddr  = netip.MustParsePrefix("2001:db8:bbbb::123/64")
)

// Interface names in the NPT lab.
const (
	ISPIf    = "to-cpe"
	CPEWANIf = "wan0"
	CPELANIf = "lan0"
)

// NPTTopology is isp — cpe — host.
type NPTTopology struct {
	Lab   *netlab.Lab
	ISP   string
	CPE   string
	Host  string
	BPFFS string
}

// NewNPTTopology builds the seed-000 lab; on error nothing is left.
func NewNPTTopology() (*NPTTopology, error) {
	lab, err := netlab.New()
	if err != nil {
		return nil, fmt.Errorf("new lab: %w", err)
	}
	t := &NPTTopology{Lab: lab, BPFFS: filepath.Join(lab.RunDir(), "cpe")}
	if err := t.build(); err != nil {
		if cerr := lab.Close(); cerr != nil {
			err = fmt.Errorf("%w (and %v)", err, cerr)
		}
		return nil, fmt.Errorf("build isp — cpe — host: %w", err)
	}
	return t, nil
}

func (t *NPTTopology) build() error {
	var err error
	if t.ISP, err = t.Lab.AddNS("isp", true); err != nil {
		return err
	}
	if t.CPE, err = t.Lab.AddNS("cpe", true); err != nil {
		return err
	}
	if t.Host, err = t.Lab.AddNS("host", false); err != nil {
		return err
	}
	if err := t.Lab.Veth(t.ISP, ISPIf, t.CPE, CPEWANIf); err != nil {
		return err
	}
	if err := t.Lab.Veth(t.CPE, CPELANIf, t.Host, HostIf); err != nil {
		return err
	}
	// Complete checksums from the end hosts (see Topology.build), and the
	// captures on their interfaces then show what went on the wire.
	// GRO stays on (veth needs NAPI to take XDP-redirected frames) but
	// may not merge two full segments, so a capture holds the packets as
	// they crossed the wire and each checksum can be checked.
	for _, e := range []struct{ ns, dev string }{{t.ISP, ISPIf}, {t.Host, HostIf}} {
		if err := t.Lab.MustExec(e.ns,
			[]string{"ethtool", "-K", e.dev, "tx", "off"},
			[]string{"ip", "link", "set", e.dev, "gro_max_size", "1500"},
		); err != nil {
			return err
		}
	}
	if err := t.Lab.MustExec(t.ISP,
		[]string{"ip", "-6", "addr", "flush", "dev", ISPIf, "scope", "link"},
		[]string{"ip", "-6", "addr", "add", ISPLinkLocal.String() + "/64", "dev", ISPIf, "nodad"},
		[]string{"ip", "-6", "addr", "add", ISPAddr.String() + "/128", "dev", "lo"},
		// The customer prefix is on-link: the ISP solicits each address.
		[]string{"ip", "-6", "route", "add", NPTOutside.String(), "dev", ISPIf},
	); err != nil {
		return err
	}
	if err := t.Lab.MustExec(t.CPE,
		[]string{"ip", "-6", "addr", "add", CPELANAddr.String(), "dev", CPELANIf, "nodad"},
		[]string{"ip", "-6", "route", "add", "default", "via", ISPLinkLocal.String(), "dev", CPEWANIf},
	); err != nil {
		return err
	}
	return t.Lab.MustExec(t.Host,
		[]string{"ip", "-6", "addr", "add", LANHostAddr.String(), "dev", HostIf, "nodad"},
		[]string{"ip", "-6", "route", "add", "default", "via", CPELANAddr.Addr().String()},
	)
}

// Close removes the namespaces and mounts.
func (t *NPTTopology) Close() error { return t.Lab.Close() }

// CLI returns the xdprouter CLI of the CPE.
func (t *NPTTopology) CLI(bin string, log Logger) CLI {
	// No daemon runs here; a socket path nobody listens on makes stats
	// and status read the pinned maps, as without a daemon.
	return CLI{Runner: Runner{Log: log}, Bin: bin, NS: t.CPE, BPFFS: t.BPFFS,
		Socket: filepath.Join(t.Lab.RunDir(), "xdprouter.sock")}
}

// Config is the CPE's xdprouter configuration for an NPT mode.
func (t *NPTTopology) Config(mode string) string {
	return fmt.Sprintf(`wan: {interface: %s}
lan: [{interface: %s}]
npt:
  - interface: %s
    inside: %s
    outside: %s
    mode: %s
ndp-proxy:
  - interface: %s
    prefixes: [auto]
firewall: {mode: "off"}  # this lab sends unsolicited inbound traffic on purpose
`, CPEWANIf, CPELANIf, CPEWANIf, NPTInside, NPTOutside, mode, CPEWANIf)
}

// Diagram describes the topology for logs.
func (t *NPTTopology) Diagram() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  isp (netns %s): plain Linux router, %s on-link via %s, own address %s, link-local %s\n", t.ISP, NPTOutside, ISPIf, ISPAddr, ISPLinkLocal)
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "  cpe (netns %s): xdprouter, %s (wan, link-local only, default via %s) / %s (lan, %s)\n", t.CPE, CPEWANIf, ISPLinkLocal, CPELANIf, CPELANAddr)
	fmt.Fprintf(&b, "       NPT %s (inside) <-> %s (outside), NDP proxy on %s: auto\n", NPTInside, NPTOutside, CPEWANIf)
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "  host (netns %s): %s %s, default via %s\n", t.Host, HostIf, LANHostAddr, CPELANAddr.Addr())
	return b.String()
}

// SharedConfig is the CPE configuration for a line that hands out one /64
// on the WAN link and no prefix delegation: the LAN uses that same /64
// (NPTOutside here, without translation) and the proxy answers for the
// addresses that exist behind the LAN.
func (t *NPTTopology) SharedConfig() string {
	return fmt.Sprintf(`wan: {interface: %s}
lan: [{interface: %s}]
ndp-proxy:
  - interface: %s
    prefixes: [%s]
    mode: lan-neighbor
firewall: {mode: "off"}  # this lab sends unsolicited inbound traffic on purpose
`, CPEWANIf, CPELANIf, CPEWANIf, NPTOutside)
}

// ShareOutsidePrefix renumbers the LAN into the outside /64: the CPE's LAN
// address becomes SharedCPEAddr and the host's SharedHostAddr.
func (t *NPTTopology) ShareOutsidePrefix() error {
	if err := t.Lab.MustExec(t.CPE,
		[]string{"ip", "-6", "addr", "flush", "dev", CPELANIf, "scope", "global"},
		[]string{"ip", "-6", "addr", "add", SharedCPEAddr.String(), "dev", CPELANIf, "nodad"},
	); err != nil {
		return err
	}
	return t.Lab.MustExec(t.Host,
		[]string{"ip", "-6", "addr", "flush", "dev", HostIf, "scope", "global"},
		[]string{"ip", "-6", "addr", "add", SharedHostAddr.String(), "dev", HostIf, "nodad"},
		[]string{"ip", "-6", "route", "replace", "default", "via", SharedCPEAddr.Addr().String()},
	)
}

// Addresses of the shared-/64 variant.
var (
	SharedCPEAddr  = netip.MustParsePrefix("2001:db8:aaaa::1/64")
	SharedHostAddr = netip.MustParsePrefix("2001:db8:aaaa::123/64")
)

// AddInside numbers an NPT inside prefix p on a LAN link: the router's
// port routerIf gets p's ::1 (the on-link route the translated replies
// take), the host's hostIf p's ::2, which it returns. nodad: a tentative
// address cannot be a source.
func AddInside(lab *netlab.Lab, router, routerIf, host, hostIf string, p netip.Prefix) (netip.Addr, error) {
	addr := func(host byte, dev string) []string {
		return []string{"ip", "-6", "addr", "add", netip.PrefixFrom(WithHost(p, host), p.Bits()).String(), "dev", dev, "nodad"}
	}
	if err := lab.MustExec(router, addr(1, routerIf)); err != nil {
		return netip.Addr{}, err
	}
	if err := lab.MustExec(host, addr(2, hostIf)); err != nil {
		return netip.Addr{}, err
	}
	return WithHost(p, 2), nil
}
