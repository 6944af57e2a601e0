package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/xdprouter/xdprouter/test/netlab"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// xdprouterBin is the CLI under test: built once by TestMain, or named by
// XDPROUTER_BIN (e.g. the bin/xdprouter that `make test` just built;
// relative to the repository root).
var xdprouterBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // every test skips; building would be wasted
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		fmt.Fprintln(os.Stderr, "cannot locate the test source to find the module root")
		return 1
	}
	root, err := labkit.FindModuleRoot(filepath.Dir(file))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if bin := os.Getenv("XDPROUTER_BIN"); bin != "" {
		// `go test` runs in the package directory, so a relative path is
		// taken from the repository root, where one types the command.
		if !filepath.IsAbs(bin) {
			bin = filepath.Join(root, bin)
		}
		if err := labkit.CheckBin(bin); err != nil {
			fmt.Fprintf(os.Stderr, "XDPROUTER_BIN: %v\n", err)
			return 1
		}
		xdprouterBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "xdprouter-lab-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	xdprouterBin = filepath.Join(dir, "xdprouter")
	if err := labkit.BuildCLI(ctx, root, xdprouterBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab tests need root: they create network namespaces and load XDP programs")
	}
}

// needISP skips a test of the simulated ISP where its servers are not
// installed (`make test` installs them).
func needISP(t *testing.T, binaries ...string) {
	t.Helper()
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (make test installs radvd and kea-dhcp6-server): %v", b, err)
		}
	}
}

// newLab builds a fresh host-a — router — host-b topology, removed when the
// test ends however it ends, and the CLI that drives the router.
func newLab(t *testing.T) (*labkit.Topology, labkit.CLI, context.Context) {
	t.Helper()
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	topo, err := labkit.NewTopology()
	if err != nil {
		t.Fatal(err)
	}
	labkit.CloseAtEnd(t, topo)
	t.Logf("lab:\n%s", topo.Diagram())
	return topo, labkit.NewCLI(topo, xdprouterBin, t), ctx
}

// mustRun runs a command that has to succeed.
func mustRun(t *testing.T, ctx context.Context, r labkit.Runner, argv ...string) labkit.Result {
	t.Helper()
	res, err := r.Run(ctx, nil, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// mustCLI runs an xdprouter command that has to succeed.
func mustCLI(t *testing.T, ctx context.Context, cli labkit.CLI, args ...string) labkit.Result {
	t.Helper()
	res, err := cli.Run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustStatus(t *testing.T, ctx context.Context, cli labkit.CLI) labkit.Status {
	t.Helper()
	st, err := cli.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustIface(t *testing.T, st labkit.Status, name string) labkit.InterfaceStatus {
	t.Helper()
	i, ok := st.Interface(name)
	if !ok {
		t.Fatalf("status has no interface %q: %+v", name, st.Interfaces)
	}
	return i
}

// xdpProgOn says whether iproute2 sees an XDP program on dev, which is the
// kernel's view independent of xdprouter's own bookkeeping.
func xdpProgOn(t *testing.T, ctx context.Context, r labkit.Runner, ns, dev string) bool {
	t.Helper()
	res := mustRun(t, ctx, r, netlab.InNS(ns, "ip", "-d", "link", "show", "dev", dev)...)
	return strings.Contains(res.Stdout, "prog/xdp")
}

// bpfLink is one entry of `bpftool -j link show`. bpftool 7.1 (Debian 12)
// prints no ifindex for XDP links; newer versions do. It also prints the
// type of links it does not know (tcx, netkit: other labs on the machine
// make them) as a number, hence Type is any.
type bpfLink struct {
	ID      uint32 `json:"id"`
	Type    any    `json:"type"`
	ProgID  uint32 `json:"prog_id"`
	Ifindex *int   `json:"ifindex"`
}

func bpfLinks(t *testing.T, ctx context.Context, r labkit.Runner) []bpfLink {
	t.Helper()
	res := mustRun(t, ctx, r, "bpftool", "-j", "link", "show")
	var links []bpfLink
	if err := json.Unmarshal([]byte(res.Stdout), &links); err != nil {
		t.Fatalf("decode bpftool link show: %v", err)
	}
	return links
}

// ifaceEntry is one element of `bpftool map dump pinned .../xdpr_ifaces`,
// which bpftool prints with the field names from the map's BTF.
type ifaceEntry struct {
	Key   uint32 `json:"key"`
	Value struct {
		Ifindex uint32 `json:"ifindex"`
		Role    string `json:"role"`
		XDPMode string `json:"xdp_mode"`
		Name    string `json:"name"`
	} `json:"value"`
}

// isBPFFSMount reports whether dir is a bpffs mount point in this mount
// namespace, the one xdprouter's re-exec puts its mount in.
func isBPFFSMount(t *testing.T, dir string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		// mount point is field 5; the fs type follows the "-" separator.
		for i := 6; i+1 < len(f); i++ {
			if f[i] == "-" {
				if f[4] == dir && f[i+1] == "bpf" {
					return true
				}
				break
			}
		}
	}
	return false
}

// leftovers lists what is under dir apart from the two files the kernel
// puts in every bpffs root (bpf_preload's iterators, not xdprouter's pins).
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if p == dir {
			return nil
		}
		if filepath.Dir(p) == dir && (d.Name() == "maps.debug" || d.Name() == "progs.debug") {
			return nil
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}
