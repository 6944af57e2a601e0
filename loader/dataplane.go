// Package loader loads xdprouter's BPF objects, pins maps and links under a
// bpffs directory, attaches and detaches, and offers a typed API over the
// maps. It is the only package that imports cilium/ebpf.
package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

const linksDir = "links"

// ErrIncompatible: the pinned maps were made by a version whose map layout
// differs from this one's.
var ErrIncompatible = errors.New("incompatible pinned maps")

// Dataplane is a handle on the pinned state in one bpffs directory.
type Dataplane struct {
	dir     string
	lock    *os.File
	maps    routerMaps
	emptied bool // every pin is gone: Close removes the directory
}

// Open prepares dir (mounting a bpffs when needed), creates or adopts the
// pinned maps and takes an exclusive lock so concurrent xdprouter commands
// on the same directory do not interleave. Close releases it.
func Open(dir string) (*Dataplane, error) {
	if err := ensureBPFFS(dir); err != nil {
		return nil, err
	}
	d := &Dataplane{dir: dir}
	if err := d.takeLock(); err != nil {
		return nil, err
	}
	spec, err := loadRouter()
	if err != nil {
		d.Close()
		return nil, err
	}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: dir}}
	if err := spec.LoadAndAssign(&d.maps, opts); err != nil {
		d.Close()
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("%w: maps pinned in %s come from another xdprouter version "+
				"(`xdprouter detach --all` removes them): %v", ErrIncompatible, dir, err)
		}
		return nil, fmt.Errorf("load maps into %s: %w", dir, err)
	}
	if err := d.syncFeatures(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// OpenPinned opens existing pinned maps read-only, creating nothing. It
// returns an error wrapping os.ErrNotExist when nothing is pinned in dir.
func OpenPinned(dir string) (*Dataplane, error) {
	if !isBPFFS(existingAncestor(dir)) {
		// Under `ip netns exec` the state may live in the parent's view.
		// When that cannot be told, the load below reports "nothing pinned".
		if ppid, private, err := parentMountNS(); err == nil && private && isBPFFS(existingAncestor(parentRoot(ppid, dir))) {
			return nil, &ForeignMountNSError{Dir: dir, ParentPID: ppid}
		}
	}
	d := &Dataplane{dir: dir}
	ro := &ebpf.LoadPinOptions{ReadOnly: true}
	for i, slot := range d.mapSlots() {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, slot.name), ro)
		if err != nil {
			d.Close()
			if i == 0 {
				return nil, fmt.Errorf("nothing attached under %s: %w", dir, err)
			}
			return nil, fmt.Errorf("open pinned maps in %s: %w", dir, err)
		}
		*slot.m = m
	}
	return d, nil
}

// Dir is the bpffs directory this handle works in.
func (d *Dataplane) Dir() string { return d.dir }

// Close releases file descriptors and the lock; pinned state stays. After
// the last interface was detached it also removes the directory (and
// unmounts it if it is a bpffs of its own), which needs the descriptors
// closed first.
func (d *Dataplane) Close() error {
	d.maps.Close()
	if d.lock != nil {
		d.lock.Close()
	}
	if d.emptied {
		return removePinDir(d.dir)
	}
	return nil
}

// RemoveIfEmpty removes dir when it holds no xdprouter pins, for a
// `detach --all` that finds an empty bpffs left behind.
func RemoveIfEmpty(dir string) error {
	if !isBPFFS(dir) {
		return nil
	}
	return removePinDir(dir)
}

func (d *Dataplane) takeLock() error {
	f, err := os.Open(d.dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", d.dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return fmt.Errorf("lock %s: %w", d.dir, err)
	}
	d.lock = f
	return nil
}

// XDPLinkPin is where Attach pins the XDP link of ifindex in the state
// directory dir (the benchmark opens it to swap programs for a while).
func XDPLinkPin(dir string, ifindex int) string {
	return (&Dataplane{dir: dir}).linkPin(ifindex)
}

func (d *Dataplane) linkPin(ifindex int) string {
	return d.pinPath("xdp", ifindex)
}

// pinPath names the pin of one link: <kind>_<ifindex> under links/, so that
// detaching an interface finds all of its links by the suffix.
func (d *Dataplane) pinPath(kind string, ifindex int) string {
	return filepath.Join(d.dir, linksDir, fmt.Sprintf("%s_%d", kind, ifindex))
}

// removeMapPins deletes the pinned maps and the directory when no link is
// left, so that detaching the last interface leaves nothing behind.
func (d *Dataplane) removeMapPinsIfUnused() error {
	links, _ := os.ReadDir(filepath.Join(d.dir, linksDir))
	if len(links) > 0 {
		return nil
	}
	for _, slot := range d.mapSlots() {
		if err := (*slot.m).Unpin(); err != nil {
			return fmt.Errorf("unpin map: %w", err)
		}
	}
	d.emptied = true
	return nil
}

type mapSlot struct {
	name string
	m    **ebpf.Map
}

// mapSlots lists every pinned map, counters first (their absence means
// nothing is attached): what OpenPinned opens and the last detach unpins.
func (d *Dataplane) mapSlots() []mapSlot { return d.maps.slots() }

// slots reads the map list from the bpf2go struct tags, so a map added in C
// needs no Go list kept in step.
func (m *routerMaps) slots() []mapSlot {
	var out []mapSlot
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Tag.Get("ebpf")
		slot := mapSlot{name, v.Field(i).Addr().Interface().(**ebpf.Map)}
		if name == "xdpr_counters" {
			out = append([]mapSlot{slot}, out...)
		} else {
			out = append(out, slot)
		}
	}
	return out
}

// replacements maps every map name to m's map, for loading programs over
// maps that already exist without pinning (tests, benchmarks).
func (m *routerMaps) replacements() map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	for _, s := range m.slots() {
		out[s.name] = *s.m
	}
	return out
}
