package loader

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// CTGate says whether an attachment's XDP forward path is gated by the
// kernel's conntrack (bpf/include/conntrack.h): gated, XDP forwards only
// TCP and UDP of flows conntrack has accepted and seen established, and
// hands everything else to the kernel, so the router's netfilter ruleset
// decides as it would without XDP.
type CTGate string

const (
	// CTGateAuto gates unless the network namespace has no netfilter
	// ruleset that could filter forwarded traffic (ResolveCTGate).
	CTGateAuto CTGate = "auto"
	// CTGateOn gates.
	CTGateOn CTGate = "on"
	// CTGateOff forwards without asking conntrack.
	CTGateOff CTGate = "off"
)

// ParseCTGate accepts "auto", "on" or "off".
func ParseCTGate(s string) (CTGate, error) {
	switch g := CTGate(s); g {
	case CTGateAuto, CTGateOn, CTGateOff:
		return g, nil
	}
	return "", fmt.Errorf("unknown conntrack gate %q (want auto, on or off)", s)
}

func (g CTGate) on() bool { return g == CTGateOn }

func ctGateOf(v uint8) CTGate {
	switch routerXdprCtGate(v) {
	case routerXdprCtGateXDPR_CT_GATE_ON, routerXdprCtGateXDPR_CT_GATE_ON_NO_KFUNCS:
		return CTGateOn
	}
	return CTGateOff
}

// record is the xdpr_ifaces value of the gate g loaded for kern: a gate
// without the kfuncs is told apart from one with them.
func (g CTGate) record(kern KernelReport) uint8 {
	if g.on() && !kern.ctKfuncs() {
		return uint8(routerXdprCtGateXDPR_CT_GATE_ON_NO_KFUNCS)
	}
	return g.value()
}

func (g CTGate) value() uint8 {
	if g.on() {
		return uint8(routerXdprCtGateXDPR_CT_GATE_ON)
	}
	return uint8(routerXdprCtGateXDPR_CT_GATE_OFF)
}

// ResolveCTGate turns auto into on or off for the calling thread's network
// namespace and says why; on and off are returned as they are. Auto is off
// only when nothing in netfilter could filter forwarded packets: no
// nftables chain hooked at prerouting, forward or postrouting (in any
// table and family), and no iptables-legacy rule. Then conntrack tracks
// nothing and XDP bypasses nothing. Any doubt (nft present but failing)
// gates.
func ResolveCTGate(g CTGate) (CTGate, string, error) {
	switch g {
	case CTGateOn:
		return CTGateOn, "--ct-gate on", nil
	case CTGateOff:
		return CTGateOff, "--ct-gate off", nil
	case CTGateAuto:
	default:
		return "", "", fmt.Errorf("unknown conntrack gate %q", g)
	}
	if chains, err := nftForwardChains(); err != nil {
		return CTGateOn, fmt.Sprintf("cannot read the nftables ruleset (%v): gated to be safe", err), nil
	} else if len(chains) > 0 {
		more := ""
		if len(chains) > 1 {
			more = fmt.Sprintf(" and %d more", len(chains)-1)
		}
		return CTGateOn, fmt.Sprintf("nftables chain %s%s filters forwarded traffic", chains[0], more), nil
	}
	if t := iptablesLegacyTables(); len(t) > 0 {
		return CTGateOn, fmt.Sprintf("%s is loaded", strings.Join(t, ", ")), nil
	}
	return CTGateOff, "no nftables chain hooks prerouting/forward/postrouting/ingress/egress and no iptables-legacy table is loaded: nothing to bypass", nil
}

// nftForwardChains lists the nftables base chains ("family table chain
// (hook)") on the hooks a forwarded packet passes, read over netlink in the
// calling thread's namespace, so no nft binary is needed to see them (and
// iptables-nft rules, which are nftables chains, are found too). The netdev
// hooks count: XDP forwarding bypasses them as well.
func nftForwardChains() ([]string, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables netlink: %w", err)
	}
	defer c.CloseLasting()
	all, err := c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: %w", err)
	}
	var chains []string
	for _, ch := range all {
		if ch.Hooknum == nil || ch.Table == nil {
			continue // a regular chain: reached only from a base chain
		}
		if hook := forwardHookName(ch.Table.Family, *ch.Hooknum); hook != "" {
			chains = append(chains, fmt.Sprintf("%s %s %s (%s)", familyName(ch.Table.Family), ch.Table.Name, ch.Name, hook))
		}
	}
	return chains, nil
}

// forwardHookName names a hook a forwarded packet passes, or "".
func forwardHookName(f nftables.TableFamily, h nftables.ChainHook) string {
	switch f {
	case nftables.TableFamilyINet, nftables.TableFamilyIPv4, nftables.TableFamilyIPv6:
		switch h {
		case *nftables.ChainHookPrerouting:
			return "prerouting"
		case *nftables.ChainHookForward:
			return "forward"
		case *nftables.ChainHookPostrouting:
			return "postrouting"
		}
	case nftables.TableFamilyNetdev:
		switch h {
		case *nftables.ChainHookIngress:
			return "ingress"
		case *nftables.ChainHookEgress:
			return "egress"
		}
	}
	return ""
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyNetdev:
		return "netdev"
	}
	return fmt.Sprintf("family %d", f)
}

// iptablesLegacyTables lists the legacy (x_tables) iptables and ip6tables
// tables loaded in the calling thread's namespace. Any of them counts, even
// empty: a built-in chain's policy (iptables-legacy -P FORWARD DROP) filters
// with no rule at all, and a nat table's DNAT would be bypassed too.
func iptablesLegacyTables() []string {
	var tables []string
	for _, f := range []struct{ file, tool string }{
		{"/proc/thread-self/net/ip_tables_names", "iptables-legacy"},
		{"/proc/thread-self/net/ip6_tables_names", "ip6tables-legacy"},
	} {
		b, err := os.ReadFile(f.file)
		if err != nil {
			continue // x_tables not in this kernel: nothing to bypass
		}
		for _, t := range strings.Fields(string(b)) {
			tables = append(tables, f.tool+" table "+t)
		}
	}
	return tables
}

// The sysctls of the calling thread's network namespace that the gate
// reads and sets.
const (
	sysctlTCPEstablished = "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established"
	sysctlUDPStream      = "/proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream"
	sysctlBeLiberal      = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"
)

// ctTimeouts are the gate's refresh constants (see xdpr_ct_* in
// conntrack.h): the established timeouts conntrack would give the flow
// itself, and the time left below which XDP refreshes: half of each, at
// most refreshLeft. Below the kernel's own shortest timeouts of a live
// flow (TCP with unacknowledged data: 300 s; UDP before it is a stream:
// 30 s), so that a flow the kernel itself keeps alive (traffic to the
// router, which the gate sees before the route lookup) is not refreshed on
// every packet; XDP-carried flows are refreshed once per timeout.
type ctTimeouts struct {
	tcpMS, udpMS               uint32
	tcpRefreshJ, udpRefreshJ   uint32
	tcpSeconds, udpSeconds, hz uint64
	// cacheJ is how long a CPU reuses a gate verdict (xdpr_ct_cache):
	// ctCacheLife in jiffies, rounded up.
	cacheJ uint32
}

// ctCacheLife bounds how long a "forward" verdict of the gate is reused
// on one CPU, and so how long a conntrack entry deleted or changed by the
// kernel (conntrack -D, a flush, an expiry) can still be carried in XDP
// there. The bound is this plus up to one jiffy (the clock's grain); a
// lookup every 10 ms is nothing beside one per packet. A variable, so that
// tests can lengthen it.
var ctCacheLife = 10 * time.Millisecond

// readCTTimeouts reads the established timeouts from the sysctls (the
// kernel's defaults where they cannot be read) and the kernel's HZ.
func readCTTimeouts() ctTimeouts {
	tcp := readSysctlUint(sysctlTCPEstablished, 432000)
	udp := readSysctlUint(sysctlUDPStream, 120)
	hz := kernelHZ()
	clamp := func(v uint64) uint32 {
		if v > 1<<31-1 {
			return 1<<31 - 1
		}
		return uint32(v)
	}
	return ctTimeouts{
		tcpMS: clamp(tcp * 1000), udpMS: clamp(udp * 1000),
		tcpRefreshJ: clamp(min(tcp/2, refreshLeft) * hz), udpRefreshJ: clamp(min(udp/2, refreshLeft) * hz),
		tcpSeconds: tcp, udpSeconds: udp, hz: hz,
		cacheJ: clamp((uint64(ctCacheLife.Nanoseconds())*hz + 999_999_999) / 1_000_000_000),
	}
}

// refreshLeft is the most time left (seconds) at which the gate refreshes.
const refreshLeft = 15

func readSysctlUint(path string, def uint64) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v == 0 {
		return def
	}
	return v
}

// kernelHZ is CONFIG_HZ (nf_conn.timeout counts jiffies), from the
// kernel's config; 250 (Debian's, and the default) when none is readable.
func kernelHZ() uint64 {
	var u unix.Utsname
	_ = unix.Uname(&u)
	release := unix.ByteSliceToString(u.Release[:])
	for _, path := range []string{"/proc/config.gz", "/boot/config-" + release} {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		var r io.Reader = f
		if strings.HasSuffix(path, ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				f.Close()
				continue
			}
			r = zr
		}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ="); ok {
				if hz, err := strconv.ParseUint(v, 10, 64); err == nil && hz > 0 {
					f.Close()
					return hz
				}
			}
		}
		f.Close()
	}
	return 250
}

// ensureBeLiberal turns nf_conntrack_tcp_be_liberal on in the calling
// thread's network namespace and says whether it changed it. Conntrack's
// TCP window tracking does not advance while XDP carries a flow's data, so
// the FIN or RST that later goes through the kernel would be out of the
// window conntrack remembers and judged INVALID (and dropped by any ruleset
// dropping invalid packets). The kernel's flowtable marks offloaded flows
// IP_CT_TCP_FLAG_BE_LIBERAL for the same reason; no kfunc sets that flag,
// so the namespace-wide sysctl is the equivalent. It only widens the
// window check; state tracking (SYN, FIN, RST) is unchanged.
func ensureBeLiberal() (bool, error) {
	b, err := os.ReadFile(sysctlBeLiberal)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // no conntrack in this namespace (yet)
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", sysctlBeLiberal, err)
	}
	if strings.TrimSpace(string(b)) != "0" {
		return false, nil
	}
	if err := os.WriteFile(sysctlBeLiberal, []byte("1\n"), 0o644); err != nil {
		return false, fmt.Errorf("set %s: %w", sysctlBeLiberal, err)
	}
	return true, nil
}

// restoreBeLiberal undoes ensureBeLiberal.
func restoreBeLiberal() error {
	if err := os.WriteFile(sysctlBeLiberal, []byte("0\n"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore %s: %w", sysctlBeLiberal, err)
	}
	return nil
}

// BeLiberal reads nf_conntrack_tcp_be_liberal in the calling thread's
// network namespace: "0", "1", or "" when there is no conntrack.
func BeLiberal() string {
	b, err := os.ReadFile(sysctlBeLiberal)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
