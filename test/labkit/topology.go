// Package labkit is what the lab tests and the demo share: the
// host-a — router — host-b topology, running commands (the xdprouter CLI
// among them) inside its namespaces, and TCP transfers whose content is
// verified end to end.
package labkit

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// Interface names. The router's ports are named after where they lead so
// that status and stats output reads without a diagram.
const (
	HostIf    = "eth0"
	RouterIfA = "to-a"
	RouterIfB = "to-b"
)

// Addresses come from the documentation (RFC 5737) and ULA (RFC 4193)
// ranges, so nothing in a lab can collide with a real network.
var (
	HostA4   = netip.MustParsePrefix("192.0.2.2/24")
	RouterA4 = netip.MustParsePrefix("192.0.2.1/24")
	RouterB4 = netip.MustParsePrefix("198.51.100.1/24")
	HostB4   = netip.MustParsePrefix("198.51.100.2/24")

	HostA6   = netip.MustParsePrefix("fd00:a::2/64")
	RouterA6 = netip.MustParsePrefix("fd00:a::1/64")
	RouterB6 = netip.MustParsePrefix("fd00:b::1/64")
	HostB6   = netip.MustParsePrefix("fd00:b::2/64")
)

// Topology is host-a — router — host-b: two hosts whose default routes
// point at a router namespace with forwarding on, joined by veth pairs.
type Topology struct {
	Lab    *netlab.Lab
	HostA  string // namespace names
	Router string
	HostB  string
	// BPFFS is where xdprouter pins the router's state. It is not mounted
	// here: attach has to mount it itself from inside `ip netns exec`,
	// which is the path users take.
	BPFFS string
}

// NewTopology builds the lab. On error everything made so far is removed.
func NewTopology() (*Topology, error) {
	lab, err := netlab.New()
	if err != nil {
		return nil, fmt.Errorf("new lab: %w", err)
	}
	t := &Topology{Lab: lab, BPFFS: filepath.Join(lab.RunDir(), "router")}
	if err := t.build(); err != nil {
		if cerr := lab.Close(); cerr != nil {
			err = fmt.Errorf("%w (and %v)", err, cerr)
		}
		return nil, fmt.Errorf("build host-a — router — host-b: %w", err)
	}
	return t, nil
}

func (t *Topology) build() error {
	var err error
	if t.HostA, err = t.Lab.AddNS("host-a", false); err != nil {
		return err
	}
	if t.Router, err = t.Lab.AddNS("router", true); err != nil {
		return err
	}
	if t.HostB, err = t.Lab.AddNS("host-b", false); err != nil {
		return err
	}
	if err := t.Lab.Veth(t.HostA, HostIf, t.Router, RouterIfA); err != nil {
		return err
	}
	if err := t.Lab.Veth(t.Router, RouterIfB, t.HostB, HostIf); err != nil {
		return err
	}
	// The hosts stand for machines on a wire, whose frames carry complete
	// checksums. A veth hands its peer the sender's skb as is, TCP and UDP
	// checksums only partially computed (CHECKSUM_PARTIAL, left to
	// "hardware"); native XDP on the router sees raw bytes, and a frame it
	// redirects loses that state, so it would arrive with a bad checksum.
	// That is a limit of veth + native XDP for locally originated traffic,
	// not of forwarding, and it is in the report to the team.
	for _, ns := range []string{t.HostA, t.HostB} {
		if _, err := t.Lab.Exec(ns, "ethtool", "-K", HostIf, "tx", "off"); err != nil {
			return fmt.Errorf("checksum offload off: %w", err)
		}
	}
	// nodad: tentative addresses cannot be used as sources, and waiting
	// for DAD would only slow every lab down.
	addr := func(p netip.Prefix, dev string) []string {
		if p.Addr().Is6() {
			return []string{"ip", "-6", "addr", "add", p.String(), "dev", dev, "nodad"}
		}
		return []string{"ip", "addr", "add", p.String(), "dev", dev}
	}
	via := func(p netip.Prefix) []string {
		if p.Addr().Is6() {
			return []string{"ip", "-6", "route", "add", "default", "via", p.Addr().String()}
		}
		return []string{"ip", "route", "add", "default", "via", p.Addr().String()}
	}
	if err := t.Lab.MustExec(t.HostA,
		addr(HostA4, HostIf), addr(HostA6, HostIf), via(RouterA4), via(RouterA6)); err != nil {
		return err
	}
	if err := t.Lab.MustExec(t.Router,
		addr(RouterA4, RouterIfA), addr(RouterA6, RouterIfA),
		addr(RouterB4, RouterIfB), addr(RouterB6, RouterIfB)); err != nil {
		return err
	}
	return t.Lab.MustExec(t.HostB,
		addr(HostB4, HostIf), addr(HostB6, HostIf), via(RouterB4), via(RouterB6))
}

// Close removes the namespaces and every mount under the lab's directory,
// the bpffs xdprouter mounted included.
func (t *Topology) Close() error { return t.Lab.Close() }

// Diagram describes the topology for people reading the demo or a test log.
func (t *Topology) Diagram() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  host-a (netns %s)\n", t.HostA)
	fmt.Fprintf(&b, "    %-5s %-16s %-14s default via %s, %s\n", HostIf, HostA4, HostA6, RouterA4.Addr(), RouterA6.Addr())
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "    %-5s %-16s %-14s\n", RouterIfA, RouterA4, RouterA6)
	fmt.Fprintf(&b, "  router (netns %s), ip_forward=1, ipv6 forwarding=1\n", t.Router)
	fmt.Fprintf(&b, "    %-5s %-16s %-14s\n", RouterIfB, RouterB4, RouterB6)
	fmt.Fprintf(&b, "       | veth\n")
	fmt.Fprintf(&b, "    %-5s %-16s %-14s default via %s, %s\n", HostIf, HostB4, HostB6, RouterB4.Addr(), RouterB6.Addr())
	fmt.Fprintf(&b, "  host-b (netns %s)\n", t.HostB)
	return b.String()
}
