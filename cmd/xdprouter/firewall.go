package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/xdprouter/xdprouter/control"
)

// printFirewall shows the firewall's mode, its counters (every drop
// reason, each pinhole and port forward) and the rules in force, by the
// comments the ruleset carries.
func printFirewall(w io.Writer, fw *control.FirewallStatus) {
	if fw == nil {
		fmt.Fprintln(w, "\nfirewall: nft not installed, no nftables state")
		return
	}
	fmt.Fprintf(w, "\nfirewall: %s", fw.Mode)
	switch {
	case fw.Error != "":
		fmt.Fprintf(w, " (%s)\n", fw.Error)
		return
	case fw.Mode == "off":
		fmt.Fprint(w, " (no table inet xdprouter: your own ruleset filters)")
	}
	if len(fw.Tables) > 0 {
		fmt.Fprintf(w, "; nftables tables: %v", fw.Tables)
	}
	fmt.Fprintln(w)
	if len(fw.Counters) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FIREWALL COUNTER\tPACKETS\tBYTES")
		for _, c := range fw.Counters {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", c.Name, c.Packets, c.Bytes)
		}
		tw.Flush()
	}
	if len(fw.Rules) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TABLE\tCHAIN\tRULE\tCOUNTER")
		for _, r := range fw.Rules {
			if r.Comment == "" {
				continue // dispatch rules (jump to a chain) say nothing alone
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Table, r.Chain, r.Comment, r.Counter)
		}
		tw.Flush()
	}
}
