package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Binaries are the test binaries and the CLI, built once on the host and
// run unchanged in every row.
type Binaries struct {
	Dir       string
	XDPRouter string
	Tests     map[string]string // package dir -> test binary
}

func packages() []string {
	var pkgs []string
	for _, f := range features {
		for _, t := range f.Tests {
			if !slices.Contains(pkgs, t.Pkg) {
				pkgs = append(pkgs, t.Pkg)
			}
		}
	}
	return pkgs
}

func build(ctx context.Context, root, dir string) (*Binaries, error) {
	b := &Binaries{Dir: dir, XDPRouter: filepath.Join(dir, "xdprouter"), Tests: map[string]string{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cmds := [][]string{{"go", "build", "-o", b.XDPRouter, "./cmd/xdprouter"}}
	for _, p := range packages() {
		b.Tests[p] = filepath.Join(dir, strings.ReplaceAll(p, "/", "_")+".test")
		cmds = append(cmds, []string{"go", "test", "-c", "-o", b.Tests[p], "./" + p})
	}
	for _, c := range cmds {
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %w: %s", strings.Join(c, " "), err, out)
		}
	}
	return b, nil
}

// Plan is what every row runs: per package, the tests that exist in this
// tree among those the chosen subset names.
type Plan struct {
	Selected map[string][]TestRef // feature key -> refs of the subset
	Exists   map[string][]string  // pkg NUL ref name -> test names in this tree
	Run      map[string][]string  // pkg -> test names to run
}

func newPlan(ctx context.Context, b *Binaries, ci bool, only *regexp.Regexp) (*Plan, error) {
	p := &Plan{Selected: map[string][]TestRef{}, Exists: map[string][]string{}, Run: map[string][]string{}}
	listed := map[string][]string{}
	for pkg, bin := range b.Tests {
		out, err := exec.CommandContext(ctx, bin, "-test.list", ".").Output()
		if err != nil {
			return nil, fmt.Errorf("%s -test.list: %w", bin, err)
		}
		for _, l := range strings.Fields(string(out)) {
			if strings.HasPrefix(l, "Test") {
				listed[pkg] = append(listed[pkg], l)
			}
		}
	}
	for _, f := range features {
		for _, ref := range f.Tests {
			if ci && !ref.CI {
				continue
			}
			p.Selected[f.Key] = append(p.Selected[f.Key], ref)
			var names []string
			for _, n := range listed[ref.Pkg] {
				if !only.MatchString(n) {
					continue
				}
				if n == ref.Name || (ref.Prefix && strings.HasPrefix(n, ref.Name)) {
					names = append(names, n)
				}
			}
			p.Exists[ref.Pkg+"\x00"+ref.Name] = names
			for _, n := range names {
				if !slices.Contains(p.Run[ref.Pkg], n) {
					p.Run[ref.Pkg] = append(p.Run[ref.Pkg], n)
				}
			}
		}
	}
	return p, nil
}

// runPattern is the -test.run pattern for a package's tests: exact
// top-level names, so that TestNPT does not also run TestNPTCache.
func (p *Plan) runPattern(pkg string) string {
	q := make([]string, len(p.Run[pkg]))
	for i, n := range p.Run[pkg] {
		q[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(q, "|") + ")$"
}

// pkgs lists the packages with something to run, in a stable order.
func (p *Plan) pkgs() []string {
	var out []string
	for _, pkg := range packages() {
		if len(p.Run[pkg]) > 0 {
			out = append(out, pkg)
		}
	}
	return out
}

// resultName is the file stem of a package's output in a row's directory.
func resultName(pkg string) string { return strings.ReplaceAll(pkg, "/", "_") }
