package loader

// The TC slow path in clsact mode (clsact.go), as kernels without TCX run
// it, on this kernel: a router namespace whose WAN (wan0) already has a
// clsact qdisc with another tool's filters before and after xdprouter's
// priorities, and a tunnel netdev (tun0, an ifb as the control plane makes)
// without one. ipip6 from the peer is decapsulated by xdprouter's WAN
// ingress filter and delivered to a UDP socket behind tun0.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdprouter/xdprouter/test/netlab"
)

const (
	clsWAN6    = "2001:db8:2::1"
	clsPeer6   = "2001:db8:2::2"
	clsTun4    = "192.0.2.1"
	clsUDPPort = 5353 // udp4's destination port
	// Another tool's filters on wan0: one before xdprouter's priorities,
	// one after them.
	foreignFirstPrio = 1
	foreignLastPrio  = 0xfffe
)

type clsactLab struct {
	lab      *netlab.Lab
	r, p     string
	d        *Dataplane
	wan, tun int
	// lastSeen counts what reaches the foreign filter behind xdprouter's.
	lastSeen *ebpf.Map
}

func newClsactLab(t *testing.T) *clsactLab {
	t.Helper()
	requirePrivileged(t)
	lab, err := netlab.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	cl := &clsactLab{lab: lab}
	if cl.r, err = lab.AddNS("r", true); err != nil {
		t.Fatal(err)
	}
	if cl.p, err = lab.AddNS("p", false); err != nil {
		t.Fatal(err)
	}
	if err := lab.Veth(cl.r, "wan0", cl.p, "h-wan0"); err != nil {
		t.Fatal(err)
	}
	if err := lab.MustExec(cl.r,
		[]string{"ip", "-6", "addr", "add", clsWAN6 + "/64", "dev", "wan0", "nodad"},
		[]string{"ip", "link", "add", "tun0", "type", "ifb"},
		[]string{"ip", "link", "set", "tun0", "up"},
		[]string{"ip", "addr", "add", clsTun4 + "/24", "dev", "tun0"},
		[]string{"tc", "qdisc", "add", "dev", "wan0", "clsact"}); err != nil {
		t.Fatal(err)
	}
	if err := lab.MustExec(cl.p, []string{"ip", "-6", "addr", "add", clsPeer6 + "/64", "dev", "h-wan0", "nodad"}); err != nil {
		t.Fatal(err)
	}
	mnt, err := lab.BPFFS("clsact")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "xdprouter")
	SetTCMode(TCModeClsact)
	t.Cleanup(func() { SetTCMode(TCModeAuto) })
	cl.lastSeen, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.lastSeen.Close() })
	err = lab.Do(cl.r, func() error {
		if err := addForeignFilter("wan0", foreignFirstPrio, nil); err != nil {
			return err
		}
		if err := addForeignFilter("wan0", foreignLastPrio, cl.lastSeen); err != nil {
			return err
		}
		if cl.d, err = Open(dir); err != nil {
			return err
		}
		wan, err := net.InterfaceByName("wan0")
		if err != nil {
			return err
		}
		tun, err := net.InterfaceByName("tun0")
		if err != nil {
			return err
		}
		cl.wan, cl.tun = wan.Index, tun.Index
		return cl.d.PutTunnel(Tunnel{Name: "tun0", Ifindex: tun.Index, MAC: tun.HardwareAddr,
			Local: netip.MustParseAddr(clsWAN6), Remote: netip.MustParseAddr(clsPeer6), MTU: 1460, HopLimit: 64})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.d.Close() })
	return cl
}

// addForeignFilter adds another tool's direct-action filter on dev's
// ingress at prio: a program that lets every packet go on to the next
// filter (TC_ACT_UNSPEC), counting it in count when given.
func addForeignFilter(dev string, prio uint16, count *ebpf.Map) error {
	insns := asm.Instructions{}
	if count != nil {
		insns = append(insns,
			asm.Mov.Imm(asm.R0, 0),
			asm.StoreMem(asm.RFP, -4, asm.R0, asm.Word),
			asm.LoadMapPtr(asm.R1, count.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		)
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, -1).WithSymbol("out"), asm.Return())
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: insns})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return err
	}
	return netlink.FilterAdd(&netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS,
			Handle: 1, Protocol: unix.ETH_P_ALL, Priority: prio},
		Fd: prog.FD(), Name: fmt.Sprintf("foreign-%d", prio), DirectAction: true})
}

// tcFilter is one filter as `tc filter show` lists it.
type tcFilter struct {
	prio   uint16
	handle uint32
	name   string
	prog   int
}

// filters lists dev's filters on one side, or nil when dev has no clsact.
func (cl *clsactLab) filters(t *testing.T, ifindex int, egress bool) []tcFilter {
	t.Helper()
	var out []tcFilter
	err := cl.lab.Do(cl.r, func() error {
		if has, err := clsactState(ifindex); err != nil || !has {
			out = nil
			return err
		}
		parent := uint32(netlink.HANDLE_MIN_INGRESS)
		if egress {
			parent = netlink.HANDLE_MIN_EGRESS
		}
		fs, err := netlink.FilterList(linkRef(ifindex), parent)
		if err != nil {
			return err
		}
		out = []tcFilter{}
		for _, f := range fs {
			if f.Attrs().Handle == 0 {
				continue // the priority's own entry
			}
			tf := tcFilter{prio: f.Attrs().Priority, handle: f.Attrs().Handle}
			if bf, ok := f.(*netlink.BpfFilter); ok {
				tf.name, tf.prog = bf.Name, bf.Id
			}
			out = append(out, tf)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (cl *clsactLab) wantFilters(t *testing.T, what string, ifindex int, egress bool, want ...string) []tcFilter {
	t.Helper()
	got := cl.filters(t, ifindex, egress)
	var names []string
	for _, f := range got {
		names = append(names, f.name)
		if kind, ok := cutPrefix(f.name, "xdprouter-"); ok {
			slot := clsactSlots[kind]
			if f.prio != slot.prio || f.handle != clsactHandle {
				t.Errorf("%s: %s at prio %#x handle %#x, want prio %#x handle %#x", what, f.name, f.prio, f.handle, slot.prio, clsactHandle)
			}
		}
	}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("%s: filters %q, want %q", what, names, want)
	}
	return got
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

func (cl *clsactLab) marker(ifindex int) bool {
	_, err := os.Stat(filepath.Join(cl.d.dir, linksDir, fmt.Sprintf("%s_%d", qdiscMarker, ifindex)))
	return err == nil
}

// olderTCProgram is the named TC program with one harmless instruction
// more at its start: what an older xdprouter left in a filter.
func olderTCProgram(t *testing.T, maps *routerMaps, name string) *ebpf.Program {
	t.Helper()
	spec, err := tcSpec(TCModeClsact)
	if err != nil {
		t.Fatal(err)
	}
	ps := spec.Programs[name]
	first := ps.Instructions[0]
	nop := asm.Mov.Reg(asm.R1, asm.R1).WithSymbol(first.Symbol()).WithSource(first.Source())
	nop = btf.WithFuncMetadata(nop, btf.FuncMetadata(&first))
	first = btf.WithFuncMetadata(first.WithSymbol(""), nil)
	ps.Instructions = append(asm.Instructions{nop, first}, ps.Instructions[1:]...)
	spec.Programs = map[string]*ebpf.ProgramSpec{name: ps}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: maps.replacements()})
	if err != nil {
		t.Fatalf("load the older %s: %v", name, err)
	}
	prog := coll.DetachProgram(name)
	coll.Close()
	t.Cleanup(func() { prog.Close() })
	return prog
}

// TestClsactSlowPath: in clsact mode the slow path adds its filters at its
// own priorities beside another tool's, leaves a qdisc it found and
// records one it added; attaching again changes nothing; a filter running
// another version's program is replaced in place while ipip6 keeps being
// decapsulated (no packet lost); the programs leave what is not theirs to
// the next filter; detaching removes exactly xdprouter's filters, and the
// qdisc it added once nobody else uses it.
func TestClsactSlowPath(t *testing.T) {
	cl := newClsactLab(t)
	var nptAction string
	err := cl.lab.Do(cl.r, func() error {
		if err := cl.d.AttachTunnelTC("tun0", "wan0"); err != nil {
			return err
		}
		var err error
		nptAction, err = cl.d.AttachNPTSlowPath("wan0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if nptAction != "attached" {
		t.Errorf("NPT slow path: %q, want attached", nptAction)
	}
	first, last := fmt.Sprintf("foreign-%d", foreignFirstPrio), fmt.Sprintf("foreign-%d", foreignLastPrio)
	cl.wantFilters(t, "wan0 ingress", cl.wan, false, first, "xdprouter-tuningress", "xdprouter-tc_dnpt", last)
	cl.wantFilters(t, "wan0 egress", cl.wan, true, "xdprouter-tc_snpt")
	tunFilters := cl.wantFilters(t, "tun0 egress", cl.tun, true, "xdprouter-tunegress")
	if cl.marker(cl.wan) || !cl.marker(cl.tun) {
		t.Errorf("qdisc records: wan0 %t (it had one), tun0 %t (added)", cl.marker(cl.wan), cl.marker(cl.tun))
	}
	for _, kind := range []string{"tuningress", "tc_dnpt", "tc_snpt"} {
		if !isProgramPin(cl.d.pinPath(kind, cl.wan)) {
			t.Errorf("%s is not pinned as a program (the clsact record)", kind)
		}
	}
	st, err := cl.status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Tunnels) != 1 || st.Tunnels[0].TCMode != "clsact" || st.Tunnels[0].TCProgram != uint32(tunFilters[0].prog) {
		t.Errorf("status of tun0: %+v, want tc mode clsact, program %d", st.Tunnels, tunFilters[0].prog)
	}

	// Again: nothing changes.
	err = cl.lab.Do(cl.r, func() error {
		if err := cl.d.AttachTunnelTC("tun0", "wan0"); err != nil {
			return err
		}
		var err error
		nptAction, err = cl.d.AttachNPTSlowPath("wan0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if nptAction != "unchanged" {
		t.Errorf("NPT slow path again: %q, want unchanged", nptAction)
	}
	if again := cl.filters(t, cl.tun, true); len(again) != 1 || again[0].prog != tunFilters[0].prog {
		t.Errorf("tun0 egress after attaching again: %+v, was %+v", again, tunFilters)
	}

	cl.upgradeUnderTraffic(t)
	cl.othersGoOn(t)

	// NPT goes: its filters, nothing else.
	err = cl.lab.Do(cl.r, func() error {
		removed, err := cl.d.DetachNPTSlowPath("wan0")
		if err == nil && !removed {
			err = errors.New("DetachNPTSlowPath removed nothing")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cl.wantFilters(t, "wan0 ingress without NPT", cl.wan, false, first, "xdprouter-tuningress", last)
	cl.wantFilters(t, "wan0 egress without NPT", cl.wan, true)

	// Another tool puts a filter on the qdisc xdprouter added to tun0:
	// the qdisc must stay when the tunnel goes.
	if err := cl.lab.Do(cl.r, func() error { return addForeignFilter("tun0", 7, nil) }); err != nil {
		t.Fatal(err)
	}
	if err := cl.lab.Do(cl.r, func() error { return cl.d.DeleteTunnel(cl.tun) }); err != nil {
		t.Fatal(err)
	}
	cl.wantFilters(t, "wan0 ingress without tunnels", cl.wan, false, first, last)
	cl.wantFilters(t, "tun0 egress without the tunnel", cl.tun, true)
	if got := cl.filters(t, cl.tun, false); len(got) != 1 || got[0].prio != 7 {
		t.Errorf("tun0 ingress: %+v, want the other tool's filter, on the qdisc kept for it", got)
	}
	if cl.marker(cl.tun) {
		t.Error("the record of tun0's qdisc outlived xdprouter's last filter there")
	}
	if entries, _ := os.ReadDir(filepath.Join(cl.d.dir, linksDir)); len(entries) != 0 {
		t.Errorf("links/ after detaching everything: %v", entries)
	}
}

// TestClsactRemovesItsQdisc: a clsact qdisc xdprouter added and nobody
// else uses goes with its last filter; detach --all (Purge, which loads no
// map) removes clsact filters too.
func TestClsactRemovesItsQdisc(t *testing.T) {
	cl := newClsactLab(t)
	err := cl.lab.Do(cl.r, func() error { return cl.d.AttachTunnelTC("tun0", "wan0") })
	if err != nil {
		t.Fatal(err)
	}
	cl.wantFilters(t, "tun0 egress", cl.tun, true, "xdprouter-tunegress")
	// As `detach --all` does: the handle is closed first (its lock is
	// on the directory Purge unmounts).
	cl.d.Close()
	if err := cl.lab.Do(cl.r, func() error { return Purge(cl.d.dir) }); err != nil {
		t.Fatal(err)
	}
	if got := cl.filters(t, cl.tun, true); got != nil {
		t.Errorf("tun0 still has a clsact qdisc after purge: %+v", got)
	}
	first, last := fmt.Sprintf("foreign-%d", foreignFirstPrio), fmt.Sprintf("foreign-%d", foreignLastPrio)
	cl.wantFilters(t, "wan0 ingress after purge", cl.wan, false, first, last)
}

func (cl *clsactLab) status() (Status, error) {
	var st Status
	err := cl.lab.Do(cl.r, func() error {
		var err error
		st, err = cl.d.Status()
		return err
	})
	return st, err
}

// upgradeUnderTraffic streams ipip6 from the peer to tun0's UDP socket
// while an older program is put in the WAN's decapsulating filter and
// attaching again puts the current one back: both swaps are in place, so
// every datagram sent arrives.
func (cl *clsactLab) upgradeUnderTraffic(t *testing.T) {
	var conn *net.UDPConn
	err := cl.lab.Do(cl.r, func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(clsTun4), Port: clsUDPPort})
		if err != nil {
			return err
		}
		raw, err := conn.SyscallConn()
		if err != nil {
			return err
		}
		return raw.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var received atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
			received.Add(1)
		}
	}()

	inner := udp4(t, "198.51.100.9", clsTun4)[14:]
	// The peer resolves the router's address first: the count starts
	// once datagrams flow.
	s := cl.sendIPIP6(inner)
	for deadline := time.Now().Add(10 * time.Second); received.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no datagram through the clsact filter: %d sent (%v)", s.sent.Load(), s.stop())
		}
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	received.Store(0)
	s = cl.sendIPIP6(inner)
	time.Sleep(200 * time.Millisecond)
	var progs []int
	err = cl.lab.Do(cl.r, func() error {
		old := olderTCProgram(t, &cl.d.maps, "xdpr_tun_ingress")
		want, err := clsactFilter("tuningress", cl.wan)
		if err != nil {
			return err
		}
		want.Fd = old.FD()
		if err := netlink.FilterReplace(want); err != nil {
			return fmt.Errorf("put the older program in: %w", err)
		}
		progs = append(progs, cl.progOf(t, "tuningress"))
		time.Sleep(200 * time.Millisecond)
		if err := cl.d.AttachTunnelTC("tun0", "wan0"); err != nil {
			return err
		}
		progs = append(progs, cl.progOf(t, "tuningress"))
		return nil
	})
	if err != nil {
		_ = s.stop()
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	sent := s.sent.Load()
	for deadline := time.Now().Add(5 * time.Second); received.Load() < sent && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if received.Load() != sent {
		t.Errorf("%d datagrams sent through the replacements, %d received", sent, received.Load())
	}
	t.Logf("%d datagrams through the replacements, programs %v", sent, progs)
	if progs[0] == progs[1] {
		t.Errorf("attaching over the older program did not replace it (program %d)", progs[1])
	}
	if tag := progTag(t, uint32(progs[1])); tag == progTag(t, uint32(progs[0])) {
		t.Errorf("the replacement runs the older program's tag %s", tag)
	}
}

// sender streams ipip6 from the peer to the router's WAN address.
type sender struct {
	sent atomic.Int64
	done atomic.Bool
	err  chan error
}

func (cl *clsactLab) sendIPIP6(inner []byte) *sender {
	s := &sender{err: make(chan error, 1)}
	go func() {
		s.err <- cl.lab.Do(cl.p, func() error {
			fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_IPIP)
			if err != nil {
				return fmt.Errorf("raw ipip6 socket: %w", err)
			}
			defer unix.Close(fd)
			to := &unix.SockaddrInet6{Addr: netip.MustParseAddr(clsWAN6).As16()}
			for !s.done.Load() {
				if err := unix.Sendto(fd, inner, 0, to); err != nil {
					return fmt.Errorf("send ipip6: %w", err)
				}
				s.sent.Add(1)
				time.Sleep(50 * time.Microsecond)
			}
			return nil
		})
	}()
	return s
}

// stop ends the stream and says why it failed, if it did.
func (s *sender) stop() error {
	s.done.Store(true)
	return <-s.err
}

func (cl *clsactLab) progOf(t *testing.T, kind string) int {
	t.Helper()
	id, err := clsactProgram(kind, cl.wan)
	if err != nil || id == 0 {
		t.Fatalf("program of %s: %d %v", kind, id, err)
	}
	return int(id)
}

// othersGoOn: what xdprouter's WAN ingress filters leave alone (here ICMPv6
// echo requests, not ipip6) reaches the filter behind them: their
// TCX_NEXT is TC_ACT_UNSPEC, "next filter", as TCX's "next program".
func (cl *clsactLab) othersGoOn(t *testing.T) {
	var before uint64
	if err := cl.lastSeen.Lookup(uint32(0), &before); err != nil {
		t.Fatal(err)
	}
	if err := cl.lab.MustExec(cl.p, []string{"ping", "-6", "-c", "3", "-i", "0.05", "-W", "1", clsWAN6}); err != nil {
		t.Fatal(err)
	}
	var after uint64
	if err := cl.lastSeen.Lookup(uint32(0), &after); err != nil {
		t.Fatal(err)
	}
	if after-before < 3 {
		t.Errorf("the filter behind xdprouter's saw %d packets of 3 echo requests", after-before)
	}
}
