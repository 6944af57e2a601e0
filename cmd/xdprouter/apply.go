package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/control/doctor"
	"github.com/xdprouter/xdprouter/loader"
)

func newCheckCmd(g *globalFlags) *cobra.Command {
	var (
		path    string
		system  bool
		asJSON  bool
		ifnames []string
	)
	cmd := &cobra.Command{
		Use:   "check --config FILE | --system",
		Short: "Validate a configuration file, or inspect this host (--system)",
		Long: `Check decodes the YAML strictly (unknown keys are errors) and validates
every value; each problem is reported with its path, e.g.
"lan[0].sla-id: 70000 is out of range 0-65535". Exit status 0 means apply
and run would accept the file.

With --system (or as 'xdprouter doctor') it inspects this host, in the
network namespace it runs in, for what would defeat the router or its XDP
fast path: forwarding and accept_ra sysctls, veth peers without NAPI (no
GRO, no XDP program), LRO, generic XDP, MTUs beyond one XDP buffer on a
driver without multi-buffer XDP, kernel features (BTF, TCX, conntrack
kfuncs), the bpffs, and other daemons sending RAs or running a DHCPv6
client. One line per finding with its fix; exit status 1 when any is an
error. The interfaces examined are those named with -i, else those of
--config, else those with an XDP program, else every Ethernet interface
(then their per-port sysctls are not judged).`,
		Example: `  xdprouter check --config /etc/xdprouter/config.yaml
  xdprouter check --system --config /etc/xdprouter/config.yaml
  xdprouter doctor -i wan0 -i lan0 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" && !system {
				return errors.New("check needs --config FILE, --system, or both")
			}
			var cfg *config.Config
			if path != "" {
				var err error
				if cfg, err = config.Load(path); err != nil {
					return err
				}
				if !system {
					fw := cfg.Firewall
					fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d interfaces; firewall %s, %d pinholes, %d port forwards)\n",
						path, len(cfg.Interfaces()), fw.Mode, len(fw.Allow), len(fw.Forward))
					return nil
				}
			}
			opt := doctor.Options{Interfaces: ifnames, BPFFS: g.bpffs}
			if len(opt.Interfaces) == 0 && cfg != nil {
				opt.Interfaces = cfg.Interfaces()
			}
			return runDoctor(cmd.OutOrStdout(), doctor.Host{}, opt, asJSON)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (YAML)")
	cmd.Flags().BoolVar(&system, "system", false, "inspect this host for what would defeat the router (see above)")
	doctorFlags(cmd, &asJSON, &ifnames)
	return cmd
}

func newDoctorCmd(g *globalFlags) *cobra.Command {
	var (
		asJSON  bool
		ifnames []string
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Inspect this host for what would defeat the router (check --system)",
		Long:  "Doctor is `xdprouter check --system`: see `xdprouter check --help`.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDoctor(cmd.OutOrStdout(), doctor.Host{}, doctor.Options{Interfaces: ifnames, BPFFS: g.bpffs}, asJSON)
		},
	}
	doctorFlags(cmd, &asJSON, &ifnames)
	return cmd
}

func doctorFlags(cmd *cobra.Command, asJSON *bool, ifnames *[]string) {
	cmd.Flags().BoolVar(asJSON, "json", false, "with --system: findings as JSON")
	cmd.Flags().StringSliceVarP(ifnames, "interface", "i", nil, "with --system: an interface the router uses (repeatable)")
}

// errDoctorFindings makes the exit status 1 after the report was printed.
type errDoctorFindings int

func (e errDoctorFindings) Error() string {
	return fmt.Sprintf("%d error-level findings", int(e))
}

func runDoctor(w io.Writer, sys doctor.System, opt doctor.Options, asJSON bool) error {
	r := doctor.Run(sys, opt)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		fmt.Fprint(w, r.String())
	}
	if r.Errors > 0 {
		return errDoctorFindings(r.Errors)
	}
	return nil
}

func newApplyCmd(g *globalFlags) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "apply --config FILE",
		Short: "Program a static configuration once, without a daemon",
		Long: `Apply validates the configuration, then attaches the data plane to the wan
and lan interfaces it names (with their roles and xdp-mode), installs
the LAN IPv4 addresses, programs the tunnels (a netdev per tunnel with the
tunnel's routes and its ipv4-address, the data-plane maps, the TC slow
path; tunnels no longer in the file are removed), NAT44 and port forwards
in nftables table "ip xdprouter" and the firewall in "inet xdprouter"
(both replaced in one transaction), npt (XDP fast path plus TC slow path
on the outside interface; the router's own address on that interface, if
an outside prefix holds it, is kept out of translation, and a prefix holding
two of them is refused) and ndp-proxy (prefixes: [auto] proxies every
npt outside prefix of that interface). If any step fails, what this apply added is
removed again. Running it twice changes nothing the second time.`,
		Example: `  xdprouter apply --config /etc/xdprouter/config.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			if err := loader.Preflight(); err != nil {
				return err
			}
			for _, ifname := range cfg.Interfaces() {
				if _, err := loader.CheckInterface(ifname); err != nil {
					return err
				}
			}
			d, err := openForWrite(g)
			if err != nil {
				return err
			}
			// After the re-exec openForWrite may do: printed once.
			reportKernel(cmd.ErrOrStderr())
			deps := control.SystemDeps(d)
			// Without a daemon, the WAN's addresses are what the
			// kernel has: NPT keeps the router's out of translation.
			deps.Own = control.NetlinkOwnAddrs{}
			steps, err := control.Apply(cfg, deps)
			for _, s := range steps {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", s.What, s.Result)
			}
			return errors.Join(err, d.Close())
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
