package lab

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// tcModes are the ways the TC slow path attaches: TCX links (Linux 6.6+,
// what auto picks there) and clsact filters (what auto picks on older
// kernels, forced here on any kernel).
var tcModes = []loader.TCMode{loader.TCModeTCX, loader.TCModeClsact}

// forEachTCMode runs a slow-path test once per TC mode, as subtests named
// after the mode (-run 'TestX/clsact' picks one). Every xdprouter command
// the test runs inherits XDPROUTER_TC_MODE. On a kernel without TCX the
// tcx subtest is skipped: auto attaches with clsact there.
func forEachTCMode(t *testing.T, test func(t *testing.T)) {
	for _, mode := range tcModes {
		t.Run(string(mode), func(t *testing.T) {
			needRoot(t)
			if mode == loader.TCModeTCX && !loader.ProbeKernel().Has(loader.FeatureTCX) {
				t.Skipf("%s (auto attaches with clsact, the clsact subtest)", loader.ProbeKernel().Line(loader.FeatureTCX))
			}
			t.Setenv("XDPROUTER_TC_MODE", string(mode))
			test(t)
		})
	}
}

// tcMode is the mode the running subtest forced (forEachTCMode).
func tcMode() string { return os.Getenv("XDPROUTER_TC_MODE") }

// checkNoClsact fails when dev has a clsact qdisc: xdprouter removes the
// one it added with its last filter.
func checkNoClsact(t *testing.T, ctx context.Context, r labkit.Runner, ns, dev string) {
	t.Helper()
	res := mustRun(t, ctx, r, netlab.InNS(ns, "tc", "qdisc", "show", "dev", dev)...)
	if strings.Contains(res.Stdout, "clsact") {
		t.Errorf("%s still has a clsact qdisc:\n%s", dev, res.Stdout)
	}
}
