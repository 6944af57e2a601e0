package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// unpinLink removes a link pin; when it held the last reference the kernel
// detaches the program.
func unpinLink(pin string) error {
	l, err := link.LoadPinnedLink(pin, nil)
	switch {
	case err == nil:
		defer l.Close()
		if err := l.Unpin(); err != nil {
			return fmt.Errorf("unpin %s: %w", pin, err)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		// A pin we cannot load as a link is still ours to remove.
		if rmErr := os.Remove(pin); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", pin, rmErr)
		}
	}
	return nil
}

// removePin removes one entry of links/: a link's pin (the kernel
// detaches the program with the last reference), a clsact filter's record
// (the filter goes too) or the record of a clsact qdisc xdprouter added
// (see clsact.go).
func removePin(dir, pin string) error {
	if kind, ifindex, ok := splitPin(filepath.Base(pin)); ok && kind == qdiscMarker {
		return releaseQdisc(dir, ifindex)
	}
	if isProgramPin(pin) {
		return removeClsact(dir, pin)
	}
	return unpinLink(pin)
}

// attachTC attaches prog as kind's slow-path program (a key of
// clsactSlots) on ifindex, through TCX or clsact as ResolveTCMode says.
// An attachment left in the other mode gives way first.
func (d *Dataplane) attachTC(kind string, ifindex int, prog *ebpf.Program) (string, error) {
	mode, err := ResolveTCMode()
	if err != nil {
		return "", err
	}
	pin := d.pinPath(kind, ifindex)
	if mode == TCModeClsact {
		if !isProgramPin(pin) {
			if err := unpinLink(pin); err != nil {
				return "", err
			}
		}
		return d.attachClsact(kind, ifindex, prog)
	}
	if isProgramPin(pin) {
		if err := removeClsact(d.dir, pin); err != nil {
			return "", err
		}
	}
	hook := ebpf.AttachTCXIngress
	if clsactSlots[kind].egress {
		hook = ebpf.AttachTCXEgress
	}
	var anchor link.Anchor
	if clsactSlots[kind].head {
		anchor = link.Head()
	}
	return d.attachTCXAt(kind, ifindex, prog, hook, anchor)
}

// pinnedProgram is the program a pin of links/ stands for: its link's, or
// for a clsact record, what the filter runs now.
func pinnedProgram(pin string) (ebpf.ProgramID, error) {
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		defer l.Close()
		info, err := l.Info()
		if err != nil {
			return 0, fmt.Errorf("link info of %s: %w", pin, err)
		}
		return info.Program, nil
	}
	kind, ifindex, ok := splitPin(filepath.Base(pin))
	if !ok || !isProgramPin(pin) {
		return 0, fmt.Errorf("%s: %w", pin, os.ErrNotExist)
	}
	id, err := clsactProgram(kind, ifindex)
	if err == nil && id == 0 {
		err = fmt.Errorf("%s: no tc filter runs it: %w", pin, os.ErrNotExist)
	}
	return id, err
}

// attachTCX attaches prog to ifindex at the TCX hook (ebpf.AttachTCXIngress
// or AttachTCXEgress) through a link pinned as <kind>_<ifindex>. Like the
// XDP attach it is idempotent: an existing link keeps running the same
// program ("unchanged") or gets the new one atomically ("replaced program").
func (d *Dataplane) attachTCX(kind string, ifindex int, prog *ebpf.Program, hook ebpf.AttachType) (string, error) {
	return d.attachTCXAt(kind, ifindex, prog, hook, nil)
}

// attachTCXAt is attachTCX with the place of a new link among the hook's
// programs (nil: last).
func (d *Dataplane) attachTCXAt(kind string, ifindex int, prog *ebpf.Program, hook ebpf.AttachType, anchor link.Anchor) (string, error) {
	pin := d.pinPath(kind, ifindex)
	if old, err := link.LoadPinnedLink(pin, nil); err == nil {
		defer old.Close()
		info, err := old.Info()
		if err == nil && info.TCX() != nil && int(info.TCX().Ifindex) == ifindex {
			same, err := sameProgram(info.Program, prog)
			if err != nil {
				return "", err
			}
			if same {
				return "unchanged", nil
			}
			if err := old.Update(prog); err != nil {
				return "", fmt.Errorf("replace tcx program %s: %w", pin, err)
			}
			return "replaced program", nil
		}
		// Defunct (the interface went away): start over.
		_ = old.Unpin()
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("load pinned link %s: %w", pin, err)
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: hook, Anchor: anchor})
	if err != nil {
		return "", fmt.Errorf("attach tcx %s to ifindex %d: %w", kind, ifindex, err)
	}
	defer l.Close()
	if err := l.Pin(pin); err != nil {
		return "", fmt.Errorf("pin %s: %w", pin, err)
	}
	return "attached", nil
}
