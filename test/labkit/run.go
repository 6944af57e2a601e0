package labkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/xdprouter/xdprouter/test/netlab"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Result is one finished command.
type Result struct {
	Cmdline  string
	Stdout   string
	Stderr   string
	ExitCode int // -1 when it did not exit normally (killed, not started)
}

// StderrLines returns stderr's non-empty lines: the CLI promises one clear
// line per error, and tests count them.
func (r Result) StderrLines() []string {
	var out []string
	for _, l := range strings.Split(r.Stderr, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// Logger receives command transcripts. *testing.T is one; Helper lets the
// test log point at the test's line rather than at this package.
type Logger interface {
	Logf(format string, args ...any)
	Helper()
}

// Runner runs commands and, when Log is set, shows each one as a shell
// transcript: "$ command", then what it printed.
type Runner struct {
	Log Logger
}

// logger never returns nil, so every function on the way to Logf can call
// Helper itself: Helper marks only its direct caller.
func (r Runner) logger() Logger {
	if r.Log == nil {
		return nopLogger{}
	}
	return r.Log
}

type nopLogger struct{}

func (nopLogger) Logf(string, ...any) {}
func (nopLogger) Helper()             {}

// Run runs argv with env added to this process's environment. A non-zero
// exit is an error that carries stderr; the Result is complete either way,
// so callers that expect a failure inspect it and ignore the error.
func (r Runner) Run(ctx context.Context, env []string, argv ...string) (Result, error) {
	r.logger().Helper()
	res := Result{Cmdline: Cmdline(env, argv), ExitCode: -1}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	r.log(res)
	if err != nil {
		if msg := strings.TrimSpace(res.Stderr); msg != "" {
			return res, fmt.Errorf("%s: %w: %s", res.Cmdline, err, msg)
		}
		return res, fmt.Errorf("%s: %w", res.Cmdline, err)
	}
	return res, nil
}

// InNS runs argv in network namespace ns (see netlab.InNS).
func (r Runner) InNS(ctx context.Context, ns string, argv ...string) (Result, error) {
	r.logger().Helper()
	return r.Run(ctx, nil, netlab.InNS(ns, argv...)...)
}

func (r Runner) log(res Result) {
	r.logger().Helper()
	var b strings.Builder
	b.WriteString("$ " + res.Cmdline + "\n")
	b.WriteString(res.Stdout)
	b.WriteString(res.Stderr)
	if res.ExitCode != 0 {
		fmt.Fprintf(&b, "(exit status %d)\n", res.ExitCode)
	}
	r.logger().Logf("%s", strings.TrimSuffix(b.String(), "\n"))
}

// Cmdline renders a command the way one would type it into a shell.
func Cmdline(env, argv []string) string {
	parts := make([]string, 0, len(env)+len(argv))
	for _, a := range append(append([]string{}, env...), argv...) {
		if a == "" || strings.ContainsAny(a, " \t'\"$`\\|&;<>()*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// CLI runs xdprouter inside a network namespace with a given --bpffs, the
// way an operator runs it on a router that lives in a namespace.
type CLI struct {
	Runner
	Bin    string // path to the xdprouter binary
	NS     string // network namespace to run in
	BPFFS  string // --bpffs
	Socket string // --socket: the daemon's status API
}

// NewCLI returns the CLI for topology t's router.
func NewCLI(t *Topology, bin string, log Logger) CLI {
	return CLI{Runner: Runner{Log: log}, Bin: bin, NS: t.Router, BPFFS: t.BPFFS,
		Socket: filepath.Join(t.Lab.RunDir(), "xdprouter.sock")}
}

// WithLog returns c logging to log: subtests pass their own *testing.T.
func (c CLI) WithLog(log Logger) CLI {
	c.Log = log
	return c
}

// Run runs `ip netns exec NS BIN --bpffs BPFFS args...` (see netlab.InNS).
func (c CLI) Run(ctx context.Context, args ...string) (Result, error) {
	c.logger().Helper()
	return c.RunEnv(ctx, nil, args...)
}

// RunEnv is Run with extra environment variables.
func (c CLI) RunEnv(ctx context.Context, env []string, args ...string) (Result, error) {
	c.logger().Helper()
	return c.Runner.Run(ctx, env, c.Argv(args...)...)
}

// Argv is the full command line Run uses for args.
func (c CLI) Argv(args ...string) []string {
	argv := []string{c.Bin, "--bpffs", c.BPFFS}
	if c.Socket != "" {
		argv = append(argv, "--socket", c.Socket)
	}
	return netlab.InNS(c.NS, append(argv, args...)...)
}

// Status is `xdprouter status --json`. The types are declared here rather
// than borrowed from loader so that a renamed JSON field, which would break
// users' scripts, breaks the tests too.
type Status struct {
	BPFFS      string            `json:"bpffs"`
	Interfaces []InterfaceStatus `json:"interfaces"`
	Tunnels    []TunnelStatus    `json:"tunnels"`
	Maps       []MapStatus       `json:"maps"`
	// KernelTunnels are the vxlan netdevs xdprouter made.
	KernelTunnels []KernelTunnelStatus `json:"kernel_tunnels"`
	// Steering is the source steering in force (nil: none).
	Steering *SteeringStatus `json:"steering"`
	// Daemon is set when a daemon answered (see DaemonStatus).
	Daemon *DaemonStatus `json:"daemon"`
	// OuterFragments says what becomes of outer-fragmented ipip6.
	OuterFragments string `json:"ipip6_outer_fragments"`
	// TunnelSourceFilter are the inner IPv4 sources decapsulation drops.
	TunnelSourceFilter []struct {
		Prefix string `json:"prefix"`
		Kind   string `json:"kind"`
	} `json:"tunnel_source_filter"`
}

// KernelTunnelStatus is one entry of Status.KernelTunnels.
type KernelTunnelStatus struct {
	Name    string `json:"name"`
	Ifindex int    `json:"ifindex"`
	Kind    string `json:"kind"`
	VNI     uint32 `json:"vni"`
	Port    uint16 `json:"port"`
	Remote  string `json:"remote"`
	Present bool   `json:"present"`
}

// SteeringStatus is Status.Steering: policy rules and the routes of
// xdprouter's tables.
type SteeringStatus struct {
	Rules []struct {
		Priority int    `json:"priority"`
		From     string `json:"from"`
		To       string `json:"to"`
		Table    int    `json:"table"`
	} `json:"rules"`
	Routes []struct {
		Table       int    `json:"table"`
		To          string `json:"to"`
		Via         string `json:"via"`
		Dev         string `json:"dev"`
		Unreachable bool   `json:"unreachable"`
	} `json:"routes"`
}

// TunnelStatus is one entry of Status.Tunnels.
type TunnelStatus struct {
	Name     string `json:"name"`
	Ifindex  int    `json:"ifindex"`
	Present  bool   `json:"present"`
	Local    string `json:"local"`
	Remote   string `json:"remote"`
	MTU      int    `json:"mtu"`
	HopLimit int    `json:"hop_limit"`
	NAT44    bool   `json:"nat44"`
	TCLink   uint32 `json:"tc_link_id"`
	// TCMode is "tcx" or "clsact", TCProgram the encapsulating program.
	TCMode    string `json:"tc_mode"`
	TCProgram uint32 `json:"tc_program_id"`
}

// InterfaceStatus is one entry of Status.Interfaces.
type InterfaceStatus struct {
	Name        string `json:"name"`
	Ifindex     int    `json:"ifindex"`
	Present     bool   `json:"present"`
	Role        string `json:"role"`
	XDPMode     string `json:"xdp_mode"`
	CTGate      string `json:"ct_gate"`
	MAC         string `json:"mac"`
	LinkID      uint32 `json:"link_id"`
	ProgramID   uint32 `json:"program_id"`
	ProgramName string `json:"program_name"`
	ProgramTag  string `json:"program_tag"`
	LinkPin     string `json:"link_pin"`
	// TXPath is how XDP transmits to the interface ("xdp_tx", "redirect",
	// "kernel"), TXNote why.
	TXPath string `json:"tx_path"`
	TXNote string `json:"tx_note"`
}

// MapStatus is one entry of Status.Maps.
type MapStatus struct {
	Name string `json:"name"`
	Pin  string `json:"pin"`
	ID   uint32 `json:"id"`
	Type string `json:"type"`
}

// Interface returns the entry for name.
func (s Status) Interface(name string) (InterfaceStatus, bool) {
	for _, i := range s.Interfaces {
		if i.Name == name {
			return i, true
		}
	}
	return InterfaceStatus{}, false
}

// quiet returns c without its transcript: JSON that is decoded and checked
// field by field would only bury the rest of the log.
func (c CLI) quiet() CLI {
	c.Log = nil
	return c
}

// Status runs `status --json` and decodes it.
func (c CLI) Status(ctx context.Context) (Status, error) {
	var st Status
	res, err := c.quiet().Run(ctx, "status", "--json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		return st, fmt.Errorf("decode %s: %w", res.Cmdline, err)
	}
	return st, nil
}

// Counter is one entry of `xdprouter stats --json`.
type Counter struct {
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Counters are the data-plane counters by name.
type Counters map[string]Counter

// Sub returns c minus before: what happened between two readings.
func (c Counters) Sub(before Counters) Counters {
	out := make(Counters, len(c))
	for name, v := range c {
		b := before[name]
		out[name] = Counter{Name: name, Packets: v.Packets - b.Packets, Bytes: v.Bytes - b.Bytes}
	}
	return out
}

// NAsSent is how many Neighbor Advertisements the NDP proxy sent, by
// whichever path the port allows: XDP_TX (tx_ndp_na), a redirect to a veth
// (tx_ndp_na_redirect), or TC for a veth whose peer has no NAPI
// (pass_ndp_na_tc).
func (c Counters) NAsSent() uint64 {
	return c["tx_ndp_na"].Packets + c["tx_ndp_na_redirect"].Packets + c["pass_ndp_na_tc"].Packets
}

// String lists the non-zero counters, in a stable order.
func (c Counters) String() string {
	var lines []string
	for _, v := range c {
		if v.Packets != 0 || v.Bytes != 0 {
			lines = append(lines, fmt.Sprintf("%s=%d pkts/%d bytes", v.Name, v.Packets, v.Bytes))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, ", ")
}

// Counters runs `stats --json` and decodes it.
func (c CLI) Counters(ctx context.Context) (Counters, error) {
	res, err := c.quiet().Run(ctx, "stats", "--json")
	if err != nil {
		return nil, err
	}
	var list []Counter
	if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
		return nil, fmt.Errorf("decode %s: %w", res.Cmdline, err)
	}
	out := make(Counters, len(list))
	for _, v := range list {
		out[v.Name] = v
	}
	for _, want := range []string{"fwd_ipv4", "fwd_ipv6"} {
		if _, ok := out[want]; !ok {
			return nil, fmt.Errorf("%s: no counter %q in the output", res.Cmdline, want)
		}
	}
	return out, nil
}

// FindModuleRoot walks up from start to the directory holding go.mod.
func FindModuleRoot(start string) (string, error) {
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", start)
		}
		dir = parent
	}
}

// BuildCLI builds ./cmd/xdprouter of the module at root into out.
func BuildCLI(ctx context.Context, root, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		// `go test` puts GOROOT/bin first in PATH; this is for other callers.
		goBin = "/usr/local/go/bin/go"
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./cmd/xdprouter")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/xdprouter in %s: %w: %s", root, err, b)
	}
	return nil
}

// CheckBin makes sure bin is an executable file, so that a missing build
// shows up as one clear error rather than as `ip netns exec` failing.
func CheckBin(bin string) error {
	fi, err := os.Stat(bin)
	if err != nil {
		return fmt.Errorf("xdprouter binary: %w", err)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("xdprouter binary %s is not an executable file", bin)
	}
	return nil
}

// Ping sends count echo requests from namespace ns to dst, 200 ms apart,
// and fails unless every one is answered.
func (r Runner) Ping(ctx context.Context, ns string, dst netip.Addr, count int) (Result, error) {
	r.logger().Helper()
	return r.PingFrom(ctx, ns, netip.Addr{}, dst, count)
}

// PingFrom is Ping from source address src (the kernel's choice when src
// is the zero Addr): a host with several prefixes picks which one, and so
// which way the router sends it.
func (r Runner) PingFrom(ctx context.Context, ns string, src, dst netip.Addr, count int) (Result, error) {
	r.logger().Helper()
	argv := []string{"ping", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2"}
	if src.IsValid() {
		argv = append(argv, "-I", src.String())
	}
	res, err := r.InNS(ctx, ns, append(argv, dst.String())...)
	if err != nil {
		return res, err
	}
	if want := fmt.Sprintf("%d received", count); !strings.Contains(res.Stdout, want) {
		return res, fmt.Errorf("%s: want %q in the summary:\n%s", res.Cmdline, want, res.Stdout)
	}
	return res, nil
}
