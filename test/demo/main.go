// Command demo shows xdprouter at work in throw-away labs of network
// namespaces, one per feature: plain XDP forwarding between two hosts (the
// CLI, then the daemon); an ipip6 tunnel (DS-Lite) to an independent AFTR;
// NPTv6 with the NDP proxy answering an ISP that solicits every address;
// a whole IPoE line learned from a simulated ISP (radvd, kea-dhcp6-server,
// DNS, an update URL) that renumbers midway.
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
	only := flag.Int("part", 0, "run only this part (1-4); 0 runs them all")
	flag.Parse()

	// The lab is torn down on the way out of run; a second Ctrl-C during
	// that must not cut it short, hence signals stay caught until then.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	start := time.Now()
	err := run(ctx, *bin, *size, *only)
	stop()
	if err != nil {
		if ctx.Err() != nil {
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

	parts := []struct {
		title string
		run   func() error
	}{
		{"Part 1: XDP forwarding between two hosts", func() error { return runForwarding(ctx, bin, size) }},
		// The AFTR relays every packet through Python; 2 MB keep it brisk.
		{"Part 2: an ipip6 tunnel (DS-Lite) to an AFTR", func() error { return runTunnel(ctx, root, bin, min(size, 2<<20)) }},
		{"Part 3: NPTv6 and the NDP proxy", func() error { return runNPT(ctx, bin) }},
		{"Part 4: the IPoE story — RA, DHCPv6-PD, LAN RAs, renumbering", func() error { return runIPoE(ctx, root, bin) }},
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
	if _, err := cli.Run(ctx, "attach", labkit.RouterIfA, labkit.RouterIfB, "--role", "lan"); err != nil {
		return err
	}
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
	return runDaemon(ctx, topo, cli)
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
	heading("The daemon: xdprouter run")
	cfg := filepath.Join(topo.Lab.RunDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(exampleConfig), 0o600); err != nil {
		return err
	}
	say("The same router, now from a config file and kept by the daemon. It attaches",
		"what the config names, serves status on a root-only unix socket (--socket)",
		"and keeps running; SIGHUP reloads the file, SIGTERM stops it.")
	fmt.Printf("$ cat %s\n%s\n", cfg, exampleConfig)
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
	if _, err := sh.Ping(ctx, topo.HostA, labkit.HostB6.Addr(), 3); err != nil {
		return err
	}
	say("status now comes from the daemon: its config generation and reconcile",
		"counts first, then the pinned state as before.")
	if _, err := cli.Run(ctx, "status"); err != nil {
		return err
	}

	heading("Stop the daemon; forwarding goes on")
	say("SIGTERM stops the daemon but leaves links and maps pinned: the data plane",
		"keeps forwarding, and a new daemon adopts the state without a flush (the lab",
		"tests kill -9 it under a packet stream and count zero losses).")
	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		return err
	}
	fmt.Printf("$ kill -TERM %d\n%s\n", d.PID(), d.Log()[strings.LastIndex(strings.TrimSuffix(d.Log(), "\n"), "\n")+1:])
	if _, err := sh.Ping(ctx, topo.HostA, labkit.HostB6.Addr(), 3); err != nil {
		return err
	}
	if _, err := cli.Run(ctx, "status"); err != nil {
		return err
	}
	say("Removing everything: `xdprouter detach --all` (or run the daemon with",
		"--detach-on-exit).")
	_, err = cli.Run(ctx, "detach", "--all")
	return err
}
