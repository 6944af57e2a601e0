package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/loader"
)

func newAttachCmd(g *globalFlags) *cobra.Command {
	var role, mode, ctGate string
	cmd := &cobra.Command{
		Use:   "attach IFACE [IFACE...]",
		Short: "Attach the XDP data plane to interfaces",
		Long: `Attach loads xdprouter's XDP program on each interface through a bpf_link
pinned under --bpffs (mounting a bpffs there if none is), and records the
interface and its role in the xdpr_ifaces map. No daemon is needed: once
two or more interfaces are attached, IPv4 and IPv6 routed between them are
forwarded in XDP; what XDP does not finish goes to the kernel unmodified.

The conntrack gate (--ct-gate) keeps the fast path inside the router's
firewall: gated, XDP forwards a TCP or UDP packet only when the kernel's
conntrack holds an established entry for its flow (not NATed, for TCP
without SYN/FIN/RST), and hands everything else (new flows, ICMP, state
changes) to the kernel unmodified, where netfilter decides. Whatever the
ruleset accepted, later packets of the flow take the fast path.
  on    gate (and turn net.netfilter.nf_conntrack_tcp_be_liberal on in this
        network namespace, restored by the last detach: conntrack's TCP
        window does not advance while XDP carries the data)
  off   forward every routable packet in XDP, bypassing netfilter
  auto  (default) on, unless this network namespace has no nftables chain
        on the prerouting/forward/postrouting/ingress/egress hooks and no
        iptables-legacy rule, so there is nothing to bypass; one line says
        which it chose and why

Attaching again is safe: the same arguments change nothing, a new role or
gate, or a newer program, replaces the program atomically.`,
		Example: `  xdprouter attach eth0 --role wan
  xdprouter attach eth1 eth2 --role lan
  xdprouter attach eth0 eth1 --ct-gate off
  ip netns exec r xdprouter --bpffs /run/xdprouter/r attach veth0`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := loader.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			m, err := loader.ParseMode(mode)
			if err != nil {
				return fmt.Errorf("--mode: %w", err)
			}
			gate, err := loader.ParseCTGate(ctGate)
			if err != nil {
				return fmt.Errorf("--ct-gate: %w", err)
			}
			if err := loader.Preflight(); err != nil {
				return err
			}
			// All names first: a typo must not leave the others attached.
			for _, ifname := range args {
				if _, err := loader.CheckInterface(ifname); err != nil {
					return err
				}
			}
			// Auto is decided once, for every interface named.
			if gate == loader.CTGateAuto {
				var why string
				if gate, why, err = loader.ResolveCTGate(gate); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "conntrack gate auto: %s (%s)\n", gate, why)
			}
			d, err := openForWrite(g)
			if err != nil {
				return err
			}
			// After the re-exec openForWrite may do: printed once.
			reportKernel(cmd.ErrOrStderr())
			for _, ifname := range args {
				var res loader.AttachResult
				if res, err = d.Attach(ifname, r, m, gate); err != nil {
					break
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (role %s, xdp %s, ct-gate %s, link %d, prog %d)\n",
					res.Interface, res.Action, res.Role, res.Mode, res.CTGate, res.LinkID, res.ProgramID)
				if res.Jumbo != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", res.Interface, res.Jumbo)
				}
				if res.BeLiberal {
					fmt.Fprintf(cmd.OutOrStdout(), "net.netfilter.nf_conntrack_tcp_be_liberal set to 1 (the last detach sets it back to 0)\n")
				}
				if res.Warning != "" && res.Action != "unchanged" {
					fmt.Fprintf(cmd.ErrOrStderr(), "xdprouter: warning: %s: %s\n", res.Interface, res.Warning)
				}
			}
			return errors.Join(err, d.Close())
		},
	}
	cmd.Flags().StringVar(&role, "role", "none", "what the interface faces: wan, lan or none")
	cmd.Flags().StringVar(&mode, "mode", "auto", "XDP attach mode: auto (native if supported), native or generic")
	cmd.Flags().StringVar(&ctGate, "ct-gate", "auto", "conntrack gate: on (forward in XDP only flows conntrack has established), "+
		"off (forward everything routable, bypassing netfilter) or auto (on unless no netfilter ruleset could filter forwarded traffic)")
	return cmd
}

func newDetachCmd(g *globalFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "detach IFACE... | --all",
		Short: "Detach the data plane from interfaces",
		Long: `Detach removes the interface's link and map entries. Detaching the last
interface (or --all) also removes the pinned maps and the --bpffs directory,
unmounting it if attach mounted it there: nothing is left behind.`,
		Example: `  xdprouter detach eth1
  xdprouter detach --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return fmt.Errorf("name interfaces or give --all, not both or neither")
			}
			if err := loader.Preflight(); err != nil {
				return err
			}
			d, err := openPinned(g)
			if err != nil {
				if all && errors.Is(err, os.ErrNotExist) {
					// Nothing this version can open: remove whatever pins
					// are there (another version's) and an empty mount.
					return errors.Join(loader.Purge(g.bpffs), control.NFTables{}.Set(nil))
				}
				return err
			}
			d.Close()
			if d, err = openForWrite(g); err != nil {
				if all && errors.Is(err, loader.ErrIncompatible) {
					return errors.Join(loader.Purge(g.bpffs), control.NFTables{}.Set(nil))
				}
				return err
			}
			if all {
				// Tunnel netdevs go with the maps (vxlan ones too); the
				// NAT44 table and the steering rules and tables too;
				// Purge takes whatever pins DetachAll does not know.
				err = errors.Join(d.DetachAll(), control.NFTables{}.Set(nil), control.RemoveSteering())
				if err == nil {
					err = d.Close()
					d = nil
					err = errors.Join(err, loader.Purge(g.bpffs))
				}
			} else {
				for _, ifname := range args {
					if err = d.Detach(ifname); err != nil {
						break
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s: detached\n", ifname)
				}
			}
			if d != nil {
				err = errors.Join(err, d.Close())
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "detach every interface and remove all pinned state")
	return cmd
}
