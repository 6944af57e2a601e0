package loader

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

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
	if routerXdprCtGate(v) == routerXdprCtGateXDPR_CT_GATE_ON {
		return CTGateOn
	}
	return CTGateOff
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
	if n, tool := iptablesLegacyRules(); n > 0 {
		return CTGateOn, fmt.Sprintf("%s lists %d rules", tool, n), nil
	}
	return CTGateOff, "no nftables chain hooks prerouting/forward/postrouting and no iptables-legacy rule", nil
}

// nftForwardChains lists the base chains ("family table chain (hook)") on
// the hooks a forwarded packet passes. Without the nft command there is no
// nftables ruleset this tool can see; iptables-nft rules are nftables
// chains and are found here too.
func nftForwardChains() ([]string, error) {
	nft, err := exec.LookPath("nft")
	if err != nil {
		return nil, nil
	}
	out, err := exec.Command(nft, "-j", "list", "chains").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("nft -j list chains: %v: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, err
	}
	var doc struct {
		Nftables []struct {
			Chain *struct {
				Family string `json:"family"`
				Table  string `json:"table"`
				Name   string `json:"name"`
				Hook   string `json:"hook"`
			} `json:"chain"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("nft -j list chains: %w", err)
	}
	var chains []string
	for _, o := range doc.Nftables {
		c := o.Chain
		if c == nil {
			continue
		}
		switch c.Hook {
		// The netdev hooks too: XDP forwarding bypasses them as well.
		case "prerouting", "forward", "postrouting", "ingress", "egress":
			chains = append(chains, fmt.Sprintf("%s %s %s (%s)", c.Family, c.Table, c.Name, c.Hook))
		}
	}
	return chains, nil
}

// iptablesLegacyRules counts the rules the legacy (x_tables) iptables and
// ip6tables hold, with the tool that found them.
func iptablesLegacyRules() (int, string) {
	for _, tool := range []string{"iptables-legacy-save", "ip6tables-legacy-save"} {
		path, err := exec.LookPath(tool)
		if err != nil {
			continue
		}
		out, err := exec.Command(path).Output()
		if err != nil {
			continue
		}
		n := 0
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "-A ") {
				n++
			}
		}
		if n > 0 {
			return n, tool
		}
	}
	return 0, ""
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
}

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
