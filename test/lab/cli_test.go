package lab

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// TestCLIErrors checks that each way attach or status can fail ends in a
// non-zero exit and one line that says what is wrong, before anything is
// left on the system. Each case has its own --bpffs so one case's leftovers
// cannot make another pass.
func TestCLIErrors(t *testing.T) {
	topo, base, ctx := newLab(t)
	cliIn := func(t *testing.T, name string) labkit.CLI {
		c := base.WithLog(t)
		c.BPFFS = filepath.Join(topo.Lab.RunDir(), name)
		return c
	}
	oneLine := func(t *testing.T, res labkit.Result, wants ...string) {
		t.Helper()
		if res.ExitCode == 0 {
			t.Errorf("%s: exit 0, want a failure", res.Cmdline)
		}
		lines := res.StderrLines()
		if len(lines) != 1 {
			t.Fatalf("%s: %d lines on stderr, want exactly one:\n%s", res.Cmdline, len(lines), res.Stderr)
		}
		for _, w := range wants {
			if !strings.Contains(lines[0], w) {
				t.Errorf("%s: stderr %q does not mention %q", res.Cmdline, lines[0], w)
			}
		}
	}

	t.Run("missing interface", func(t *testing.T) {
		cli := cliIn(t, "missing")
		res, _ := cli.Run(ctx, "attach", "nosuch0", "--role", "lan")
		oneLine(t, res, "nosuch0")
	})

	t.Run("failed first attach leaves nothing behind", func(t *testing.T) {
		// The loader promises that a failed first attach leaves no maps
		// behind (attach.go, the undo of Attach); nothing else would remove
		// them until a `detach --all`.
		cli := cliIn(t, "missing-leftovers")
		if res, _ := cli.Run(ctx, "attach", "nosuch0"); res.ExitCode == 0 {
			t.Fatalf("attach of a missing interface succeeded")
		}
		if left := leftovers(t, cli.BPFFS); len(left) > 0 {
			t.Errorf("failed attach left pins behind: %v", left)
		}
		if isBPFFSMount(t, cli.BPFFS) {
			t.Errorf("failed attach left a bpffs mounted at %s", cli.BPFFS)
		}
	})

	t.Run("not root", func(t *testing.T) {
		// nobody must be able to reach the binary, which a root-only temp
		// directory would prevent.
		dir, err := os.MkdirTemp("", "xdprouter-nobody-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		bin := filepath.Join(dir, "xdprouter")
		if err := copyFile(xdprouterBin, bin); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dirNobody := filepath.Join(topo.Lab.RunDir(), "nobody")
		r := labkit.Runner{Log: t}
		// No `ip netns exec`: entering a namespace itself needs root, and
		// the check must be xdprouter's own.
		res, _ := r.Run(ctx, nil, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			bin, "--bpffs", dirNobody, "attach", labkit.RouterIfA)
		oneLine(t, res, "root")
		if _, err := os.Stat(dirNobody); err == nil {
			t.Errorf("attach as nobody created %s", dirNobody)
		}
	})

	t.Run("kernel without BTF", func(t *testing.T) {
		cli := cliIn(t, "nobtf")
		res, _ := cli.RunEnv(ctx, []string{"XDPROUTER_KERNEL_BTF=/nonexistent"}, "attach", labkit.RouterIfA)
		oneLine(t, res, "BTF")
		if xdpProgOn(t, ctx, cli.Runner, topo.Router, labkit.RouterIfA) {
			t.Errorf("attach without BTF left an XDP program on %s", labkit.RouterIfA)
		}
		if _, err := os.Stat(cli.BPFFS); err == nil {
			t.Errorf("attach without BTF created %s", cli.BPFFS)
		}
	})

	t.Run("status with nothing attached", func(t *testing.T) {
		cli := cliIn(t, "empty")
		for _, args := range [][]string{{"status"}, {"status", "--json"}, {"stats"}} {
			res, _ := cli.Run(ctx, args...)
			oneLine(t, res, "nothing is attached", cli.BPFFS)
			if res.Stdout != "" {
				t.Errorf("%s: stdout %q, want nothing", res.Cmdline, res.Stdout)
			}
		}
		if _, err := os.Stat(cli.BPFFS); err == nil {
			t.Errorf("status created %s", cli.BPFFS)
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
