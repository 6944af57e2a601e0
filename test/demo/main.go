// Command demo shows xdprouter at work in throw-away labs of network
// namespaces, one per feature: plain XDP forwarding between two hosts (the
// CLI, the conntrack gate auto choosing off and on, then the daemon with
// its default firewall and the gate: what is dropped, what XDP carries,
// conntrack kept alive); an ipip6 tunnel (DS-Lite) to an independent AFTR;
// NPTv6 with the NDP proxy answering an ISP that solicits every address;
// a whole IPoE line learned from a simulated ISP (radvd, kea-dhcp6-server,
// DNS, an update URL) that renumbers midway; seed 001's fixed prefixes over
// VXLAN beside the ISP's, steered by source, against a server set up with
// the seed's own lines; a 6in4 tunnel to an independent HE.net-like broker.
// Each part shows its config, traffic through the router, and the counters
// that tell which path carried it. Everything a part creates is removed at
// its end, also after an error or Ctrl-C. `make demo` runs it after
// building bin/xdprouter.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/xdprouter/xdprouter/test/netlab"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

func main() {
	bin := flag.String("bin", "bin/xdprouter", "xdprouter binary; a relative path is taken from the repository root")
	size := flag.Int64("size", 4<<20, "bytes per TCP transfer")
	only := flag.Int("part", 0, "run only this part (1-6); 0 runs them all")
	flag.Parse()

	// The lab is torn down on the way out of run; a second Ctrl-C during
	// that must not cut it short, hence signals stay caught until then.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	start := time.Now()
	err := run(ctx, *bin, *size, *only)
	// stop cancels ctx, so whether a signal came is asked before it.
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		if interrupted {
			err = fmt.Errorf("interrupted (%w)", err)
		}
		fmt.Fprintln(os.Stderr, "\ndemo failed:", err)
		os.Exit(1)
	}
	fmt.Printf("\nDemo finished in %v.\n", time.Since(start).Round(100*time.Millisecond))
}

// transcript prints commands and their output as a shell session would.
type transcript struct{}

func (transcript) Logf(format string, args ...any) { fmt.Printf(format+"\n\n", args...) }
func (transcript) Helper()                         {}

// step numbers the headings through all parts of the demo.
var step int

func heading(title string) {
	step++
	fmt.Printf("== %d. %s ==\n\n", step, title)
}

// part announces one self-contained lab of the demo.
func part(title string) {
	if step > 0 {
		fmt.Println()
	}
	bar := strings.Repeat("=", len(title)+8)
	fmt.Printf("%s\n=== %s ===\n%s\n\n", bar, title, bar)
}

// cleanUp ends a part: it removes the part's lab and says what went, or
// adds why it could not to *err.
func cleanUp(err *error, lab io.Closer, done string) {
	heading("Clean up")
	if cerr := lab.Close(); cerr != nil {
		*err = errors.Join(*err, cerr)
		return
	}
	fmt.Println(done)
}

// say prints an explanation, wrapped in the source for readability.
func say(lines ...string) {
	fmt.Println(strings.Join(lines, "\n"))
	fmt.Println()
}

func run(ctx context.Context, bin string, size int64, only int) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces and loads XDP programs (try: sudo make demo)")
	}
	wd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	root, err := labkit.FindModuleRoot(wd)
	if err != nil {
		return err
	}
	// Working from the repository root keeps the printed commands short
	// and runnable as shown.
	if err := os.Chdir(root); err != nil {
		return fmt.Errorf("enter %s: %w", root, err)
	}
	if !strings.Contains(bin, "/") {
		bin = "./" + bin // `ip netns exec` would look a bare name up in PATH
	}
	if err := labkit.CheckBin(bin); err != nil {
		return fmt.Errorf("%w (build it with `make build`)", err)
	}
	// The tools the demo shows besides xdprouter (make deps-demo installs them).
	for _, tool := range []string{"nft", "conntrack", "sysctl", "bpftool"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w (make demo installs it, or: make deps-demo)", err)
		}
	}

	parts := []struct {
		title string
		run   func() error
	}{
		{"Part 1: XDP forwarding between two hosts", func() error { return runForwarding(ctx, bin, size) }},
		// The AFTR relays every packet through Python; 2 MB keep it brisk.
		{"Part 2: an ipip6 tunnel (DS-Lite) to an AFTR", func() error { return runTunnel(ctx, root, bin, min(size, 2<<20)) }},
		{"Part 3: NPTv6 and the NDP proxy", func() error { return runNPT(ctx, bin) }},
		{"Part 4: the IPoE story — RA, DHCPv6-PD, LAN RAs, renumbering", func() error { return runIPoE(ctx, root, bin) }},
		{"Part 5: fixed prefixes over VXLAN beside the ISP's (seed 001)", func() error { return runVXLAN(ctx, bin, size) }},
		// broker.py relays every packet through Python, as the AFTR does.
		{"Part 6: a 6in4 tunnel to a HE.net-like tunnel broker", func() error { return runSixInFour(ctx, root, bin, min(size, 2<<20)) }},
	}
	for i, p := range parts {
		if only != 0 && only != i+1 {
			continue
		}
		part(p.title)
		if err := p.run(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// runForwarding is part 1: host-a — router — host-b, the CLI, then the
// daemon.
func runForwarding(ctx context.Context, bin string, size int64) (err error) {
	heading("Build a lab: host-a — router — host-b")
	say("Three network namespaces stand in for two hosts and a router, joined by veth",
		"pairs (virtual Ethernet cables). The router already forwards in the kernel",
		"(ip_forward=1); the hosts' default routes point at it.")
	topo, err := labkit.NewTopology()
	if err != nil {
		return err
	}
	defer cleanUp(&err, topo, fmt.Sprintf("Removed namespaces %s, %s, %s and everything under %s.",
		topo.HostA, topo.Router, topo.HostB, topo.Lab.RunDir()))
	fmt.Println(topo.Diagram())

	cli := labkit.NewCLI(topo, bin, transcript{})
	sh := cli.Runner

	heading("Attach xdprouter to both router ports")
	say("attach loads the XDP program on each port, records the port in the",
		"xdpr_ifaces map, and pins the link and maps under --bpffs so they outlive the",
		"command. `ip netns exec` runs it in a throw-away mount namespace, so xdprouter",
		"mounts the bpffs in ours and re-runs itself there. No daemon is involved.")
	res, err := cli.Run(ctx, "attach", labkit.RouterIfA, labkit.RouterIfB, "--role", "lan")
	if err != nil {
		return err
	}
	if !strings.Contains(res.Stdout, "conntrack gate auto: off") {
		return fmt.Errorf("want the conntrack gate auto: off in a namespace without a ruleset, got:\n%s", res.Stdout)
	}
	say("The first line is the conntrack gate (--ct-gate auto, the default). With it on,",
		"XDP forwards only TCP/UDP flows that conntrack holds as established, so the",
		"kernel's firewall decides every new flow. This router has no ruleset at all:",
		"there is nothing XDP could bypass, so auto chose off and forwards everything",
		"routable. Step 9 loads a firewall and attaches again.")
	say("The kernel now shows the program on the port (`xdp` flag, prog/xdp line):")
	if _, err := sh.Run(ctx, nil, netlab.InNS(topo.Router, "ip", "link", "show", "dev", labkit.RouterIfA)...); err != nil {
		return err
	}

	heading("Status, from a separate command")
	say("A new invocation finds the pinned state: interfaces, XDP mode (native: in the",
		"driver, before the kernel allocates anything), link and program ids, maps.")
	if _, err := cli.Run(ctx, "status"); err != nil {
		return err
	}

	heading("Ping host-b from host-a")
	say("The very first packet may reach the router before it knows host-b's MAC",
		"address; XDP hands that one to the kernel (pass_no_neigh), which resolves the",
		"neighbour. Every later packet is forwarded in XDP.")
	for _, dst := range []netip.Addr{labkit.HostB4.Addr(), labkit.HostB6.Addr()} {
		if _, err := sh.Ping(ctx, topo.HostA, dst, 3); err != nil {
			return err
		}
	}

	heading("A TCP transfer, verified end to end")
	fmt.Printf("host-a sends %d random bytes to host-b, once over IPv4 and once over IPv6.\n", size)
	say("host-b hashes what it receives (sha256) and sends the digest back; host-a",
		"compares it with its own. TCP_INFO tells how many segments each side sent.")
	var segs uint64
	for _, tc := range []struct {
		name string
		dst  netip.Addr
	}{{"IPv4", labkit.HostB4.Addr()}, {"IPv6", labkit.HostB6.Addr()}} {
		res, err := labkit.Transfer(ctx, topo.Lab, topo.HostA, topo.HostB, tc.dst, size)
		if err != nil {
			return err
		}
		segs += uint64(res.SenderTCP.SegsOut) + uint64(res.RecvTCP.SegsOut)
		fmt.Printf("  %s  %d bytes to %s in %v (%.0f Mbit/s), sha256 %s… identical on both ends\n",
			tc.name, res.Bytes, tc.dst, res.Elapsed.Round(time.Millisecond), res.Throughput(), res.RecvSHA[:16])
		fmt.Printf("        host-a sent %d TCP segments, host-b %d (ACKs)\n",
			res.SenderTCP.SegsOut, res.RecvTCP.SegsOut)
	}
	fmt.Println()
	heading("Counters: which path carried the traffic")
	say("Every packet the XDP program sees increments exactly one counter: fwd_* when",
		"XDP forwarded it itself, pass_* with the reason when it left it to the kernel",
		"(pass_l2_multicast and pass_not_ip are ARP and neighbour discovery).")
	if _, err := cli.Run(ctx, "stats"); err != nil {
		return err
	}
	fmt.Printf("$ %s   # the same as JSON, for the sum below\n\n", labkit.Cmdline(nil, cli.Argv("stats", "--json")))
	cs, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	fwd := cs["fwd_ipv4"].Packets + cs["fwd_ipv6"].Packets
	fmt.Printf("fwd_ipv4 + fwd_ipv6 = %d packets; the transfers were %d TCP segments (both\n", fwd, segs)
	fmt.Printf("directions) and the pings a dozen packets more.\n")
	if fwd*10 < segs*9 {
		return fmt.Errorf("XDP forwarded only %d packets for %d TCP segments: most went through the kernel", fwd, segs)
	}
	fmt.Printf("The bulk never went through the kernel's forwarding path.\n\n")

	heading("The pinned maps, as bpftool sees them")
	say("Maps carry BTF type information, so bpftool prints named fields and enum names.")
	if _, err := sh.Run(ctx, nil, "bpftool", "map", "dump", "pinned", filepath.Join(topo.BPFFS, "xdpr_ifaces")); err != nil {
		return err
	}

	heading("Detach everything")
	say("detach --all removes the links (the kernel detaches the programs), the maps,",
		"the pins and the bpffs mount it made. The ports lose their `xdp` flag:")
	if _, err := cli.Run(ctx, "detach", "--all"); err != nil {
		return err
	}
	if _, err := sh.Run(ctx, nil, netlab.InNS(topo.Router, "ip", "link", "show", "dev", labkit.RouterIfA)...); err != nil {
		return err
	}
	if _, statErr := os.Stat(topo.BPFFS); statErr == nil {
		return fmt.Errorf("detach --all left %s behind", topo.BPFFS)
	}
	fmt.Printf("%s is gone.\n\n", topo.BPFFS)
	if err := gateUnderFirewall(ctx, topo, cli); err != nil {
		return err
	}
	return runDaemon(ctx, topo, cli)
}

// demoRuleset is a minimal stateful forward policy: host-b's side may start
// flows, host-a's side only answer them.
const demoRuleset = `table inet demo {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "to-b" accept
	}
}
`

// gateUnderFirewall shows attach choosing the gate on once a ruleset with a
// forward hook is loaded.
func gateUnderFirewall(ctx context.Context, topo *labkit.Topology, cli labkit.CLI) error {
	sh := cli.Runner
	heading("A firewall turns the conntrack gate on")
	say("Now the router gets a stateful forward policy (host-b's side may start flows,",
		"host-a's side only answer) and xdprouter is attached again, still with auto:")
	rules := filepath.Join(topo.Lab.RunDir(), "demo.nft")
	if err := os.WriteFile(rules, []byte(demoRuleset), 0o600); err != nil {
		return err
	}
	fmt.Printf("$ cat %s\n%s\n", rules, demoRuleset)
	if _, err := sh.InNS(ctx, topo.Router, "nft", "-f", rules); err != nil {
		return err
	}
	res, err := cli.Run(ctx, "attach", labkit.RouterIfA, labkit.RouterIfB, "--role", "lan")
	if err != nil {
		return err
	}
	if !strings.Contains(res.Stdout, "conntrack gate auto: on") {
		return fmt.Errorf("want the conntrack gate auto: on under a forward policy, got:\n%s", res.Stdout)
	}
	say("auto found the forward hook and chose on: XDP now carries only the flows this",
		"policy accepted and conntrack holds as established. be_liberal keeps conntrack",
		"from judging a flow's FIN out of window after XDP carried its data (README, \"The",
		"conntrack gate\"). The daemon below shows the gate at work; this policy goes again:")
	if _, err := cli.Run(ctx, "detach", "--all"); err != nil {
		return err
	}
	_, err = sh.InNS(ctx, topo.Router, "nft", "delete", "table", "inet", "demo")
	return err
}

// exampleConfig is the lab's router as a config file: host-a's side is the
// WAN, host-b's the LAN.
const exampleConfig = `wan:
  interface: to-a
lan:
  - interface: to-b
    sla-id: 1
    ipv4: 198.51.100.1/24
`

func runDaemon(ctx context.Context, topo *labkit.Topology, cli labkit.CLI) error {
	sh := cli.Runner
	lab := topo.Lab
	heading("The daemon: xdprouter run")
	cfg := filepath.Join(lab.RunDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(exampleConfig), 0o600); err != nil {
		return err
	}
	say("The same router, now from a config file and kept by the daemon. It attaches",
		"what the config names, serves status on a root-only unix socket (--socket)",
		"and keeps running; SIGHUP reloads the file, SIGTERM stops it. host-a's side is",
		"now the WAN, host-b's the LAN. The config has no firewall section: the daemon",
		"installs the default CPE firewall (table inet xdprouter) and attaches with the",
		"conntrack gate on.")
	fmt.Printf("$ cat %s\n%s\n", cfg, exampleConfig)
	say("So that a later step can show XDP keeping a flow alive in conntrack within seconds,",
		"the router's established TCP timeout is cut from 5 days to 10 s first (the gate",
		"reads it when it attaches):")
	if _, err := sh.InNS(ctx, topo.Router, "sysctl", "-w", "net.netfilter.nf_conntrack_tcp_timeout_established=10"); err != nil {
		return err
	}
	d, err := cli.StartDaemon(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if !d.Exited() {
			d.Kill()
		}
	}()
	fmt.Printf("The daemon's log so far:\n%s\n", d.Log())
	say("status now comes from the daemon: its config generation and reconcile counts",
		"first, then the pinned state as before (CT GATE on), then the firewall: its",
		"counters and each rule by its comment.")
	if _, err := cli.Run(ctx, "status"); err != nil {
		return err
	}
	st, err := cli.Status(ctx)
	if err != nil {
		return err
	}
	for _, ifc := range []string{labkit.RouterIfA, labkit.RouterIfB} {
		if i, ok := st.Interface(ifc); !ok || i.CTGate != "on" {
			return fmt.Errorf("%s: want the conntrack gate on under the daemon, got %+v", ifc, i)
		}
	}

	heading("The default firewall: nothing unsolicited comes in from the WAN")
	say("host-a pings host-b and tries to open a TCP connection to it. XDP hands the",
		"pings (ICMP: pass_ct_proto) and the SYNs (a SYN always: pass_ct_tcp_flags) to the",
		"kernel, where the firewall drops them: the WAN side gets only replies to what the",
		"LAN started, port forwards and pinholes (firewall.allow).")
	fwBefore, err := firewallCounters(ctx, cli)
	if err != nil {
		return err
	}
	before, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	for _, dst := range []netip.Addr{labkit.HostB4.Addr(), labkit.HostB6.Addr()} {
		if err := pingBlocked(ctx, sh, topo.HostA, dst); err != nil {
			return err
		}
	}
	if err := connectBlocked(ctx, lab, topo.HostA, topo.HostB, labkit.HostB6.Addr()); err != nil {
		return err
	}
	fwAfter, err := firewallCounters(ctx, cli)
	if err != nil {
		return err
	}
	after, err := cli.Counters(ctx)
	if err != nil {
		return err
	}
	dx := after.Sub(before)
	if err := grepCLI(ctx, cli, "^(FIREWALL COUNTER|drop_wan_forward) ", "status"); err != nil {
		return err
	}
	drops := fwAfter["drop_wan_forward"] - fwBefore["drop_wan_forward"]
	fmt.Printf("drop_wan_forward +%d: the 4 echo requests and the SYN, sent %d times in the 2 s.\n", drops, int64(drops)-4)
	fmt.Printf("XDP passed them to the kernel as pass_ct_proto +%d (ICMP) and pass_ct_tcp_flags +%d\n",
		dx["pass_ct_proto"].Packets, dx["pass_ct_tcp_flags"].Packets)
	fmt.Printf("(SYN); fwd_ipv4 + fwd_ipv6 +%d: it carried none of them.\n\n", sumPackets(dx, "fwd_ipv4", "fwd_ipv6"))
	if drops < 5 || dx["pass_ct_proto"].Packets < 4 || sumPackets(dx, "fwd_ipv4", "fwd_ipv6") != 0 {
		return fmt.Errorf("want >= 5 drops (4 pings, a SYN), the pings as pass_ct_proto and nothing forwarded in XDP, got drop_wan_forward +%d, %s", drops, dx)
	}

	heading("From the LAN out: replies come back, established flows take XDP")
	say("host-b starts everything now: the pings are answered (ICMP stays the kernel's:",
		"pass_ct_proto), and TCP to host-a works both ways: an upload over IPv4 and a",
		"download over IPv6, content-verified. Each connection's handshake and close go",
		"through the kernel (pass_ct_tcp_flags, pass_ct_tcp_state); once conntrack holds",
		"it established, XDP carries its segments (fwd_ipv4, fwd_ipv6).")
	before, err = cli.Counters(ctx)
	if err != nil {
		return err
	}
	for _, dst := range []netip.Addr{labkit.HostA4.Addr(), labkit.HostA6.Addr()} {
		if _, err := sh.Ping(ctx, topo.HostB, dst, 3); err != nil {
			return err
		}
	}
	var segs uint64
	up, err := labkit.Transfer(ctx, lab, topo.HostB, topo.HostA, labkit.HostA4.Addr(), 4<<20)
	if err != nil {
		return err
	}
	fmt.Printf("  upload    host-b -> %s: %d bytes in %v, sha256 %s… identical on both ends\n",
		labkit.HostA4.Addr(), up.Bytes, up.Elapsed.Round(time.Millisecond), up.RecvSHA[:16])
	down, err := labkit.Download(ctx, lab, topo.HostB, topo.HostA, labkit.HostA6.Addr(), 4<<20)
	if err != nil {
		return err
	}
	fmt.Printf("  download  host-b <- %s: %d bytes in %v, sha256 %s… identical on both ends\n\n",
		labkit.HostA6.Addr(), down.Bytes, down.Elapsed.Round(time.Millisecond), down.RecvSHA[:16])
	segs = uint64(up.SenderTCP.SegsOut) + uint64(up.RecvTCP.SegsOut)
	if _, err := cli.Run(ctx, "stats"); err != nil {
		return err
	}
	after, err = cli.Counters(ctx)
	if err != nil {
		return err
	}
	dx = after.Sub(before)
	fmt.Println("Since the pings:")
	printDeltas(dx, "fwd_ipv4", "fwd_ipv6", "pass_ct_proto", "pass_ct_new", "pass_ct_unreplied", "pass_ct_tcp_flags", "pass_ct_tcp_state")
	fmt.Printf("The upload was %d segments both ways (TCP_INFO), the download's are on IPv6.\n\n", segs)
	if dx["fwd_ipv4"].Packets*10 < segs*9 {
		return fmt.Errorf("XDP forwarded %d IPv4 packets of the upload's %d segments", dx["fwd_ipv4"].Packets, segs)
	}
	if dx["fwd_ipv6"].Packets < (4<<20)/1500*9/10 {
		return fmt.Errorf("XDP forwarded only %d IPv6 packets for a 4 MB download", dx["fwd_ipv6"].Packets)
	}
	if dx["pass_ct_proto"].Packets < 12 || dx["pass_ct_tcp_flags"].Packets < 4 {
		return fmt.Errorf("want the 12 ping packets as pass_ct_proto and the SYNs/FINs as pass_ct_tcp_flags, got %s", dx)
	}

	heading("Conntrack keeps the flow; XDP keeps it alive")
	say("host-b opens a connection to host-a and writes 1 KB every 20 ms. The kernel",
		"sees its handshake only; XDP carries the rest, so conntrack's timer would run",
		"out. XDP refreshes the entry (bpf_ct_change_timeout) when less than half of",
		"the established timeout is left, here 5 of the 10 s:")
	before, err = cli.Counters(ctx)
	if err != nil {
		return err
	}
	f, err := holdFlow(ctx, lab, topo.HostB, topo.HostA, labkit.HostA6.Addr())
	if err != nil {
		return err
	}
	start := time.Now()
	time.Sleep(500 * time.Millisecond)
	t1, err := conntrackTimeout(ctx, sh, topo.Router, f.Port)
	if err != nil {
		f.Close()
		return err
	}
	time.Sleep(6500*time.Millisecond - time.Since(start))
	t2, err := conntrackTimeout(ctx, sh, topo.Router, f.Port)
	elapsed := time.Since(start)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("the held connection: %w", cerr)
	}
	if err != nil {
		return err
	}
	after, err = cli.Counters(ctx)
	if err != nil {
		return err
	}
	dx = after.Sub(before)
	fmt.Printf("%v after the handshake the entry still has %d s; without a refresh it would\n", elapsed.Round(100*time.Millisecond), t2)
	fmt.Printf("have %d s. During the flow's %d writes: fwd_ipv6 +%d, ct_refresh +%d.\n\n",
		t1-int((elapsed-500*time.Millisecond)/time.Second), f.Writes, dx["fwd_ipv6"].Packets, dx["ct_refresh"].Packets)
	if dx["ct_refresh"].Packets == 0 || t2 < 6 {
		return fmt.Errorf("the entry was not refreshed: timeout %d s then %d s, ct_refresh +%d", t1, t2, dx["ct_refresh"].Packets)
	}
	if dx["fwd_ipv6"].Packets*10 < uint64(f.Writes)*9 {
		return fmt.Errorf("XDP forwarded %d packets for %d writes", dx["fwd_ipv6"].Packets, f.Writes)
	}

	heading("Stop the daemon; forwarding goes on")
	say("SIGTERM stops the daemon but leaves links, maps and the firewall in place: the",
		"data plane keeps forwarding, and a new daemon adopts the state without a flush",
		"(the lab tests kill -9 it under a packet stream and count zero losses).")
	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		return err
	}
	fmt.Printf("$ kill -TERM %d\n%s\n", d.PID(), d.Log()[strings.LastIndex(strings.TrimSuffix(d.Log(), "\n"), "\n")+1:])
	before, err = cli.Counters(ctx)
	if err != nil {
		return err
	}
	if _, err := sh.Ping(ctx, topo.HostB, labkit.HostA6.Addr(), 3); err != nil {
		return err
	}
	up, err = labkit.Transfer(ctx, lab, topo.HostB, topo.HostA, labkit.HostA6.Addr(), 4<<20)
	if err != nil {
		return err
	}
	after, err = cli.Counters(ctx)
	if err != nil {
		return err
	}
	dx = after.Sub(before)
	segs = uint64(up.SenderTCP.SegsOut) + uint64(up.RecvTCP.SegsOut)
	fmt.Printf("  upload host-b -> %s: %d bytes, sha256 %s… identical; %d segments, fwd_ipv6 +%d\n\n",
		labkit.HostA6.Addr(), up.Bytes, up.RecvSHA[:16], segs, dx["fwd_ipv6"].Packets)
	if dx["fwd_ipv6"].Packets*10 < segs*9 {
		return fmt.Errorf("without the daemon XDP forwarded %d packets of %d segments", dx["fwd_ipv6"].Packets, segs)
	}
	if err := pingBlocked(ctx, sh, topo.HostA, labkit.HostB6.Addr()); err != nil {
		return err
	}
	say("and the firewall still keeps host-a out.")
	if err := grepCLI(ctx, cli, "^(daemon:|INTERFACE |to-[ab] |firewall:|drop_wan_forward )", "status"); err != nil {
		return err
	}
	say("Removing everything: `xdprouter detach --all` (or run the daemon with",
		"--detach-on-exit).")
	_, err = cli.Run(ctx, "detach", "--all")
	return err
}
