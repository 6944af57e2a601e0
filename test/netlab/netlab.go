// Package netlab builds throw-away topologies of network namespaces joined
// by veth pairs, for lab tests, benchmarks and the demo. Every namespace
// name carries a per-lab unique prefix, and Close removes all of them (and
// the bpffs mounts the lab made), also after a failed test.
package netlab

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

var seq atomic.Uint32

// Lab is one topology.
type Lab struct {
	prefix string
	nss    []string
	mounts []string
	runDir string
}

// New starts an empty lab whose namespace names begin with "xl<pid><n>".
func New() (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("netlab needs root")
	}
	prefix := fmt.Sprintf("xl%d%c", os.Getpid(), 'a'+rune(seq.Add(1)-1)%26)
	dir := filepath.Join("/run/xdprouter-lab", prefix)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Lab{prefix: prefix, runDir: dir}, nil
}

// NS returns the full namespace name for a short name.
func (l *Lab) NS(short string) string { return l.prefix + "-" + short }

// AddNS creates a namespace with loopback up and forwarding as asked.
func (l *Lab) AddNS(short string, forwarding bool) (string, error) {
	name := l.NS(short)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	l.nss = append(l.nss, name)
	cmds := [][]string{{"ip", "link", "set", "lo", "up"}}
	fwd := "0"
	if forwarding {
		fwd = "1"
	}
	cmds = append(cmds,
		[]string{"sysctl", "-qw", "net.ipv4.ip_forward=" + fwd},
		[]string{"sysctl", "-qw", "net.ipv6.conf.all.forwarding=" + fwd},
		[]string{"sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"},
	)
	for _, c := range cmds {
		if _, err := l.Exec(name, c...); err != nil {
			return "", err
		}
	}
	return name, nil
}

// Veth creates a veth pair with one end in each namespace, both up. GRO is
// turned on so that each end accepts XDP-redirected frames (veth needs NAPI
// on the receiving peer).
func (l *Lab) Veth(nsA, ifA, nsB, ifB string) error { return l.VethQueues(nsA, ifA, nsB, ifB, 1) }

// VethQueues is Veth with queues RX and TX queues at most on each end (all
// of them in use to begin with; `ethtool -L` changes how many are).
func (l *Lab) VethQueues(nsA, ifA, nsB, ifB string, queues int) error {
	if queues < 1 {
		return fmt.Errorf("veth %s/%s with %d queues: want at least 1", ifA, ifB, queues)
	}
	q := strconv.Itoa(queues)
	// The pair is born in the host namespace, shared with every other
	// process's labs (go test runs packages in parallel): a per-process
	// counter would collide there, a random name does not.
	id := rand.Uint32()
	tmpA, tmpB := fmt.Sprintf("xv%08xa", id), fmt.Sprintf("xv%08xb", id)
	if out, err := exec.Command("ip", "link", "add", tmpA, "numtxqueues", q, "numrxqueues", q,
		"type", "veth", "peer", "name", tmpB, "numtxqueues", q, "numrxqueues", q).CombinedOutput(); err != nil {
		return fmt.Errorf("ip link add veth: %v: %s", err, out)
	}
	for _, e := range []struct{ tmp, ns, name string }{{tmpA, nsA, ifA}, {tmpB, nsB, ifB}} {
		if out, err := exec.Command("ip", "link", "set", e.tmp, "netns", e.ns, "name", e.name).CombinedOutput(); err != nil {
			return fmt.Errorf("move %s to %s: %v: %s", e.tmp, e.ns, err, out)
		}
		if _, err := l.Exec(e.ns, "ip", "link", "set", e.name, "up"); err != nil {
			return err
		}
		if _, err := l.Exec(e.ns, "ethtool", "-K", e.name, "gro", "on"); err != nil {
			return err
		}
	}
	return nil
}

var (
	nsExecOnce sync.Once
	nsExecIP   bool
)

// InNS is the command prefix that runs argv in network namespace ns. It is
// `ip netns exec`, what operators type, where that works; `ip netns exec`
// needs "/" to be a mount point (it makes the mount tree a slave), which a
// chroot such as a fresh-root check lacks, and there `nsenter --net` (which
// switches only the network namespace) stands in.
func InNS(ns string, argv ...string) []string {
	nsExecOnce.Do(func() {
		// XDPROUTER_LAB_NSENTER=1 forces the chroot behaviour, to test it.
		nsExecIP = os.Getenv("XDPROUTER_LAB_NSENTER") == "" &&
			exec.Command("ip", "netns", "exec", ns, "true").Run() == nil
	})
	if nsExecIP {
		return append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	return append([]string{"nsenter", "--net=/run/netns/" + ns, "--"}, argv...)
}

// UsesIPNetnsExec reports whether InNS uses `ip netns exec` (after the
// first namespace was made).
func UsesIPNetnsExec() bool { return nsExecIP }

// Exec runs a command in a namespace and returns its combined output.
func (l *Lab) Exec(ns string, args ...string) (string, error) {
	full := InNS(ns, args...)
	var out bytes.Buffer
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("[%s] %s: %v: %s", ns, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// MustExec is Exec for set-up steps: it joins errors into one.
func (l *Lab) MustExec(ns string, cmds ...[]string) error {
	for _, c := range cmds {
		if _, err := l.Exec(ns, c...); err != nil {
			return err
		}
	}
	return nil
}

// NFT loads an nft script (`nft -f -`) in ns; the error carries nft's
// message and the script.
func (l *Lab) NFT(ns, script string) error {
	cmd := l.Command(ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f - in %s: %w: %s\n%s", ns, err, bytes.TrimSpace(out), script)
	}
	return nil
}

// Command returns an unstarted command that runs in ns.
func (l *Lab) Command(ns string, args ...string) *exec.Cmd {
	full := InNS(ns, args...)
	return exec.Command(full[0], full[1:]...)
}

// BPFFS returns a bpffs directory for one xdprouter instance, mounted from
// this (the host's) mount namespace so that it is visible inside every
// later `ip netns exec` and outlives each command. Close unmounts it.
func (l *Lab) BPFFS(instance string) (string, error) {
	dir := filepath.Join(l.runDir, instance)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return "", fmt.Errorf("mount bpffs on %s: %w", dir, err)
	}
	l.mounts = append(l.mounts, dir)
	return dir, nil
}

// RunDir is a scratch directory removed by Close.
func (l *Lab) RunDir() string { return l.runDir }

// IfIndex is the index of the device dev in namespace ns, asked by
// netlink from inside ns (/sys/class/net shows the namespace sysfs was
// mounted in, which need not be ns: under a chroot, or after nsenter).
func (l *Lab) IfIndex(ns, dev string) (int, error) {
	var idx int
	err := l.Do(ns, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return fmt.Errorf("[%s] %w", ns, err)
		}
		idx = ifc.Index
		return nil
	})
	return idx, err
}

// Do runs fn with the calling goroutine's thread in namespace ns. Sockets
// opened inside fn stay in ns afterwards.
func (l *Lab) Do(ns string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter netns %s: %w", ns, err)
	}
	defer netns.Set(orig)
	return fn()
}

// Close deletes every namespace and mount the lab made. Deleting a
// namespace destroys its veths, which detaches any XDP program on them.
func (l *Lab) Close() error {
	var errs []string
	for i := len(l.nss) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", l.nss[i]).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Sprintf("ip netns del %s: %v: %s", l.nss[i], err, out))
		}
	}
	// Also what xdprouter attach mounted under the lab's directory.
	for _, m := range mountsUnder(l.runDir) {
		if !contains(l.mounts, m) {
			l.mounts = append(l.mounts, m)
		}
	}
	for _, m := range l.mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Sprintf("unmount %s: %v", m, err))
		}
	}
	if err := os.RemoveAll(l.runDir); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("netlab cleanup: %s", strings.Join(errs, "; "))
	}
	return nil
}

func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4]+"/", dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// MAC returns the Ethernet address of ifname in namespace ns, read through
// netlink from inside the namespace (a /sys path would show the caller's
// namespace under nsenter, see InNS).
func (l *Lab) MAC(ns, ifname string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := l.Do(ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("[%s] %w", ns, err)
		}
		mac = ifc.HardwareAddr
		return nil
	})
	return mac, err
}

// ForTest is a Lab for a test: t is skipped without root (namespaces need
// it), fails if the lab cannot be made, and the lab closes with t.
func ForTest(t testing.TB) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	lab, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	return lab
}
