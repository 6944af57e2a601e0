package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/control/daemon"
	"github.com/xdprouter/xdprouter/loader"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	var (
		path, metricsAddr, level, stateDir string
		detach, release                    bool
	)
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the daemon: keep the system in the state the config describes",
		Long: `Run applies the configuration like apply does, then keeps running: SIGHUP
re-reads the file (an invalid file is rejected with the field that is wrong,
and the running config stays), SIGTERM or SIGINT stop. Stopping leaves links
and maps pinned, so the data plane keeps forwarding, and a new daemon adopts
them without a flush; --detach-on-exit removes what the config put on the
system instead.

The config in force is recorded next to the socket (xdprouter.applied.yaml
for xdprouter.sock), so that a daemon started after a crash or with a new
config removes what only the old one had.

What it learns from the network follows the config: Router Advertisements on
the WAN (the WAN address is their /64 plus wan.token, the default route
follows the router lifetime), a delegated prefix with wan.dhcpv6-pd (each
LAN's /64 is that prefix plus its sla-id, advertised to the LAN hosts with
RAs; after a renumbering the old prefix is advertised deprecated until it
expires), tunnel endpoints with local: auto and DNS-name remotes, NPT
outside: auto. Anything that waits for one of these shows in status.

While it runs, status and stats ask it over --socket (root only), and
--metrics-listen serves Prometheus metrics on /metrics. Under systemd
(Type=notify) it reports READY=1 and STATUS= through sd_notify.`,
		Example: `  xdprouter run --config /etc/xdprouter/config.yaml
  xdprouter run --config config.yaml --metrics-listen 127.0.0.1:9430`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			// A bad file fails here, before anything is touched.
			if _, err := config.Load(path); err != nil {
				return err
			}
			if err := loader.Preflight(); err != nil {
				return err
			}
			// Mounts the bpffs if needed and, under `ip netns exec`,
			// re-executes the daemon where its pins outlive it.
			d, err := openForWrite(g)
			if err != nil {
				return err
			}
			if err := d.Close(); err != nil {
				return err
			}
			var kern strings.Builder
			reportKernel(&kern)
			for _, l := range strings.Split(strings.TrimSpace(kern.String()), "\n") {
				if l != "" {
					log.Warn(l)
				}
			}
			sigs := make(chan os.Signal, 4)
			signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
			defer signal.Stop(sigs)
			learning := daemon.LearningOptions{StateDir: stateDir, ReleaseOnExit: release, AttachReassembly: attachReassembly(g)}
			return daemon.Run(context.Background(), daemon.Options{
				ConfigFile:    path,
				BPFFS:         g.bpffs,
				Socket:        g.socket,
				StateFile:     strings.TrimSuffix(g.socket, filepath.Ext(g.socket)) + ".applied.yaml",
				MetricsListen: metricsAddr,
				DetachOnExit:  detach,
				Signals:       sigs,
				System:        openSystem(g),
				Notify:        daemon.Systemd{Log: log},
				Firewall:      control.ReadFirewall,
				Log:           log,
				Learning:      learning,
				Sysctls:       daemon.ProcSysctls{},
			})
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (YAML)")
	cmd.Flags().BoolVar(&detach, "detach-on-exit", false, "on SIGTERM/SIGINT, detach the configured interfaces and remove pins, LAN addresses, tunnels and NAT44 rules")
	cmd.Flags().StringVar(&metricsAddr, "metrics-listen", "", "serve Prometheus metrics on this address, e.g. 127.0.0.1:9430 (off when empty)")
	cmd.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&stateDir, "state-dir", "/var/lib/xdprouter", "where the daemon keeps what must outlive it (the DHCPv6 DUID, so the ISP delegates the same prefix again)")
	cmd.Flags().BoolVar(&release, "release-on-exit", false, "on SIGTERM/SIGINT, release the delegated prefix (DHCPv6 Release); by default it is kept for the next start")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// openSystem opens the data plane for one reconcile pass; the handle (and
// its lock on the bpffs directory) is released after the pass.
func openSystem(g *globalFlags) control.System {
	return func() (control.Deps, func() error, error) {
		d, err := loader.Open(g.bpffs)
		if err != nil {
			if errors.Is(err, loader.ErrForeignMountNS) {
				return control.Deps{}, nil, fmt.Errorf("the bpffs at %s is not visible to the daemon: %w", g.bpffs, err)
			}
			return control.Deps{}, nil, err
		}
		deps := control.SystemDeps(d)
		// The daemon waits for a LAN interface that does not exist yet
		// (a late USB NIC, a VLAN made later) instead of failing.
		deps.Links = control.NetlinkLinks{}
		return deps, d.Close, nil
	}
}

// attachReassembly attaches the decapsulation of reassembled ipip6 and 6in4 to the
// daemon's tap device; the link outlives the handle on the pinned state.
func attachReassembly(g *globalFlags) func(string) (io.Closer, error) {
	return func(ifname string) (io.Closer, error) {
		d, err := loader.Open(g.bpffs)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.AttachReassembly(ifname)
	}
}
