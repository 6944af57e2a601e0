package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/api"
	"github.com/xdprouter/xdprouter/control/endpoint"
	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/control/reasm"
	"github.com/xdprouter/xdprouter/loader"
)

func newStatusCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show attached interfaces, their programs and links, and pinned maps",
		Long: `Status asks the daemon (xdprouter run) over --socket, which adds its own
state: config file and generation, reconcile count, errors and the last
error. Without a daemon for this --bpffs it reads the pinned maps.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := api.NewClient(g.socket, g.bpffs).Status(cmd.Context())
			if errors.Is(err, api.ErrNoDaemon) {
				st.Status, err = pinnedStatus(g)
			}
			if err != nil {
				return err
			}
			if st.Firewall == nil {
				// No daemon, or one that does not read it: the
				// kernel's tables are as near from here.
				st.Firewall = control.ReadFirewall()
			}
			st.OuterFragments = outerFragments(st)
			if st.Steering == nil {
				st.Steering = control.ReadSteering()
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			printDaemon(cmd.OutOrStdout(), st.Daemon)
			printStatus(cmd.OutOrStdout(), st.Status, st.OuterFragments)
			printSteering(cmd.OutOrStdout(), st.Steering)
			printFirewall(cmd.OutOrStdout(), st.Firewall)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// pinnedStatus reads the pinned state. When a veth's peer gained or lost
// NAPI since attach (GRO, an XDP program on its side), it moves the port
// to the transmit path the peer now calls for, as the daemon does when
// the kernel announces it, and says so in TXChanges: without a daemon,
// status (or attach) is what notices.
func pinnedStatus(g *globalFlags) (loader.Status, error) {
	d, err := openPinned(g)
	if err != nil {
		return loader.Status{}, err
	}
	st, err := d.Status()
	d.Close()
	if err != nil || !slices.ContainsFunc(st.Interfaces, func(i loader.InterfaceStatus) bool { return i.TXStale }) {
		return st, err
	}
	if d, err = openForWrite(g); err != nil {
		return st, fmt.Errorf("move the stale transmit paths: %w", err)
	}
	defer d.Close()
	changes, rerr := d.RefreshTX()
	st, err = d.Status()
	st.TXChanges = changes
	return st, errors.Join(rerr, err)
}

func printDaemon(w io.Writer, d *api.Daemon) {
	if d == nil {
		fmt.Fprintf(w, "daemon: not running (state read from the pinned maps)\n")
		return
	}
	fmt.Fprintf(w, "daemon: pid %d, up %s, config %s (generation %d)\n",
		d.PID, time.Since(d.Started).Round(time.Second), d.ConfigFile, d.Generation)
	fmt.Fprintf(w, "reconcile: %d passes, %d errors, last took %s\n", d.Passes, d.Errors, d.LastDuration.Round(time.Microsecond))
	if d.LastError != "" {
		fmt.Fprintf(w, "last reconcile error (%s): %s\n", d.LastErrorTime.Format(time.RFC3339), d.LastError)
	}
	if d.LastReloadError != "" {
		fmt.Fprintf(w, "last reload rejected: %s\n", d.LastReloadError)
	}
	if len(d.Refused) > 0 {
		var n uint64
		for _, v := range d.Refused {
			n += v
		}
		fmt.Fprintf(w, "refused learned input: %d (%v); last (%s): %s\n", n, d.Refused, d.LastRefusedTime.Format(time.RFC3339), d.LastRefused)
	}
	if d.IPv6 != nil {
		printPlan(w, *d.IPv6, time.Now())
	}
	for _, s := range d.Waiting {
		// The plan's own waits are printed with it.
		if d.IPv6 == nil || !slices.Contains(d.IPv6.Pending, s) {
			fmt.Fprintf(w, "waiting: %s\n", s)
		}
	}
	printTasks(w, d.Tasks)
}

// printTasks shows what people look for first: the provisioning result
// and tasks that failed.
func printTasks(w io.Writer, tasks map[string]json.RawMessage) {
	var prov []endpoint.ProvisionStats
	if raw, ok := tasks["provisioning"]; ok && json.Unmarshal(raw, &prov) == nil {
		for _, p := range prov {
			line := fmt.Sprintf("provisioning %s: %s, %d attempts", p.Tunnel, p.State, p.Attempts)
			if p.SucceededFor.IsValid() {
				line += fmt.Sprintf(", done for %s at %s", p.SucceededFor, p.SucceededAt.Format(time.RFC3339))
			}
			if p.HTTPStatus != 0 {
				line += fmt.Sprintf(", last HTTP %d %q", p.HTTPStatus, p.Body)
			}
			if p.LastError != "" {
				line += ", last error: " + p.LastError
			}
			fmt.Fprintln(w, line)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tasks)) {
		if task, ok := strings.CutSuffix(name, "-last-error"); ok {
			var msg string
			_ = json.Unmarshal(tasks[name], &msg)
			fmt.Fprintf(w, "task %s failed (started again): %s\n", task, msg)
		}
	}
}

// printPlan shows what the learned prefixes mean now, lifetimes left.
func printPlan(w io.Writer, p control.Plan, now time.Time) {
	left := func(valid, preferred time.Time) string {
		return fmt.Sprintf("valid %s, preferred %s", learned.Left(valid, now), learned.Left(preferred, now))
	}
	if p.WANAddr.IsValid() {
		fmt.Fprintf(w, "wan %s: address %s (%s)\n", p.WANInterface, p.WANAddr.Prefix, left(p.WANAddr.Valid, p.WANAddr.Preferred))
	}
	if p.Gateway.IsValid() {
		fmt.Fprintf(w, "default route: via %s dev %s\n", p.Gateway, p.WANInterface)
	}
	for _, d := range p.Delegated {
		fmt.Fprintf(w, "delegated prefix: %s (%s)\n", d.Prefix, left(d.Valid, d.Preferred))
	}
	for _, c := range p.Carved {
		fmt.Fprintf(w, "carved for peers: %s (unreachable but for the peers' routes)\n", c)
	}
	for _, l := range p.LANs {
		if l.Prefix.Prefix.IsValid() {
			fmt.Fprintf(w, "lan %s: prefix %s, address %s (%s)\n", l.Interface, l.Prefix.Prefix, l.Addr.Prefix, left(l.Prefix.Valid, l.Prefix.Preferred))
		}
		for _, f := range l.Fixed {
			fmt.Fprintf(w, "lan %s: fixed prefix %s of %s by %s, address %s (advertised valid %s, preferred %s)\n", l.Interface, f.Prefix, f.From, f.Tunnel,
				f.Addr.Prefix, control.FixedValid, control.FixedPreferred)
		}
		for _, r := range l.Retired {
			fmt.Fprintf(w, "lan %s: deprecated prefix %s (valid %s)\n", l.Interface, r.Prefix, learned.Left(r.Valid, now))
		}
	}
	for _, s := range p.DNS {
		fmt.Fprintf(w, "dns server: %s (%s left)\n", s.Addr, learned.Left(s.Until, now))
	}
	for _, s := range p.Pending {
		fmt.Fprintf(w, "waiting: %s\n", s)
	}
}

// outerFragments says what becomes of ipip6 and 6in4 that arrive
// fragmented in the outer header: the kernel reassembles them, and only
// the daemon's relay (control/reasm) hands them back to be decapsulated.
func outerFragments(st api.Status) string {
	if len(st.Tunnels) == 0 {
		return ""
	}
	if st.Daemon == nil {
		return "not decapsulated: without the daemon (xdprouter run) nothing takes them after the kernel reassembles them; " +
			"their fragments are counted as pass_tun_fragment"
	}
	var rs reasm.Stats
	if raw, ok := st.Daemon.Tasks["tunnel-reassembly"]; ok && json.Unmarshal(raw, &rs) == nil && rs.Device != "" {
		return fmt.Sprintf("reassembled by the kernel, decapsulated through %s (%d packets)", rs.Device, rs.Packets)
	}
	if raw, ok := st.Daemon.Tasks["tunnel-reassembly-last-error"]; ok {
		var msg string
		_ = json.Unmarshal(raw, &msg)
		return "not decapsulated: the daemon's reassembly relay failed (started again): " + msg
	}
	return "not decapsulated: the daemon's reassembly relay is not running"
}

func printStatus(w io.Writer, st loader.Status, outerFrags string) {
	fmt.Fprintf(w, "bpffs: %s\n", st.BPFFS)
	for _, c := range st.TXChanges {
		fmt.Fprintln(w, c)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INTERFACE\tIFINDEX\tROLE\tXDP\tTX\tCT GATE\tMAC\tLINK\tPROG\tPROG NAME\tTAG")
	for _, i := range st.Interfaces {
		name := i.Name
		if !i.Present {
			name += " (gone)"
		}
		if i.Stale {
			name += " (MAC changed: attach again)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n",
			name, i.Ifindex, i.Role, i.Mode, i.TXPath, i.CTGate, i.MAC, i.LinkID, i.ProgramID, i.ProgramName, i.ProgramTag)
	}
	tw.Flush()
	for _, i := range st.Interfaces {
		if i.TXWarning {
			fmt.Fprintf(w, "%s: %s\n", i.Name, i.TXNote)
		}
		if i.TXStale {
			fmt.Fprintf(w, "%s: the peer now calls for another transmit path than %s (%s); the daemon moves it, as does `xdprouter attach`\n",
				i.Name, i.TXPath, i.TXNote)
		}
	}
	if st.TCPBeLiberal != "" {
		fmt.Fprintf(w, "net.netfilter.nf_conntrack_tcp_be_liberal = %s\n", st.TCPBeLiberal)
	}
	if len(st.Tunnels) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TUNNEL\tMODE\tIFINDEX\tLOCAL\tREMOTE\tMTU\tHOP LIMIT/TTL\tNAT44\tTC")
		for _, t := range st.Tunnels {
			name := t.Name
			if !t.Present {
				name += " (gone)"
			}
			tc := "-"
			switch {
			case t.TCLink != 0:
				tc = fmt.Sprintf("tcx link %d", t.TCLink)
			case t.TCMode != "":
				tc = fmt.Sprintf("%s prog %d", t.TCMode, t.TCProgram)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%t\t%s\n",
				name, t.Mode, t.Ifindex, t.Local, t.Remote, t.MTU, t.HopLimit, t.NAT44, tc)
		}
		tw.Flush()
		ipip6 := slices.ContainsFunc(st.Tunnels, func(t loader.TunnelStatus) bool { return t.Mode != loader.Mode6in4 })
		if outerFrags != "" && ipip6 {
			fmt.Fprintf(w, "outer-fragmented ipip6: %s\n", outerFrags)
		}
		if outerFrags != "" && slices.ContainsFunc(st.Tunnels, func(t loader.TunnelStatus) bool { return t.Mode == loader.Mode6in4 }) {
			fmt.Fprintf(w, "outer-fragmented 6in4: %s\n", outerFrags)
		}
		if len(st.TunnelSourceFilter) > 0 {
			var ps []string
			for _, n := range st.TunnelSourceFilter {
				ps = append(ps, fmt.Sprintf("%s (%s)", n.Prefix, n.Kind))
			}
			fmt.Fprintf(w, "inner IPv4 sources dropped: 0/8, 127/8, 224/3, %s\n", strings.Join(ps, ", "))
		}
	}
	if len(st.KernelTunnels) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VXLAN\tIFINDEX\tVNI\tREMOTE\tLOCAL\tPORT")
		for _, t := range st.KernelTunnels {
			name, local := t.Name, "auto"
			if !t.Present {
				name += " (gone)"
			}
			if t.Local.IsValid() {
				local = t.Local.String()
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\n", name, t.Ifindex, t.VNI, t.Remote, local, t.Port)
		}
		tw.Flush()
		if v := vxlanCounterLine(st.VXLANCounters); v != "" {
			fmt.Fprintln(w, v)
		}
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MAP\tID\tTYPE\tMAX ENTRIES\tPIN")
	for _, m := range st.Maps {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", m.Name, m.ID, m.Type, m.MaxEntries, m.Pin)
	}
	tw.Flush()
	if len(st.NPT) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NPT OUTSIDE IFACE\tINSIDE\tOUTSIDE\tMODE")
		for _, r := range st.NPT {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Interface, r.Inside, r.Outside, r.ModeName)
		}
		tw.Flush()
		for _, l := range st.TCLinks {
			fmt.Fprintf(w, "slow path link: %s\n", l)
		}
	}
	if len(st.NDPProxy) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NDP PROXY IFACE\tPREFIX\tMODE")
		for _, e := range st.NDPProxy {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Interface, e.Prefix, e.ModeName)
		}
		tw.Flush()
	}
}

// printSteering shows the source steering: which sources look up which
// table (ip -6 rule), and what those tables route.
func printSteering(w io.Writer, s *control.SteeringState) {
	if s == nil {
		return
	}
	fmt.Fprintln(w, "\nsource steering (ip -6 rule, protocol 200):")
	for _, r := range s.Rules {
		fmt.Fprintf(w, "  %s\n", r)
	}
	for _, r := range s.Routes {
		fmt.Fprintf(w, "  %s\n", r)
	}
}

// vxlanCounterLine says what XDP did with the vxlan netdevs' traffic:
// the packets it encapsulated and decapsulated, and why it left others
// to the kernel (the counters that are not zero).
func vxlanCounterLine(cs []loader.Counter) string {
	if len(cs) == 0 {
		return ""
	}
	var done, passed []string
	for _, c := range cs {
		switch {
		case c.Name == "vxlan_encap" || c.Name == "vxlan_decap":
			done = append(done, fmt.Sprintf("%s %d", c.Name, c.Packets))
		case c.Packets != 0:
			passed = append(passed, fmt.Sprintf("%s %d", c.Name, c.Packets))
		}
	}
	line := "vxlan in XDP: " + strings.Join(done, ", ")
	if len(passed) > 0 {
		line += "; to the kernel: " + strings.Join(passed, ", ")
	}
	return line
}

func newStatsCmd(g *globalFlags) *cobra.Command {
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show data-plane counters (summed over CPUs)",
		Long: `Every packet the XDP program sees increments exactly one counter: fwd_* when
XDP forwarded it, pass_* with the reason when it went to the kernel
(tun_* and drop_tun_* for ipip6 tunnels, vxlan_* and pass_vxlan_* for
vxlan ones, which status also shows). The tc_* counters that follow
are the tunnel slow path's own (TC programs): not part of that sum.
Zero counters are hidden unless --all is given (--json always has all).
Asks the daemon over --socket when one runs for this --bpffs, else reads
the pinned map.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := api.NewClient(g.socket, g.bpffs).Counters(cmd.Context())
			if errors.Is(err, api.ErrNoDaemon) {
				cs, err = pinnedCounters(g)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), cs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "COUNTER\tPACKETS\tBYTES\t")
			for _, c := range cs {
				if c.Packets != 0 || all {
					fmt.Fprintf(tw, "%s\t%d\t%d\t\n", c.Name, c.Packets, c.Bytes)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&all, "all", false, "also print counters that are zero")
	return cmd
}

func pinnedCounters(g *globalFlags) ([]loader.Counter, error) {
	d, err := openPinned(g)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Counters()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
