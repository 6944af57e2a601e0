package lab

import (
	"encoding/json"
	"github.com/xdprouter/xdprouter/test/netlab"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// TestAttachDetach walks one interface through every attach variant and
// then detaches everything, checking each step in xdprouter's status, in
// the pinned map as bpftool shows it, and in the kernel's own view.
func TestAttachDetach(t *testing.T) {
	topo, cli, ctx := newLab(t)
	a, b := labkit.RouterIfA, labkit.RouterIfB

	// The first attach runs in the throwaway mount namespace of `ip netns
	// exec`: it has to mount the bpffs in ours (the parent's) and re-run
	// itself there, or the pins would vanish with it.
	out := mustCLI(t, ctx, cli, "attach", a, b, "--role", "lan")
	for _, dev := range []string{a, b} {
		if !strings.Contains(out.Stdout, dev+": attached") {
			t.Errorf("first attach: want %q in the output, got:\n%s", dev+": attached", out.Stdout)
		}
	}
	if !isBPFFSMount(t, topo.BPFFS) {
		t.Fatalf("after attach, %s is not a bpffs mount in the parent mount namespace", topo.BPFFS)
	}
	st := mustStatus(t, ctx, cli)
	first := mustIface(t, st, a)
	mustIface(t, st, b)
	if first.Role != "lan" || first.XDPMode != "native" || first.LinkID == 0 || !first.Present {
		t.Fatalf("status for %s after attach: %+v, want role lan, native, a link, present", a, first)
	}
	linkIDs := map[uint32]string{first.LinkID: a, mustIface(t, st, b).LinkID: b}
	ifindexes := map[int]string{first.Ifindex: a, mustIface(t, st, b).Ifindex: b}

	t.Run("same attach is unchanged", func(t *testing.T) {
		cli := cli.WithLog(t)
		out := mustCLI(t, ctx, cli, "attach", a, "--role", "lan")
		if !strings.Contains(out.Stdout, a+": unchanged") {
			t.Errorf("want %q, got:\n%s", a+": unchanged", out.Stdout)
		}
		now := mustIface(t, mustStatus(t, ctx, cli), a)
		if now.LinkID != first.LinkID || now.ProgramID != first.ProgramID {
			t.Errorf("link/program changed from %d/%d to %d/%d", first.LinkID, first.ProgramID, now.LinkID, now.ProgramID)
		}
	})

	t.Run("new role is recorded", func(t *testing.T) {
		cli := cli.WithLog(t)
		r := cli.Runner
		out := mustCLI(t, ctx, cli, "attach", a, "--role", "wan")
		if !strings.Contains(out.Stdout, a+": updated role") {
			t.Errorf("want %q, got:\n%s", a+": updated role", out.Stdout)
		}
		now := mustIface(t, mustStatus(t, ctx, cli), a)
		if now.Role != "wan" {
			t.Errorf("status role %q, want wan", now.Role)
		}
		if now.LinkID != first.LinkID {
			t.Errorf("a role change re-created the link: %d -> %d", first.LinkID, now.LinkID)
		}
		dump := mustRun(t, ctx, r, "bpftool", "map", "dump", "pinned", filepath.Join(topo.BPFFS, "xdpr_ifaces"))
		if !strings.Contains(dump.Stdout, "XDPR_ROLE_WAN") {
			t.Fatalf("bpftool dump of xdpr_ifaces has no XDPR_ROLE_WAN:\n%s", dump.Stdout)
		}
		var entries []ifaceEntry
		if err := json.Unmarshal([]byte(dump.Stdout), &entries); err != nil {
			t.Fatalf("decode bpftool map dump: %v", err)
		}
		roles := map[string]string{}
		for _, e := range entries {
			roles[e.Value.Name] = e.Value.Role
		}
		if roles[a] != "XDPR_ROLE_WAN" || roles[b] != "XDPR_ROLE_LAN" {
			t.Errorf("roles in xdpr_ifaces: %v, want %s WAN and %s LAN", roles, a, b)
		}
	})

	t.Run("generic mode re-attaches", func(t *testing.T) {
		cli := cli.WithLog(t)
		r := cli.Runner
		out := mustCLI(t, ctx, cli, "attach", a, "--role", "wan", "--mode", "generic")
		if !strings.Contains(out.Stdout, a+": reattached") {
			t.Errorf("want %q, got:\n%s", a+": reattached", out.Stdout)
		}
		now := mustIface(t, mustStatus(t, ctx, cli), a)
		if now.XDPMode != "generic" || now.Role != "wan" {
			t.Errorf("status: mode %q role %q, want generic, wan", now.XDPMode, now.Role)
		}
		if now.LinkID == first.LinkID {
			t.Errorf("link id %d unchanged: a mode change needs a new link", now.LinkID)
		}
		linkIDs[now.LinkID] = a
		show := mustRun(t, ctx, r, netlab.InNS(topo.Router, "ip", "-d", "link", "show", "dev", a)...)
		if !strings.Contains(show.Stdout, "xdpgeneric") {
			t.Errorf("ip link shows no xdpgeneric on %s:\n%s", a, show.Stdout)
		}
		// Mixed modes still forward: generic in, native out.
		if _, err := r.Ping(ctx, topo.HostA, labkit.HostB4.Addr(), 2); err != nil {
			t.Errorf("ping after the mode change: %v", err)
		}
	})

	t.Run("detach one", func(t *testing.T) {
		cli := cli.WithLog(t)
		r := cli.Runner
		out := mustCLI(t, ctx, cli, "detach", a)
		if !strings.Contains(out.Stdout, a+": detached") {
			t.Errorf("want %q, got:\n%s", a+": detached", out.Stdout)
		}
		st := mustStatus(t, ctx, cli)
		if _, ok := st.Interface(a); ok {
			t.Errorf("status still lists %s", a)
		}
		mustIface(t, st, b)
		if xdpProgOn(t, ctx, r, topo.Router, a) {
			t.Errorf("%s still has an XDP program", a)
		}
		if !xdpProgOn(t, ctx, r, topo.Router, b) {
			t.Errorf("detaching %s removed the program from %s", a, b)
		}
	})

	t.Run("detach all leaves nothing", func(t *testing.T) {
		cli := cli.WithLog(t)
		r := cli.Runner
		mustCLI(t, ctx, cli, "detach", "--all")
		if left := leftovers(t, topo.BPFFS); len(left) > 0 {
			t.Errorf("pins left behind: %v", left)
		}
		if isBPFFSMount(t, topo.BPFFS) {
			t.Errorf("%s is still a bpffs mount", topo.BPFFS)
		}
		if _, err := os.Stat(topo.BPFFS); err == nil {
			t.Errorf("%s still exists", topo.BPFFS)
		}
		for _, dev := range []string{a, b} {
			if xdpProgOn(t, ctx, r, topo.Router, dev) {
				t.Errorf("%s still has an XDP program", dev)
			}
		}
		for _, l := range bpfLinks(t, ctx, r) {
			if dev, ok := linkIDs[l.ID]; ok {
				t.Errorf("bpftool still lists link %d (%v, was on %s)", l.ID, l.Type, dev)
			}
			if l.Type == "xdp" && l.Ifindex != nil {
				if dev, ok := ifindexes[*l.Ifindex]; ok {
					t.Errorf("bpftool lists xdp link %d on ifindex %d (%s)", l.ID, *l.Ifindex, dev)
				}
			}
		}
		res, _ := cli.Run(ctx, "status")
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "nothing is attached") {
			t.Errorf("status after detach --all: exit %d, stderr %q; want an error saying nothing is attached",
				res.ExitCode, res.Stderr)
		}
		// Running it again is harmless: scripts call it to make sure.
		mustCLI(t, ctx, cli, "detach", "--all")
		if _, err := os.Stat(topo.BPFFS); err == nil {
			t.Errorf("a second detach --all left %s behind", topo.BPFFS)
		}
	})
}
