package lab

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// TestDetachAllOtherVersion: pins as another version would leave them (a
// counters map of another size, a map this version does not know) cannot
// be loaded with this version's map layout, and `detach --all` must still
// remove every pin, detach the interface and remove the directory.
func TestDetachAllOtherVersion(t *testing.T) {
	topo, cli, ctx := newLab(t)
	dir := cli.BPFFS
	mustCLI(t, ctx, cli, "attach", "to-a")
	if err := os.Remove(filepath.Join(dir, "xdpr_counters")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"xdpr_counters", "xdpr_from_another"} {
		mustRun(t, ctx, cli.Runner, netlab.InNS(topo.Router, "bpftool", "map", "create", filepath.Join(dir, name),
			"type", "percpu_array", "key", "4", "value", "16", "entries", "3", "name", name)...)
	}
	if res, err := cli.Run(ctx, "attach", "to-b"); err == nil {
		t.Errorf("attach over maps of another layout succeeded:\n%s", res.Stdout)
	}
	mustCLI(t, ctx, cli, "detach", "--all")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(dir)
		t.Errorf("after detach --all, %s still exists (%v): %v", dir, err, entries)
	}
	if xdpProgOn(t, ctx, cli.Runner, topo.Router, "to-a") {
		t.Errorf("to-a still has an XDP program after detach --all")
	}
}
