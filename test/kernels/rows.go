package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

//go:embed guest/run.sh
var runScript []byte

// guestRows are the kernels the matrix boots: the newest linux-image-amd64
// of the first suite listed that has one (security updates first, as a
// kept-up Debian box runs them).
var guestRows = map[string][]string{
	"bookworm":           {"bookworm-security", "bookworm"},
	"bookworm-backports": {"bookworm-backports"},
	"trixie":             {"trixie-security", "trixie"},
}

// Row is one kernel of the matrix.
type Row struct {
	Name    string          `json:"name"`
	Mode    string          `json:"mode"`    // kvm, tcg (qemu emulation) or native (this host, no VM)
	Release string          `json:"release"` // uname -r where the tests ran
	Package string          `json:"package,omitempty"`
	Version string          `json:"version,omitempty"`
	Suite   string          `json:"suite,omitempty"`
	Seconds float64         `json:"seconds"` // wall time: fetch, boot, tests
	Status  string          `json:"status"`  // "ok", or why the row did not run
	Note    string          `json:"note,omitempty"`
	Logs    string          `json:"logs,omitempty"` // the row's directory: console, guest log, test output
	Cells   map[string]Cell `json:"cells"`
	results map[string]map[string]*TestResult
}

// writeGuestInputs puts the plan, the environment and the module list where
// run.sh reads them, and run.sh itself (the guest runs it from the host's
// tree, read-only).
func writeGuestInputs(dir string, p *Plan, b *Binaries, root string) error {
	var plan strings.Builder
	for _, pkg := range p.pkgs() {
		fmt.Fprintf(&plan, "%s\t%s\t%s\t%s\t%s\n", resultName(pkg), filepath.Join(root, pkg), b.Tests[pkg], p.runPattern(pkg), "30m")
	}
	files := map[string]string{
		"plan":    plan.String(),
		"env":     fmt.Sprintf("export XDPROUTER_BIN=%q\n", b.XDPRouter),
		"modules": strings.Join(modules, "\n") + "\n",
		"run.sh":  string(runScript),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// runGuest fetches the row's kernel, boots it and collects the results.
func runGuest(ctx context.Context, o *options, a apt, accel Accel, name string, p *Plan, b *Binaries) *Row {
	start := time.Now()
	row := &Row{Name: name, Mode: accel.Name}
	defer func() { row.Seconds = time.Since(start).Seconds() }()
	dir := filepath.Join(o.work, name)
	row.Logs = dir
	fail := func(err error) *Row {
		row.Status = err.Error()
		return row
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	k, err := fetchKernel(ctx, a, o.cache, guestRows[name])
	if err != nil {
		return fail(fmt.Errorf("fetch: %w", err))
	}
	row.Package, row.Version, row.Suite, row.Release = k.Package, k.Version, k.Suite, k.Release
	initrd := filepath.Join(dir, "initramfs.gz")
	if err := buildInitramfs(ctx, k, initrd); err != nil {
		return fail(fmt.Errorf("initramfs: %w", err))
	}
	if err := writeGuestInputs(dir, p, b, o.root); err != nil {
		return fail(err)
	}
	boot := &Boot{Kernel: k, Initramfs: initrd, RunScript: filepath.Join(dir, "run.sh"), Out: dir,
		Console: filepath.Join(dir, "console.log"), Timeout: o.guestTimeout, Accel: accel, CPUs: o.cpus, MemMB: o.memMB}
	o.logf("%s: booting %s (%s %s, %s) under %s, at most %v; console %s", name, k.Release, k.Package, k.Version, k.Suite, accel.Name, o.guestTimeout, boot.Console)
	bootErr := boot.Run(ctx)
	if uname, err := os.ReadFile(filepath.Join(dir, "uname")); err == nil {
		row.Release = strings.TrimSpace(string(uname))
	}
	row.results, err = collect(ctx, dir, p)
	if err != nil {
		return fail(err)
	}
	if bootErr != nil {
		// Tests that finished before the end still count; the rest show
		// as "no result".
		return fail(bootErr)
	}
	row.Status = "ok"
	return row
}

// runHost runs the plan on this machine's kernel, without a VM, under the
// shared lock that every kernel test on this machine takes.
func runHost(ctx context.Context, o *options, p *Plan, b *Binaries) *Row {
	start := time.Now()
	uname, _ := exec.Command("uname", "-r").Output()
	row := &Row{Name: "host", Mode: "native", Release: strings.TrimSpace(string(uname)), Status: "ok"}
	row.Note = hostNote(row.Release)
	dir := filepath.Join(o.work, "host")
	row.Logs = dir
	defer func() { row.Seconds = time.Since(start).Seconds() }()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		row.Status = err.Error()
		return row
	}
	o.logf("host: running natively on %s under %s", row.Release, o.lock)
	for _, pkg := range p.pkgs() {
		out, err := os.Create(filepath.Join(dir, resultName(pkg)+".out"))
		if err != nil {
			row.Status = err.Error()
			return row
		}
		cmd := exec.CommandContext(ctx, "flock", o.lock, b.Tests[pkg], "-test.v=test2json", "-test.count=1",
			"-test.timeout=15m", "-test.run", p.runPattern(pkg))
		cmd.Dir = filepath.Join(o.root, pkg)
		cmd.Env = append(os.Environ(), "XDPROUTER_BIN="+b.XDPRouter)
		cmd.Stdout, cmd.Stderr = out, out
		err = cmd.Run()
		out.Close()
		rc := 0
		if err != nil {
			rc = cmd.ProcessState.ExitCode()
		}
		os.WriteFile(filepath.Join(dir, resultName(pkg)+".rc"), []byte(fmt.Sprintln(rc)), 0o644)
	}
	var err error
	if row.results, err = collect(ctx, dir, p); err != nil {
		row.Status = err.Error()
	}
	return row
}

// hostNote says why the host's kernel is a native row and not a guest.
func hostNote(release string) string {
	img := "/boot/vmlinuz-" + release
	if _, err := os.Stat(img); err == nil {
		return "this host's kernel, run natively (the normal `make test` environment)"
	}
	return fmt.Sprintf("this host's kernel, run natively: its image is not available to boot (no %s, no /lib/modules/%s; /sys/kernel has BTF but no image)", img, release)
}

// collect converts each package's output with `go tool test2json` and
// parses it.
func collect(ctx context.Context, dir string, p *Plan) (map[string]map[string]*TestResult, error) {
	all := map[string]map[string]*TestResult{}
	for _, pkg := range p.pkgs() {
		raw, err := os.ReadFile(filepath.Join(dir, resultName(pkg)+".out"))
		if err != nil {
			continue // never ran: every test shows as "no result"
		}
		cmd := exec.CommandContext(ctx, "go", "tool", "test2json", "-p", pkg)
		cmd.Stdin = bytes.NewReader(raw)
		js, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go tool test2json for %s: %w", pkg, err)
		}
		os.WriteFile(filepath.Join(dir, resultName(pkg)+".json"), js, 0o644)
		if all[pkg], err = parseEvents(pkg, bytes.NewReader(js)); err != nil {
			return nil, err
		}
	}
	return all, nil
}
