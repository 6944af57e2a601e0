package doctor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/loader/vethnapi"
)

type fakeSys struct {
	sysctls map[string]string
	links   []Link
	procs   []Process
	files   map[string]string
	bpffs   map[string]bool
	kernel  loader.KernelReport
}

func (f *fakeSys) Sysctl(p string) (string, error) {
	v, ok := f.sysctls[p]
	if !ok {
		return "", os.ErrNotExist
	}
	return v, nil
}
func (f *fakeSys) Links() ([]Link, error)        { return f.links, nil }
func (f *fakeSys) Processes() ([]Process, error) { return f.procs, nil }
func (f *fakeSys) ReadFile(p string) ([]byte, error) {
	v, ok := f.files[p]
	if !ok {
		return nil, os.ErrNotExist
	}
	return []byte(v), nil
}
func (f *fakeSys) Glob(pattern string) ([]string, error) {
	var out []string
	for p := range f.files {
		if ok, _ := filepath.Match(pattern, p); ok {
			out = append(out, p)
		}
	}
	return out, nil
}
func (f *fakeSys) IsBPFFS(p string) bool       { return f.bpffs[p] }
func (f *fakeSys) Kernel() loader.KernelReport { return f.kernel }

// kernel618 is a kernel with every feature; kernel61 is Debian 12's
// before its updates: no TCX, no conntrack module loaded.
var (
	kernel618 = loader.KernelReport{Release: "6.18.0", Features: []loader.KernelFeature{
		{Name: "TCX", Since: "6.6", Present: true, Cost: "slow path on tc clsact"},
		{Name: "bpf_xdp_ct_lookup", Since: "5.18", Present: true, Cost: "conntrack gate unavailable"},
	}}
	kernel61 = loader.KernelReport{Release: "6.1.0-9-amd64", Features: []loader.KernelFeature{
		{Name: "TCX", Since: "6.6", Cost: "slow path on tc clsact"},
		{Name: "bpf_xdp_ct_lookup", Since: "5.18", Cost: "conntrack gate unavailable"},
	}}
)

// healthy is a host with nothing to report.
func healthy() *fakeSys {
	return &fakeSys{
		sysctls: map[string]string{
			"net/ipv6/conf/all/forwarding":  "1",
			"net/ipv4/ip_forward":           "1",
			"net/ipv6/conf/wan0/accept_ra":  "0",
			"net/ipv6/conf/wan0/forwarding": "1",
			"net/ipv6/conf/lan0/accept_ra":  "1",
			"net/ipv6/conf/lan0/forwarding": "1",
		},
		links: []Link{
			{Name: "lo", Index: 1, Type: "device", MTU: 65536},
			{Name: "wan0", Index: 2, Type: "device", MTU: 1500, Ether: true, XDP: XDPNative, GRO: true},
			{Name: "lan0", Index: 3, Type: "veth", MTU: 1500, Ether: true, XDP: XDPNative, PeerName: "lan0p", PeerGRO: true, PeerXDP: XDPNative, PeerNAPI: "yes"},
		},
		procs: []Process{{PID: 1, Comm: "systemd"}, {PID: 200, Comm: "dnsmasq", Cmdline: []string{"dnsmasq", "-k"}}},
		files: map[string]string{
			"/sys/kernel/btf/vmlinux": "\x00tcx_link\x00bpf_xdp_ct_lookup\x00",
			"/etc/dnsmasq.conf":       "interface=lan0\ndhcp-range=10.0.0.10,10.0.0.100\n",
		},
		bpffs:  map[string]bool{"/sys/fs/bpf": true},
		kernel: kernel618,
	}
}

// find returns the findings of check about subject.
func find(r Report, check, subject string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Check == check && f.Subject == subject {
			out = append(out, f)
		}
	}
	return out
}

func TestDoctorHealthyHost(t *testing.T) {
	r := Run(healthy(), Options{})
	if r.Errors != 0 || r.Warnings != 0 {
		t.Fatalf("healthy host: %d errors, %d warnings:\n%s", r.Errors, r.Warnings, r)
	}
	if len(find(r, "link", "wan0")) != 1 || len(find(r, "link", "lo")) != 0 {
		t.Errorf("scope should be the interfaces with XDP:\n%s", r)
	}
}

func TestDoctorFindings(t *testing.T) {
	s := healthy()
	s.sysctls["net/ipv6/conf/all/forwarding"] = "0"
	s.sysctls["net/ipv4/ip_forward"] = "0"
	s.sysctls["net/ipv6/conf/wan0/accept_ra"] = "2"
	s.sysctls["net/ipv6/conf/lan0/forwarding"] = "0"
	s.links[1].LRO = true
	s.links[1].XDP = XDPGeneric
	s.links[1].MTU = 9001
	s.links[2].PeerGRO, s.links[2].PeerXDP, s.links[2].PeerNAPI = false, XDPNone, "no"
	s.links[2].MTU = 9000
	s.procs = append(s.procs,
		Process{PID: 300, Comm: "radvd"},
		Process{PID: 301, Comm: "dhcp6c"},
		Process{PID: 302, Comm: "systemd-network"},
		Process{PID: 303, Comm: "dhclient", Cmdline: []string{"dhclient", "-4", "eth0"}})
	s.files["/etc/dnsmasq.d/lan.conf"] = "# RAs\nenable-ra\n"
	s.kernel = kernel61
	s.bpffs = nil

	r := Run(s, Options{BPFFS: "/sys/fs/bpf/xdprouter"})
	t.Log("\n" + r.String())
	want := []struct {
		check, subject string
		sev            Severity
		fix            string
	}{
		{"sysctl", "net.ipv6.conf.all.forwarding", Error, "sysctl -w net.ipv6.conf.all.forwarding=1"},
		{"sysctl", "net.ipv4.ip_forward", Warn, "sysctl -w net.ipv4.ip_forward=1"},
		{"sysctl", "net.ipv6.conf.wan0.accept_ra", Warn, "sysctl -w net.ipv6.conf.wan0.accept_ra=0"},
		{"sysctl", "net.ipv6.conf.lan0.forwarding", Warn, "=1"},
		{"lro", "wan0", Warn, "ethtool -K wan0 lro off"},
		{"xdp-mode", "wan0", Warn, "--mode native"},
		{"mtu", "wan0", Warn, "mtu 3498"},
		{"veth-peer", "lan0", Warn, "ethtool -K lan0p gro on"},
		{"kernel", "TCX", Warn, "6.6"},
		{"kernel", "bpf_xdp_ct_lookup", Warn, "modprobe nf_conntrack"},
		{"bpffs", "/sys/fs/bpf/xdprouter", Warn, "mount -t bpf bpf /sys/fs/bpf"},
		{"service", "radvd", Warn, "radvd"},
		{"service", "dnsmasq", Warn, "enable-ra"},
		{"service", "dhcp6c", Warn, "wide-dhcpv6-client"},
		{"service", "systemd-networkd", Warn, "Unmanaged=yes"},
	}
	for _, w := range want {
		fs := find(r, w.check, w.subject)
		if len(fs) != 1 {
			t.Errorf("%s %s: %d findings, want 1", w.check, w.subject, len(fs))
			continue
		}
		// A kernel finding is the line attach and apply print, which
		// says what it costs itself.
		why := fs[0].Why != "" || (w.check == "kernel" && fs[0].What == s.kernel.Line(w.subject))
		if fs[0].Severity != w.sev || !strings.Contains(fs[0].Fix, w.fix) || !why {
			t.Errorf("%s %s: %+v, want %s with a why and fix containing %q", w.check, w.subject, fs[0], w.sev, w.fix)
		}
	}
	if len(find(r, "service", "dhclient")) != 0 {
		t.Error("a DHCPv4-only dhclient was reported")
	}
	if len(find(r, "mtu", "lan0")) != 0 {
		t.Errorf("MTU 9000 on a veth reported: the program is multi-buffer and a veth takes and sends such frames (its peer is the veth-peer check's)")
	}
	// IPv6 forwarding off; TCX and the veth peer are warnings (clsact,
	// the kernel path carry them), as is any MTU on a veth.
	if r.Errors != 1 {
		t.Errorf("errors = %d, want 1", r.Errors)
	}
	if !strings.Contains(r.String(), "kernel 6.1.0-9-amd64: no TCX (6.6), slow path on tc clsact") {
		t.Errorf("the report lacks the TCX line attach prints:\n%s", r)
	}
	b, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(b), `"severity":"error"`) || !strings.Contains(string(b), `"fix":"ethtool -K lan0p gro on`) {
		t.Errorf("json: %s %v", b, err)
	}
}

// TestDoctorVethPeerNAPI: only a veth peer without NAPI is a finding (the
// router answers by redirect where the peer has GRO but no XDP program), and
// a peer in another namespace only when the kernel does not tell.
func TestDoctorVethPeerNAPI(t *testing.T) {
	s := healthy()
	s.links[2].PeerXDP = XDPNone // GRO on, no XDP: NAPI
	r := Run(s, Options{})
	if fs := find(r, "veth-peer", "lan0"); len(fs) != 0 || r.Warnings != 0 {
		t.Fatalf("GRO-only peer: %+v\n%s", fs, r)
	}
	s.links[2].PeerName, s.links[2].PeerOtherNS = "", true
	if fs := find(Run(s, Options{}), "veth-peer", "lan0"); len(fs) != 0 {
		t.Fatalf("peer elsewhere with NAPI: %+v", fs)
	}
	s.links[2].PeerNAPI = "no"
	if fs := find(Run(s, Options{}), "veth-peer", "lan0"); len(fs) != 1 || fs[0].Severity != Warn ||
		!strings.HasPrefix(fs[0].Fix, "in the peer's namespace: ethtool -K PEER gro on") {
		t.Fatalf("peer elsewhere without NAPI: %+v", fs)
	}
	s.links[2].PeerNAPI = "unknown"
	if fs := find(Run(s, Options{}), "veth-peer", "lan0"); len(fs) != 1 || fs[0].Severity != Warn ||
		!strings.Contains(fs[0].What, "does not tell") {
		t.Fatalf("peer elsewhere, kernel without xdp-features: %+v", fs)
	}
}

func TestDoctorScope(t *testing.T) {
	s := healthy()
	// Nothing attached: every Ethernet interface is looked at (a jumbo
	// MTU on a veth is no finding since the program is multi-buffer).
	for i := range s.links {
		s.links[i].XDP = XDPNone
	}
	s.links[2].PeerGRO, s.links[2].PeerXDP, s.links[2].PeerNAPI = false, XDPNone, "no"
	s.links[2].MTU = 9000
	r := Run(s, Options{})
	if fs := find(r, "veth-peer", "lan0"); len(fs) != 1 || fs[0].Severity != Warn || r.Errors != 0 {
		t.Fatalf("unattached veth: %+v\n%s", fs, r)
	}
	if fs := find(r, "mtu", "lan0"); len(fs) != 0 {
		t.Fatalf("unattached veth at MTU 9000: %+v", fs)
	}
	// Named: the port and a missing interface (an error).
	r = Run(s, Options{Interfaces: []string{"lan0", "lan9"}})
	// A peer without NAPI costs the fast path, not the traffic: a
	// warning even on a named port.
	if fs := find(r, "veth-peer", "lan0"); len(fs) != 1 || fs[0].Severity != Warn {
		t.Fatalf("named veth, peer without NAPI: %+v\n%s", fs, r)
	}
	if fs := find(r, "link", "lan9"); len(fs) != 1 || fs[0].Severity != Error {
		t.Fatalf("missing interface: %+v\n%s", fs, r)
	}
	if len(find(r, "link", "wan0")) != 0 {
		t.Errorf("wan0 not named but examined:\n%s", r)
	}
}

func TestDoctorDnsmasqCmdline(t *testing.T) {
	s := healthy()
	s.procs[1].Cmdline = []string{"dnsmasq", "--enable-ra"}
	if fs := find(Run(s, Options{}), "service", "dnsmasq"); len(fs) != 1 {
		t.Fatalf("dnsmasq --enable-ra not reported")
	}
	s.procs[1].Cmdline = []string{"dnsmasq", "--conf-file=/run/lan.conf"}
	s.files["/run/lan.conf"] = "enable-ra\n"
	if fs := find(Run(s, Options{}), "service", "dnsmasq"); len(fs) != 1 {
		t.Fatalf("enable-ra in --conf-file not reported")
	}
}

// TestDoctorJumboMTU: beyond one XDP buffer only the driver can be in the
// way: one whose XDP is single-buffer (native attach refused), one that
// cannot transmit multi-buffer frames (jumbo frames out of it left to the
// kernel), or a kernel that does not say. A capable driver and a veth are
// fine, as is any MTU within one buffer.
func TestDoctorJumboMTU(t *testing.T) {
	const full = vethnapi.Basic | vethnapi.Redirect | vethnapi.NDOXmit | vethnapi.RxSG | vethnapi.NDOXmitSG
	for _, c := range []struct {
		name     string
		typ      string
		mtu      int
		features uint64
		err      string
		want     string // in What; "": no finding
	}{
		{"capable driver", "device", 9001, full, "", ""},
		{"veth", "veth", 9000, 0, "", ""},
		{"one buffer", "device", loader.SingleBufferMTU, 0, "", ""},
		{"single-buffer driver", "device", 9001, vethnapi.Basic | vethnapi.Redirect | vethnapi.NDOXmit, "", "single-buffer"},
		{"no multi-buffer transmit", "device", 9001, full &^ vethnapi.NDOXmitSG, "", "cannot transmit"},
		{"features unknown", "device", 9001, 0, vethnapi.ErrNoXDPFeatures.Error(), "features are unknown (the kernel reports no XDP features"},
		// Before 6.3 a veth takes no multi-buffer frame from XDP either.
		{"veth before 6.3", "veth", 9000, 0, vethnapi.ErrNoXDPFeatures.Error(), "features are unknown (the kernel reports no XDP features"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := healthy()
			s.links[1].Type, s.links[1].MTU, s.links[1].XDPFeatures, s.links[1].XDPFeaturesErr = c.typ, c.mtu, c.features, c.err
			r := Run(s, Options{})
			fs := find(r, "mtu", "wan0")
			switch {
			case c.want == "" && len(fs) != 0:
				t.Errorf("unexpected: %+v", fs)
			case c.want != "" && (len(fs) != 1 || fs[0].Severity != Warn || !strings.Contains(fs[0].What, c.want) ||
				fs[0].Why == "" || !strings.Contains(fs[0].Fix, "mtu 3498")):
				t.Errorf("%+v, want one warning saying %q with a why and a fix", fs, c.want)
			}
			if r.Errors != 0 {
				t.Errorf("%d errors:\n%s", r.Errors, r)
			}
		})
	}
}
