// Command kernels is `make test-kernels`: the kernel matrix. It boots
// Debian's own kernels under qemu, runs the data-plane tables and the labs
// inside each, runs the same tests natively on this host's kernel, and
// prints and saves a kernel × feature table (pass, fail, n/a). Design and
// usage: test/kernels/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

type options struct {
	kernels      []string
	subset       string
	cache        string
	work         string
	out          string
	lock         string
	root         string
	guestTimeout time.Duration
	cpus, memMB  int
	strict       bool
	only         string
}

func (o *options) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "test-kernels: "+format+"\n", args...)
}

func main() {
	o := &options{}
	kernels := flag.String("kernels", "bookworm,trixie,host", "rows, in order: bookworm (6.1), trixie (6.12), bookworm-backports (6.12), host (this kernel, natively)")
	flag.StringVar(&o.subset, "subset", "full", "tests per feature: full, or ci (the ones marked for CI's time budget)")
	flag.StringVar(&o.cache, "cache", "/var/cache/xdprouter-kernels", "kernels and apt state, kept between runs")
	flag.StringVar(&o.work, "work", "test/kernels/work", "per-run directories: binaries, consoles, guest logs, test output")
	flag.StringVar(&o.out, "out", "test/kernels/results", "where the report goes (<date>.{json,md} and latest.{json,md})")
	flag.StringVar(&o.lock, "lock", "/tmp/xdpr-kernel.lock", "the shared lock of kernel tests on this host, held by the host row")
	flag.DurationVar(&o.guestTimeout, "guest-timeout", 40*time.Minute, "limit of one guest, boot to power-off")
	flag.IntVar(&o.cpus, "cpus", 2, "guest CPUs")
	flag.IntVar(&o.memMB, "mem", 3072, "guest memory, MiB")
	flag.StringVar(&o.only, "run", "", "only the subset's tests whose name matches this regexp (while working on one kernel's failure)")
	flag.BoolVar(&o.strict, "strict", false, "exit 1 when a cell is fail or error (without it only a harness failure does)")
	flag.Parse()
	o.kernels = strings.Split(*kernels, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "test-kernels:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	start := time.Now()
	if o.subset != "full" && o.subset != "ci" {
		return fmt.Errorf("-subset %q: want full or ci", o.subset)
	}
	for _, k := range o.kernels {
		if _, ok := guestRows[k]; !ok && k != "host" {
			return fmt.Errorf("-kernels: unknown row %q", k)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (boots guests that load BPF; the host row creates namespaces)")
	}
	root, err := labkit.FindModuleRoot(".")
	if err != nil {
		return err
	}
	o.root = root
	for _, p := range []*string{&o.work, &o.out} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(root, *p)
		}
	}
	stamp := start.UTC().Format("20060102T150405Z")
	o.work = filepath.Join(o.work, stamp)
	// The guests mount a tmpfs on /tmp: their binaries and results must
	// live elsewhere in the host's tree.
	if strings.HasPrefix(o.work, "/tmp/") || strings.HasPrefix(o.work, "/run/") {
		return fmt.Errorf("-work %s: the guests mount fresh /tmp and /run, pick a directory elsewhere", o.work)
	}
	bins, err := build(ctx, root, filepath.Join(o.work, "bin"))
	if err != nil {
		return err
	}
	only, err := regexp.Compile(o.only)
	if err != nil {
		return fmt.Errorf("-run: %w", err)
	}
	plan, err := newPlan(ctx, bins, o.subset == "ci", only)
	if err != nil {
		return err
	}
	accel := chooseAccel()
	rep := &Report{Date: start, Commit: commit(root), Subset: o.subset, Only: o.only, Accel: accel, Features: features}
	o.logf("guests under %s: %s", accel.Name, accel.Reason)
	a := apt{dir: filepath.Join(o.cache, "apt")}
	var aptErr error
	if slices.ContainsFunc(o.kernels, func(k string) bool { return k != "host" }) {
		aptErr = a.update(ctx, o.logf)
	}
	for _, k := range o.kernels {
		var row *Row
		switch {
		case k == "host":
			row = runHost(ctx, o, plan, bins)
		case aptErr != nil:
			// No kernel to boot (the mirror unreachable on a first run):
			// the row says so, the others still run.
			row = &Row{Name: k, Mode: accel.Name, Status: aptErr.Error()}
		default:
			row = runGuest(ctx, o, a, accel, k, plan, bins)
		}
		rep.cellsOf(row, plan)
		rep.Rows = append(rep.Rows, row)
		o.logf("%s: %s in %s (%s)", k, row.Release, duration(row.Seconds), row.Status)
	}
	rep.Seconds = time.Since(start).Seconds()
	paths, err := rep.Save(o.out)
	if err != nil {
		return err
	}
	fmt.Print(rep.Table())
	fmt.Printf("\n%s in all; notes and test names in %s; logs under %s\n", duration(rep.Seconds), paths[0], o.work)
	pruneWork(filepath.Dir(o.work), 5)
	if o.strict {
		for _, row := range rep.Rows {
			for key, c := range row.Cells {
				if c.Outcome == Fail || c.Outcome == Error {
					return fmt.Errorf("-strict: %s %s is %s", row.Name, key, c.Outcome)
				}
			}
		}
	}
	return nil
}

func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// pruneWork keeps the newest keep run directories (their binaries and
// logs take some 100 MB each).
func pruneWork(dir string, keep int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var runs []string
	for _, e := range entries {
		if e.IsDir() && strings.HasSuffix(e.Name(), "Z") {
			runs = append(runs, e.Name())
		}
	}
	slices.Sort(runs)
	for len(runs) > keep {
		os.RemoveAll(filepath.Join(dir, runs[0]))
		runs = runs[1:]
	}
}
