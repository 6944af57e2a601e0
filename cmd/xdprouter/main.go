// Command xdprouter is an XDP-accelerated IPv6 edge router. This package is
// wiring only: flags and output; the work is in loader/ and control/.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/xdprouter/xdprouter/control/api"
	"github.com/xdprouter/xdprouter/loader"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "xdprouter:", err)
		os.Exit(1)
	}
}

type globalFlags struct {
	bpffs  string
	socket string
	tcMode string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "xdprouter",
		Short: "XDP-accelerated IPv6 edge router",
		Long: `xdprouter is an XDP-accelerated IPv6 edge router. In XDP it forwards IPv4
and IPv6 (fib lookup, TTL/hop limit, MAC rewrite, redirect), carries IPv4
over ipip6 tunnels (DS-Lite, fixed IPv4 with NAT44, site-to-site), translates
NPTv6 prefixes and answers Neighbor Solicitations for proxied prefixes; TC
programs give the kernel's slow path the same result. Everything XDP does
not finish goes to the kernel unmodified, counted by reason.

Without a daemon: attach/detach interfaces, or apply a config once. With
one: run keeps a config in force (SIGHUP reloads, restarts are hitless) and
learns from the ISP what hand-made setups hard-code: the WAN address and
default route from Router Advertisements, a delegated prefix (DHCPv6-PD) for
the LANs, which it advertises to their hosts, tunnel endpoints from DNS, all
followed through renumbering.

State (maps and links) is pinned under --bpffs, so it survives the command
that created it and can be inspected with bpftool:

  bpftool map dump pinned /sys/fs/bpf/xdprouter/xdpr_ifaces`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("XDPROUTER_BPFFS")
	if def == "" {
		def = loader.DefaultBPFFS
	}
	root.PersistentFlags().StringVar(&g.bpffs, "bpffs", def,
		"bpffs directory for pinned maps and links (env XDPROUTER_BPFFS); use a path outside /sys\n"+
			"with 'ip netns exec', which hides /sys/fs/bpf, e.g. /run/xdprouter/NETNS")
	sock := os.Getenv("XDPROUTER_SOCKET")
	if sock == "" {
		sock = api.DefaultSocket
	}
	root.PersistentFlags().StringVar(&g.socket, "socket", sock,
		"the daemon's status API socket (env XDPROUTER_SOCKET): run listens on it, status and stats ask it first")
	tcMode := os.Getenv("XDPROUTER_TC_MODE")
	if tcMode == "" {
		tcMode = string(loader.TCModeAuto)
	}
	root.PersistentFlags().StringVar(&g.tcMode, "tc-mode", tcMode,
		"for testing: how the TC slow path (tunnels, NPT) attaches (env XDPROUTER_TC_MODE): auto (TCX where\n"+
			"the kernel has it, Linux 6.6+, else tc clsact filters), tcx, or clsact (the path of older kernels, on any kernel)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		m, err := loader.ParseTCMode(g.tcMode)
		if err != nil {
			return fmt.Errorf("--tc-mode: %w", err)
		}
		loader.SetTCMode(m)
		return nil
	}
	root.AddCommand(newAttachCmd(g), newDetachCmd(g), newApplyCmd(g), newCheckCmd(g), newDoctorCmd(g), newRunCmd(g), newStatusCmd(g), newStatsCmd(g))
	return root
}

// reportKernel prints one line for each feature of the data plane the
// running kernel lacks, saying what it costs (as `xdprouter doctor` does),
// and the TC mode when a test forces clsact where TCX exists.
func reportKernel(w io.Writer) {
	kern := loader.ProbeKernel()
	for _, l := range kern.Missing() {
		fmt.Fprintln(w, l)
	}
	if m, err := loader.ResolveTCMode(); err == nil && m == loader.TCModeClsact && kern.Has(loader.FeatureTCX) {
		fmt.Fprintln(w, "tc mode clsact (--tc-mode, for testing): slow path on tc clsact although the kernel has TCX")
	}
}

// openPinned opens pinned state for reading, turning "nothing pinned" into a
// friendly error.
func openPinned(g *globalFlags) (*loader.Dataplane, error) {
	d, err := loader.OpenPinned(g.bpffs)
	if err != nil {
		if fe := (*loader.ForeignMountNSError)(nil); errors.As(err, &fe) {
			return nil, reexecIn(fe)
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, notAttachedError(g.bpffs)
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, loader.ErrNotRoot
		}
		return nil, err
	}
	return d, nil
}

// openForWrite opens (creating when needed) the pinned state.
func openForWrite(g *globalFlags) (*loader.Dataplane, error) {
	d, err := loader.Open(g.bpffs)
	if fe := (*loader.ForeignMountNSError)(nil); errors.As(err, &fe) {
		return nil, reexecIn(fe)
	}
	return d, err
}

// reexecIn runs this same command again in the mount namespace where the
// bpffs persists (keeping the network namespace): `ip netns exec` gives us a
// throwaway mount namespace, and pins made there would die with us.
func reexecIn(fe *loader.ForeignMountNSError) error {
	if os.Getenv("XDPROUTER_REEXEC") != "" {
		return fmt.Errorf("%w (already re-executed once; mount a bpffs at %s yourself)", fe, fe.Dir)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("%w: find own executable: %v", fe, err)
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("%w: nsenter (util-linux) not found", fe)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("%w: %v", fe, err)
	}
	argv := append([]string{"nsenter"}, fe.NSEnterArgs()...)
	argv = append(argv, "--wd="+cwd, "--", exe)
	argv = append(argv, os.Args[1:]...)
	return syscall.Exec(nsenter, argv, append(os.Environ(), "XDPROUTER_REEXEC=1"))
}

// notAttachedError reads well on its own and still matches os.ErrNotExist.
type notAttachedError string

func (e notAttachedError) Error() string {
	return fmt.Sprintf("nothing is attached under %s (see `xdprouter attach --help`)", string(e))
}

func (e notAttachedError) Unwrap() error { return os.ErrNotExist }
