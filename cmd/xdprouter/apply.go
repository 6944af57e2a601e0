package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/loader"
)

func newCheckCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a configuration file without touching the system",
		Long: `Check decodes the YAML strictly (unknown keys are errors) and validates
every value; each problem is reported with its path, e.g.
"lan[0].sla-id: 70000 is out of range 0-65535". Exit status 0 means apply
and run would accept the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			fw := cfg.Firewall
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d interfaces; firewall %s, %d pinholes, %d port forwards)\n",
				path, len(cfg.Interfaces()), fw.Mode, len(fw.Allow), len(fw.Forward))
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
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
on the outside interface) and ndp-proxy (prefixes: [auto] proxies every
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
			steps, err := control.Apply(cfg, control.SystemDeps(d))
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
