package loader

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestAttachReplacesChangedProgram is the upgrade path: the pinned link
// runs another version's program (different instructions, hence another
// tag); Attach must swap in the current one on the same link (link.Update,
// atomic: no packet sees no program) and then call it unchanged.
func TestAttachReplacesChangedProgram(t *testing.T) {
	requirePrivileged(t)
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	name := fmt.Sprintf("xu%06x", rand.Uint32()&0xffffff)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	if err := netlink.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}

	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	first, err := d.Attach(name, RoleLAN, ModeAuto, CTGateOff)
	if err != nil {
		t.Fatal(err)
	}
	if first.Action != "attached" {
		t.Fatalf("first attach: %q", first.Action)
	}
	currentTag := progTag(t, first.ProgramID)

	// What an older xdprouter left attached.
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	old := olderProgram(t, ifc, &d.maps)
	l, err := link.LoadPinnedLink(d.linkPin(ifc.Index), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Update(old); err != nil {
		t.Fatal(err)
	}
	l.Close()
	oldInfo, _ := old.Info()
	oldID, _ := oldInfo.ID()
	if oldInfo.Tag == currentTag {
		t.Fatalf("the stand-in for the old version has the current tag %s", currentTag)
	}

	up, err := d.Attach(name, RoleLAN, ModeAuto, CTGateOff)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("upgrade: link %d, program %d (tag %s) -> %d (tag %s): %s",
		first.LinkID, oldID, oldInfo.Tag, up.ProgramID, progTag(t, up.ProgramID), up.Action)
	if up.Action != "replaced program" || up.LinkID != first.LinkID || up.ProgramID == uint32(oldID) {
		t.Errorf("attach over an older program: %+v, want \"replaced program\" on link %d", up, first.LinkID)
	}
	if tag := progTag(t, up.ProgramID); tag != currentTag {
		t.Errorf("running tag %s, want the current %s", tag, currentTag)
	}
	again, err := d.Attach(name, RoleLAN, ModeAuto, CTGateOff)
	if err != nil {
		t.Fatal(err)
	}
	if again.Action != "unchanged" || again.ProgramID != up.ProgramID {
		t.Errorf("attach after the upgrade: %+v, want unchanged program %d", again, up.ProgramID)
	}
	if err := d.DetachAll(); err != nil {
		t.Fatal(err)
	}
}

// olderProgram loads the router program with one harmless instruction
// more at its start: other code, another tag, same maps.
func olderProgram(t *testing.T, ifc *net.Interface, maps *routerMaps) *ebpf.Program {
	t.Helper()
	spec, err := portSpec(ifc.Index, ifc.HardwareAddr, RoleLAN, CTGateOff)
	if err != nil {
		t.Fatal(err)
	}
	ps := spec.Programs["xdpr_main"]
	insns := ps.Instructions
	// The function's symbol, BTF func and line info sit on its first
	// instruction; they move to the new one.
	first := insns[0]
	nop := asm.Mov.Reg(asm.R1, asm.R1).WithSymbol(first.Symbol()).WithSource(first.Source())
	nop = btf.WithFuncMetadata(nop, btf.FuncMetadata(&first))
	first = btf.WithFuncMetadata(first.WithSymbol(""), nil)
	ps.Instructions = append(asm.Instructions{nop, first}, insns[1:]...)
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	var progs routerPrograms
	if err := spec.LoadAndAssign(&progs, &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{
		"xdpr_counters": maps.XdprCounters,
		"xdpr_ifaces":   maps.XdprIfaces,
		"xdpr_tx_ports": maps.XdprTxPorts,
	}}); err != nil {
		t.Fatalf("load the older program: %v", err)
	}
	t.Cleanup(func() { progs.Close() })
	return progs.XdprMain
}

func progTag(t *testing.T, id uint32) string {
	t.Helper()
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	return info.Tag
}
