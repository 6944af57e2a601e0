// Package doctor inspects the host for what would defeat the router or its
// XDP fast path: sysctls, interfaces (veth peers without NAPI, LRO, generic
// XDP, MTU), kernel features, the bpffs, and other daemons that send RAs or
// run a DHCPv6 client. Each finding is one line with its fix.
//
// The checks read the host through System, so tests run them on fakes;
// Host is the real one.
package doctor

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/xdprouter/xdprouter/control/sysctl"
	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/loader/vethnapi"
)

// Severity of a finding.
type Severity string

const (
	OK    Severity = "ok"
	Warn  Severity = "warn"
	Error Severity = "error"
)

// Finding is one line of the report.
type Finding struct {
	Severity Severity `json:"severity"`
	Check    string   `json:"check"`             // e.g. "sysctl", "veth-peer"
	Subject  string   `json:"subject,omitempty"` // interface, sysctl or process
	What     string   `json:"what"`
	Why      string   `json:"why,omitempty"`
	Fix      string   `json:"fix,omitempty"`
}

// XDP attach modes as netlink reports them.
const (
	XDPNone    = ""
	XDPNative  = "native"
	XDPGeneric = "generic"
	XDPOffload = "offload"
)

// Link is what the doctor needs to know about one interface.
type Link struct {
	Name  string
	Index int
	Type  string // netlink kind: "veth", "device", "bridge", ...
	MTU   int
	Ether bool // has a 6-byte hardware address
	XDP   string
	GRO   bool
	LRO   bool
	// For a veth: the peer, when it is in this namespace (PeerName set),
	// or the peer's namespace id when it is elsewhere (PeerOtherNS), and
	// whether the peer has NAPI (vethnapi.Yes, No, Unknown), which the
	// kernel tells wherever the peer is (Linux 6.3 onwards).
	PeerName    string
	PeerGRO     bool
	PeerXDP     string
	PeerOtherNS bool
	PeerNAPI    string
	// XDPFeatures are the driver's NETDEV_XDP_ACT_* flags (vethnapi.RxSG,
	// NDOXmitSG, ...); XDPFeaturesErr says why they are unknown (a kernel
	// before 6.3, vethnapi.ErrNoXDPFeatures).
	XDPFeatures    uint64
	XDPFeaturesErr string
}

// Process is one entry of /proc.
type Process struct {
	PID     int
	Comm    string
	Cmdline []string
}

// System is the host as the checks see it.
type System interface {
	// Sysctl reads a value by its path under /proc/sys
	// ("net/ipv6/conf/all/forwarding").
	Sysctl(path string) (string, error)
	Links() ([]Link, error)
	Processes() ([]Process, error)
	ReadFile(path string) ([]byte, error)
	Glob(pattern string) ([]string, error)
	// IsBPFFS says whether path is on a bpf filesystem.
	IsBPFFS(path string) bool
	// Kernel is what the data plane's probe found in the running kernel
	// (loader.ProbeKernel).
	Kernel() loader.KernelReport
}

// Options choose what is checked.
type Options struct {
	// Interfaces the router uses (from -i or a config). Empty: those with
	// an XDP program attached, or, when none has one, every Ethernet
	// interface (whose per-port sysctls are then not judged).
	Interfaces []string
	// BPFFS is the directory the state is pinned under.
	BPFFS string
}

// Report is the doctor's result.
type Report struct {
	Findings []Finding `json:"findings"`
	Errors   int       `json:"errors"`
	Warnings int       `json:"warnings"`
}

// Run runs every check.
func Run(sys System, opt Options) Report {
	var fs []Finding
	fs = append(fs, checkSysctls(sys, opt)...)
	fs = append(fs, checkLinks(sys, opt)...)
	fs = append(fs, checkKernel(sys)...)
	fs = append(fs, checkBPFFS(sys, opt)...)
	fs = append(fs, checkServices(sys)...)
	r := Report{Findings: fs}
	for _, f := range fs {
		switch f.Severity {
		case Error:
			r.Errors++
		case Warn:
			r.Warnings++
		}
	}
	return r
}

// String is the report as text, one finding a line.
func (r Report) String() string {
	var b strings.Builder
	for _, f := range r.Findings {
		subj := f.Subject
		if subj != "" {
			subj += ": "
		}
		fmt.Fprintf(&b, "%-5s %-10s %s%s", strings.ToUpper(string(f.Severity)), f.Check, subj, f.What)
		if f.Why != "" {
			fmt.Fprintf(&b, " — %s", f.Why)
		}
		if f.Fix != "" {
			fmt.Fprintf(&b, " — fix: %s", f.Fix)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%d errors, %d warnings\n", r.Errors, r.Warnings)
	return b.String()
}

func sysctlName(path string) string { return sysctl.Name(path) }

const daemonNote = "`xdprouter run` sets it itself; attach/apply do not"

func checkSysctls(sys System, opt Options) []Finding {
	var out []Finding
	global := []struct {
		path string
		sev  Severity
		why  string
	}{
		{"net/ipv6/conf/all/forwarding", Error, "with 0 the kernel and the XDP program (pass_fwd_disabled) forward no IPv6; " + daemonNote},
		{"net/ipv4/ip_forward", Warn, "with 0 no IPv4 is forwarded (LAN IPv4, tunnels, NAT44); " + daemonNote},
	}
	for _, g := range global {
		v, err := sys.Sysctl(g.path)
		name := sysctlName(g.path)
		switch {
		case err != nil:
			out = append(out, Finding{Severity: Warn, Check: "sysctl", Subject: name, What: "unreadable: " + err.Error()})
		case v != "1":
			out = append(out, Finding{Severity: g.sev, Check: "sysctl", Subject: name, What: "is " + v, Why: g.why,
				Fix: "sysctl -w " + name + "=1"})
		default:
			out = append(out, Finding{Severity: OK, Check: "sysctl", Subject: name, What: "is 1"})
		}
	}
	return out
}

// portSysctls are the per-port sysctls of a router port.
func portSysctls(sys System, ifname string) []Finding {
	var out []Finding
	ra, err := sys.Sysctl("net/ipv6/conf/" + ifname + "/accept_ra")
	if err != nil {
		return nil
	}
	fwd, _ := sys.Sysctl("net/ipv6/conf/" + ifname + "/forwarding")
	name := sysctlName("net/ipv6/conf/" + ifname + "/accept_ra")
	// The kernel ignores RAs on a forwarding interface unless
	// accept_ra=2.
	if ra == "2" || (ra == "1" && fwd != "1") {
		out = append(out, Finding{Severity: Warn, Check: "sysctl", Subject: name, What: "is " + ra,
			Why: "the kernel configures this port from RAs it hears (its own on a LAN, a second default route and SLAAC addresses on the WAN); " + daemonNote,
			Fix: "sysctl -w " + name + "=0"})
	}
	if fwd != "1" {
		n := sysctlName("net/ipv6/conf/" + ifname + "/forwarding")
		out = append(out, Finding{Severity: Warn, Check: "sysctl", Subject: n, What: "is " + fwd,
			Why: "Neighbor Advertisements from this port lack the Router flag; " + daemonNote,
			Fix: "sysctl -w " + n + "=1"})
	}
	return out
}

func checkLinks(sys System, opt Options) []Finding {
	links, err := sys.Links()
	if err != nil {
		return []Finding{{Severity: Warn, Check: "links", What: "cannot list interfaces: " + err.Error()}}
	}
	byName := map[string]Link{}
	for _, l := range links {
		byName[l.Name] = l
	}
	// Which interfaces are the router's, and how sure we are of it.
	var scope []Link
	sure := true
	var out []Finding
	if len(opt.Interfaces) > 0 {
		for _, n := range opt.Interfaces {
			l, ok := byName[n]
			if !ok {
				out = append(out, Finding{Severity: Error, Check: "link", Subject: n, What: "no such interface",
					Fix: "create it, or correct the name"})
				continue
			}
			scope = append(scope, l)
		}
	} else {
		for _, l := range links {
			if l.XDP != XDPNone {
				scope = append(scope, l)
			}
		}
		if len(scope) == 0 {
			sure = false
			for _, l := range links {
				if l.Ether {
					scope = append(scope, l)
				}
			}
		}
	}
	for _, l := range scope {
		n := 0
		add := func(f Finding) {
			f.Subject = l.Name
			out = append(out, f)
			n++
		}
		if l.Type == "veth" {
			peer := l.PeerName
			if peer == "" {
				peer = "PEER"
			}
			switch {
			case l.PeerNAPI == string(vethnapi.No):
				fix := "ethtool -K " + peer + " gro on"
				if l.PeerOtherNS {
					fix = "in the peer's namespace: " + fix
				}
				add(Finding{Severity: Warn, Check: "veth-peer", What: "peer " + peerName(l) + " has neither GRO nor an XDP program (no NAPI)",
					Why: "XDP cannot transmit to " + l.Name + ": what is routed out of it goes through the kernel, NDP proxy answers through TC, off the fast path",
					Fix: fix + " (or attach any XDP program to it)"})
			case l.PeerNAPI != string(vethnapi.Yes) && l.PeerOtherNS:
				add(Finding{Severity: Warn, Check: "veth-peer", What: "peer is in another network namespace, which cannot be opened, and this kernel does not tell whether it has GRO or an XDP program",
					Why: "a veth delivers frames from XDP only to a peer with NAPI (GRO on or an XDP program): what is routed out of " + l.Name + " goes through the kernel, off the fast path",
					Fix: "run xdprouter where it sees the peer's namespace (named in /run/netns or held by a visible process), or Linux 6.3 or later"})
			}
		}
		if l.LRO {
			add(Finding{Severity: Warn, Check: "lro", What: "LRO is on",
				Why: "merged segments cannot be forwarded as they are; native XDP refuses or the kernel resegments",
				Fix: "ethtool -K " + l.Name + " lro off"})
		}
		if l.XDP == XDPGeneric {
			add(Finding{Severity: Warn, Check: "xdp-mode", What: "XDP runs in generic mode",
				Why: "generic XDP runs after the skb is built, so the fast path saves little; the driver may lack native XDP",
				Fix: "xdprouter attach --mode native " + l.Name + " (needs driver support)"})
		}
		if f, ok := checkMTU(l); ok {
			add(f)
		}
		if sure {
			for _, f := range portSysctls(sys, l.Name) {
				out = append(out, f)
				n++
			}
		}
		if n == 0 {
			what := "nothing in the way"
			if l.XDP != XDPNone {
				what = "XDP " + l.XDP
			}
			out = append(out, Finding{Severity: OK, Check: "link", Subject: l.Name, What: what})
		}
	}
	return out
}

// checkMTU: beyond one buffer (loader.SingleBufferMTU) frames reach XDP
// in several, which the router's program handles (xdp.frags). What is left
// is the driver: native XDP needs it to hand multi-buffer frames over
// (else native attach is refused, and auto mode attaches generic), and
// XDP redirects a jumbo frame out of a port only if its driver transmits
// one (else the kernel forwards it, counted as pass_mb_egress). A veth
// does both, whenever its peer has NAPI (the veth-peer check), on a kernel
// that reports XDP features: before 6.3 no redirect takes such a frame.
func checkMTU(l Link) (Finding, bool) {
	if l.MTU <= loader.SingleBufferMTU || (l.Type == "veth" && l.XDPFeaturesErr == "") {
		return Finding{}, false
	}
	what := fmt.Sprintf("MTU %d beyond one XDP buffer", l.MTU)
	smaller := fmt.Sprintf("ip link set dev %s mtu %d", l.Name, loader.SingleBufferMTU)
	switch {
	case l.XDPFeaturesErr != "":
		return Finding{Severity: Warn, Check: "mtu", What: what + "; the driver's XDP features are unknown (" + l.XDPFeaturesErr + ")",
			Why: "jumbo frames routed out of it are left to the kernel (pass_mb_egress: a kernel before 6.3 redirects no multi-buffer frame), and whether the driver hands them to XDP is unknown: native attach may be refused (auto mode then attaches generic)",
			Fix: "a kernel of 6.3 or later reports them; or " + smaller}, true
	case l.XDPFeatures&vethnapi.RxSG == 0:
		return Finding{Severity: Warn, Check: "mtu", What: what + "; the driver's XDP is single-buffer",
			Why: "native XDP is refused at this MTU (auto mode attaches generic, which saves little)",
			Fix: smaller + " for native XDP, or a driver with XDP multi-buffer"}, true
	case l.XDPFeatures&vethnapi.NDOXmitSG == 0:
		return Finding{Severity: Warn, Check: "mtu", What: what + "; the driver cannot transmit multi-buffer XDP frames",
			Why: "jumbo frames routed out of " + l.Name + " are forwarded by the kernel, not XDP (counted as pass_mb_egress)",
			Fix: smaller + ", or a driver that transmits multi-buffer XDP frames (ndo-xmit-sg)"}, true
	}
	return Finding{}, false
}

// kernelFixes says what brings a missing kernel feature (the name of
// loader.KernelFeature) back; without an entry, a newer kernel.
var kernelFixes = map[string]string{
	"bpf_xdp_ct_lookup":     ctKfuncFix,
	"bpf_ct_release":        ctKfuncFix,
	"bpf_ct_change_timeout": ctKfuncFix,
}

const ctKfuncFix = "modprobe nf_conntrack (a kernel with CONFIG_NF_CONNTRACK and BTF), then attach again"

func checkKernel(sys System) []Finding {
	if _, err := sys.ReadFile("/sys/kernel/btf/vmlinux"); err != nil {
		return []Finding{{Severity: Error, Check: "kernel", Subject: "BTF", What: "/sys/kernel/btf/vmlinux missing",
			Why: "the programs need the kernel's BTF", Fix: "a kernel built with CONFIG_DEBUG_INFO_BTF=y"}}
	}
	out := []Finding{{Severity: OK, Check: "kernel", Subject: "BTF", What: "present"}}
	// The lines attach and apply print: what is missing, and its cost.
	kern := sys.Kernel()
	for _, f := range kern.Features {
		if f.Present {
			out = append(out, Finding{Severity: OK, Check: "kernel", Subject: f.Name, What: "available"})
			continue
		}
		fix, ok := kernelFixes[f.Name]
		if !ok {
			fix = "Linux " + f.Since + " or later"
		}
		out = append(out, Finding{Severity: Warn, Check: "kernel", Subject: f.Name, What: kern.Line(f.Name), Fix: fix})
	}
	return out
}

func checkBPFFS(sys System, opt Options) []Finding {
	dir := opt.BPFFS
	if dir == "" {
		dir = "/sys/fs/bpf/xdprouter"
	}
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		if sys.IsBPFFS(p) {
			return []Finding{{Severity: OK, Check: "bpffs", Subject: p, What: "mounted"}}
		}
		if p == "/" || p == "." {
			break
		}
	}
	mnt := filepath.Dir(filepath.Clean(dir))
	return []Finding{{Severity: Warn, Check: "bpffs", Subject: dir, What: "no bpf filesystem at or above it",
		Why: "pinned maps and links live there; attach mounts one itself, but one made inside `ip netns exec` dies with the command",
		Fix: "mkdir -p " + mnt + " && mount -t bpf bpf " + mnt}}
}

// Services that compete with the router on its ports.
func checkServices(sys System) []Finding {
	procs, err := sys.Processes()
	if err != nil {
		return []Finding{{Severity: Warn, Check: "services", What: "cannot list processes: " + err.Error()}}
	}
	seen := map[string]bool{}
	var out []Finding
	add := func(f Finding) {
		if !seen[f.Subject] {
			seen[f.Subject] = true
			out = append(out, f)
		}
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].PID < procs[j].PID })
	for _, p := range procs {
		switch p.Comm {
		case "radvd":
			add(Finding{Severity: Warn, Check: "service", Subject: "radvd", What: fmt.Sprintf("running (pid %d)", p.PID),
				Why: "it sends RAs too: LAN hosts learn two routers or conflicting prefixes",
				Fix: "systemctl disable --now radvd, or remove the router's LAN ports from /etc/radvd.conf"})
		case "dnsmasq":
			if dnsmasqEnablesRA(sys, p) {
				add(Finding{Severity: Warn, Check: "service", Subject: "dnsmasq", What: fmt.Sprintf("running with enable-ra (pid %d)", p.PID),
					Why: "it sends RAs too: LAN hosts learn two routers or conflicting prefixes",
					Fix: "remove enable-ra (and ra-* dhcp-range modes) from the dnsmasq configuration"})
			}
		case "dhcp6c":
			add(Finding{Severity: Warn, Check: "service", Subject: "dhcp6c", What: fmt.Sprintf("wide-dhcpv6-client running (pid %d)", p.PID),
				Why: "a second DHCPv6 client on the WAN asks for its own delegation; the ISP may give one prefix to either",
				Fix: "systemctl disable --now wide-dhcpv6-client"})
		case "dhclient", "odhcp6c", "dhcpcd":
			if p.Comm == "dhclient" && !slices.Contains(p.Cmdline, "-6") {
				continue
			}
			add(Finding{Severity: Warn, Check: "service", Subject: p.Comm, What: fmt.Sprintf("DHCPv6 client running (pid %d)", p.PID),
				Why: "a second DHCPv6 client on the WAN asks for its own delegation; the ISP may give one prefix to either",
				Fix: "stop it for the router's WAN port (" + strings.Join(p.Cmdline, " ") + ")"})
		case "systemd-network":
			add(Finding{Severity: Warn, Check: "service", Subject: "systemd-networkd", What: fmt.Sprintf("running (pid %d)", p.PID),
				Why: "if it manages the router's ports it may accept RAs, run DHCPv6 or send RAs (IPv6SendRA=) there",
				Fix: "for the router's ports: Unmanaged=yes in a .link/.network [Link] section, or IPv6AcceptRA=no, IPv6SendRA=no, DHCP=no; then networkctl reload"})
		}
	}
	if len(out) == 0 {
		out = append(out, Finding{Severity: OK, Check: "service", What: "no other RA sender or DHCPv6 client running"})
	}
	return out
}

// dnsmasqEnablesRA: --enable-ra on the command line, or enable-ra in the
// configuration it reads (--conf-file, /etc/dnsmasq.conf, /etc/dnsmasq.d).
func dnsmasqEnablesRA(sys System, p Process) bool {
	files := []string{"/etc/dnsmasq.conf"}
	for i, a := range p.Cmdline {
		switch {
		case a == "--enable-ra":
			return true
		case strings.HasPrefix(a, "--conf-file="):
			files = []string{strings.TrimPrefix(a, "--conf-file=")}
		case a == "-C" && i+1 < len(p.Cmdline):
			files = []string{p.Cmdline[i+1]}
		case strings.HasPrefix(a, "--conf-dir="):
			d := strings.SplitN(strings.TrimPrefix(a, "--conf-dir="), ",", 2)[0]
			if m, err := sys.Glob(filepath.Join(d, "*")); err == nil {
				files = append(files, m...)
			}
		}
	}
	if m, err := sys.Glob("/etc/dnsmasq.d/*"); err == nil {
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := sys.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) == "enable-ra" {
				return true
			}
		}
	}
	return false
}

// peerName names a veth's peer for a finding.
func peerName(l Link) string {
	if l.PeerName != "" {
		return l.PeerName
	}
	return "(in another network namespace)"
}
