package loader

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The TC slow path on kernels without TCX (before 6.6): a classic clsact
// qdisc with direct-action BPF filters, attached over netlink. Each of
// xdprouter's programs has its own filter priority, a fixed handle and a
// name that says whose it is, so that it is found again, replaced in place
// (tc replaces a filter's program atomically: no packet sees none) and
// removed without touching anyone else's filters. The program is pinned as
// links/<kind>_<ifindex>, where TCX pins its link: the pin's type (program
// or link) records the mode. links/qdisc_<ifindex> (an empty directory)
// records that xdprouter created the interface's clsact qdisc, which it
// then removes with its last filter, if nobody else's filter is on it.
//
// The programs return TCX_NEXT (-1) for what is not theirs: for a
// direct-action filter that is TC_ACT_UNSPEC, which goes on to the next
// filter as under TCX it goes on to the next program.

// TCMode says how the TC slow path attaches.
type TCMode string

const (
	// TCModeAuto uses TCX where the kernel has it, clsact elsewhere.
	TCModeAuto TCMode = "auto"
	// TCModeTCX attaches through TCX links (Linux 6.6+).
	TCModeTCX TCMode = "tcx"
	// TCModeClsact attaches clsact filters, also where TCX exists: for
	// testing the path older kernels take.
	TCModeClsact TCMode = "clsact"
)

// ParseTCMode accepts "auto", "tcx" or "clsact".
func ParseTCMode(s string) (TCMode, error) {
	switch m := TCMode(s); m {
	case TCModeAuto, TCModeTCX, TCModeClsact:
		return m, nil
	}
	return "", fmt.Errorf("unknown tc mode %q (want auto, tcx or clsact)", s)
}

// tcModeSetting is what SetTCMode chose for this process.
var tcModeSetting = TCModeAuto

// SetTCMode chooses how this process attaches the TC slow path; the
// default is TCModeAuto. Attachments made in the other mode are moved over
// when next attached (not hitlessly: a mode switch is for testing).
func SetTCMode(m TCMode) { tcModeSetting = m }

// ResolveTCMode is the mode the TC slow path attaches in on this kernel.
func ResolveTCMode() (TCMode, error) {
	tcx := stableProbe(FeatureTCX) == nil
	switch tcModeSetting {
	case TCModeClsact:
		return TCModeClsact, nil
	case TCModeTCX:
		if !tcx {
			return "", fmt.Errorf("tc mode tcx: kernel %s has no TCX (6.6): use auto or clsact", kernelRelease())
		}
		return TCModeTCX, nil
	}
	if tcx {
		return TCModeTCX, nil
	}
	return TCModeClsact, nil
}

// clsactSlot is where one kind of TC program sits: its direction and its
// filter priority. Decapsulation comes before DNPT on a WAN's ingress, as
// the fast path checks tunnels first.
type clsactSlot struct {
	prio   uint16
	egress bool
	// head puts the program ahead of the hook's others under TCX too.
	head bool
}

var clsactSlots = map[string]clsactSlot{
	// The veth reply program sends answers XDP built, which NPT would
	// translate (their destination is in the outside prefix): first.
	replyKind:    {0xffe0, false, true},
	reasmKind:    {0xfff0, false, false},
	"tuningress": {0xfff0, false, false},
	"tc_dnpt":    {0xfff1, false, false},
	"tunegress":  {0xfff2, true, false},
	"tc_snpt":    {0xfff3, true, false},
	// Before tunegress, which redirects what it encapsulates.
	tunSNPTKind: {0xffe8, true, true},
}

// clsactHandle is the handle of every xdprouter filter ("xdpr" in ASCII).
const clsactHandle = 0x78647072

// clsactFilterName names kind's filter in `tc filter show`.
func clsactFilterName(kind string) string { return "xdprouter-" + kind }

const qdiscMarker = "qdisc"

// splitPin parses a pin name <kind>_<ifindex>.
func splitPin(name string) (string, int, bool) {
	i := strings.LastIndexByte(name, '_')
	if i < 0 {
		return "", 0, false
	}
	ifindex, err := strconv.Atoi(name[i+1:])
	return name[:i], ifindex, err == nil
}

func clsactFilter(kind string, ifindex int) (*netlink.BpfFilter, error) {
	slot, ok := clsactSlots[kind]
	if !ok {
		return nil, fmt.Errorf("no clsact slot for %q", kind)
	}
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if slot.egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	return &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: parent, Handle: clsactHandle,
			Protocol: unix.ETH_P_ALL, Priority: slot.prio},
		Name:         clsactFilterName(kind),
		DirectAction: true,
	}, nil
}

func linkRef(ifindex int) netlink.Link {
	return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}
}

// findFilter returns the filter at want's priority and handle, or nil.
func findFilter(want *netlink.BpfFilter) (*netlink.BpfFilter, error) {
	fs, err := netlink.FilterList(linkRef(want.LinkIndex), want.Parent)
	if err != nil {
		return nil, fmt.Errorf("list tc filters of ifindex %d: %w", want.LinkIndex, err)
	}
	for _, f := range fs {
		a := f.Attrs()
		if a.Priority != want.Priority || a.Handle == 0 {
			continue
		}
		bf, ok := f.(*netlink.BpfFilter)
		if !ok || a.Handle != want.Handle || bf.Name != want.Name {
			return nil, fmt.Errorf("tc filter priority %d on ifindex %d belongs to another tool (%s handle %#x %q); xdprouter reserves it",
				want.Priority, want.LinkIndex, f.Type(), a.Handle, nameOf(f))
		}
		return bf, nil
	}
	return nil, nil
}

func nameOf(f netlink.Filter) string {
	if bf, ok := f.(*netlink.BpfFilter); ok {
		return bf.Name
	}
	return ""
}

// clsactState says whether ifindex has a clsact qdisc.
func clsactState(ifindex int) (bool, error) {
	qs, err := netlink.QdiscList(linkRef(ifindex))
	if err != nil {
		return false, fmt.Errorf("list qdiscs of ifindex %d: %w", ifindex, err)
	}
	for _, q := range qs {
		switch q.Type() {
		case "clsact":
			return true, nil
		case "ingress":
			return false, fmt.Errorf("ifindex %d has an ingress qdisc, where xdprouter's slow path needs clsact "+
				"(which also has the ingress hook): replace it with clsact and re-add its filters", ifindex)
		}
	}
	return false, nil
}

// ensureClsact adds a clsact qdisc to ifindex unless it has one, and
// records that it did.
func ensureClsact(dir string, ifindex int) error {
	has, err := clsactState(ifindex)
	if err != nil || has {
		return err
	}
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	if err := netlink.QdiscAdd(q); err != nil {
		return fmt.Errorf("add clsact qdisc to ifindex %d: %w", ifindex, err)
	}
	marker := filepath.Join(dir, linksDir, fmt.Sprintf("%s_%d", qdiscMarker, ifindex))
	if err := os.Mkdir(marker, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("record the clsact qdisc of ifindex %d: %w", ifindex, err)
	}
	return nil
}

// attachClsact puts prog in kind's filter on ifindex: adds it, replaces
// another program in it, or finds it running prog's code already.
func (d *Dataplane) attachClsact(kind string, ifindex int, prog *ebpf.Program) (string, error) {
	want, err := clsactFilter(kind, ifindex)
	if err != nil {
		return "", err
	}
	if err := ensureClsact(d.dir, ifindex); err != nil {
		return "", err
	}
	cur, err := findFilter(want)
	if err != nil {
		return "", err
	}
	pin := d.pinPath(kind, ifindex)
	action := "attached"
	if cur != nil {
		same, err := sameProgram(ebpf.ProgramID(cur.Id), prog)
		if err != nil {
			return "", err
		}
		if same {
			if _, err := os.Stat(pin); err == nil {
				return "unchanged", nil
			}
			// Pinned by nobody (a crash between the two steps): pin below.
			action = "unchanged"
		} else {
			action = "replaced program"
		}
	}
	if action != "unchanged" {
		want.Fd = prog.FD()
		modify := netlink.FilterAdd
		if cur != nil {
			modify = netlink.FilterReplace
		}
		if err := modify(want); err != nil {
			// A qdisc added for nothing goes again.
			return "", errors.Join(fmt.Errorf("%s tc filter %s on ifindex %d: %w",
				map[bool]string{true: "replace", false: "add"}[cur != nil], want.Name, ifindex, err), releaseQdisc(d.dir, ifindex))
		}
	}
	if err := pinProgram(pin, prog); err != nil {
		return "", err
	}
	return action, nil
}

// pinProgram pins prog at pin, in place of whatever was pinned there.
func pinProgram(pin string, prog *ebpf.Program) error {
	if err := os.Remove(pin); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove old pin %s: %w", pin, err)
	}
	if err := prog.Pin(pin); err != nil {
		return fmt.Errorf("pin %s: %w", pin, err)
	}
	return nil
}

// removeClsact deletes the filter pin records (if it is still
// xdprouter's), the pin, and the clsact qdisc if xdprouter added it and
// nothing is left on it. A vanished interface took its filters with it.
func removeClsact(dir, pin string) error {
	kind, ifindex, ok := splitPin(filepath.Base(pin))
	if !ok {
		return os.Remove(pin)
	}
	if want, err := clsactFilter(kind, ifindex); err == nil {
		if has, err := clsactState(ifindex); err == nil && has {
			if cur, err := findFilter(want); err == nil && cur != nil {
				if err := netlink.FilterDel(cur); err != nil {
					return fmt.Errorf("delete tc filter %s on ifindex %d: %w", want.Name, ifindex, err)
				}
			}
		}
	}
	if err := os.Remove(pin); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", pin, err)
	}
	return releaseQdisc(dir, ifindex)
}

// releaseQdisc removes the clsact qdisc xdprouter added to ifindex once
// none of its filters is left there, unless another tool's filter is on
// it now, and forgets it either way. While a filter of xdprouter's remains
// it does nothing.
func releaseQdisc(dir string, ifindex int) error {
	marker := filepath.Join(dir, linksDir, fmt.Sprintf("%s_%d", qdiscMarker, ifindex))
	if _, err := os.Stat(marker); err != nil {
		return nil
	}
	for kind := range clsactSlots {
		if isProgramPin(filepath.Join(dir, linksDir, fmt.Sprintf("%s_%d", kind, ifindex))) {
			return nil
		}
	}
	if has, err := clsactState(ifindex); err == nil && has {
		empty := true
		for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
			fs, err := netlink.FilterList(linkRef(ifindex), parent)
			if err != nil || len(fs) > 0 {
				empty = false
			}
		}
		if empty {
			q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex,
				Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
			if err := netlink.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("delete the clsact qdisc xdprouter added to ifindex %d: %w", ifindex, err)
			}
		}
	}
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", marker, err)
	}
	return nil
}

// isProgramPin says whether pin holds a program (a clsact filter's
// record) rather than a link.
func isProgramPin(pin string) bool {
	p, err := ebpf.LoadPinnedProgram(pin, nil)
	if err != nil {
		return false
	}
	p.Close()
	return true
}

// clsactProgram is the program kind's filter on ifindex runs, 0 when
// there is none.
func clsactProgram(kind string, ifindex int) (ebpf.ProgramID, error) {
	want, err := clsactFilter(kind, ifindex)
	if err != nil {
		return 0, err
	}
	if has, err := clsactState(ifindex); err != nil || !has {
		return 0, err
	}
	cur, err := findFilter(want)
	if err != nil || cur == nil {
		return 0, err
	}
	return ebpf.ProgramID(cur.Id), nil
}

// attachClsactUnpinned attaches prog as kind's filter on ifindex with
// nothing pinned or recorded, for a device that lives as long as the
// process that made it (the reassembly tap); Close takes the filter away,
// and the qdisc if it added one.
func attachClsactUnpinned(kind string, ifindex int, prog *ebpf.Program) (io.Closer, error) {
	want, err := clsactFilter(kind, ifindex)
	if err != nil {
		return nil, err
	}
	has, err := clsactState(ifindex)
	if err != nil {
		return nil, err
	}
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	if !has {
		if err := netlink.QdiscAdd(q); err != nil {
			return nil, fmt.Errorf("add clsact qdisc to ifindex %d: %w", ifindex, err)
		}
	}
	want.Fd = prog.FD()
	if err := netlink.FilterAdd(want); err != nil {
		if !has {
			_ = netlink.QdiscDel(q)
		}
		return nil, fmt.Errorf("add tc filter %s on ifindex %d: %w", want.Name, ifindex, err)
	}
	return closerFunc(func() error {
		err := netlink.FilterDel(want)
		if !has {
			err = errors.Join(err, netlink.QdiscDel(q))
		}
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) {
			return nil // the device went first, and its filters with it
		}
		return err
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
