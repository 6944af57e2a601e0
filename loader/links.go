package loader

import (
	"errors"
	"fmt"
	"os"

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
