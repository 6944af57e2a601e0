package loader

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultBPFFS is where maps and links are pinned unless --bpffs or
// XDPROUTER_BPFFS say otherwise.
const DefaultBPFFS = "/sys/fs/bpf/xdprouter"

func isBPFFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.BPF_FS_MAGIC
}

// existingAncestor returns path or its closest ancestor that exists.
func existingAncestor(path string) string {
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || p == "/" {
			return p
		}
	}
}

// ErrForeignMountNS is returned (wrapped in *ForeignMountNSError) when dir
// had no bpffs and this process runs in a mount namespace of its own, as
// under `ip netns exec`: a bpffs mounted here would vanish when the process
// exits, and the links pinned in it would detach.
var ErrForeignMountNS = errors.New("running in a private mount namespace")

// ForeignMountNSError tells the caller that a bpffs has been mounted at Dir
// in the mount namespace of process ParentPID, where it persists, and that
// the command must run there to see it: the CLI re-executes itself with
// NSEnterArgs, keeping its network namespace.
type ForeignMountNSError struct {
	Dir       string
	ParentPID int
}

func (e *ForeignMountNSError) Error() string {
	return fmt.Sprintf("bpffs mounted at %s in the mount namespace of process %d; run there to use it", e.Dir, e.ParentPID)
}

// NSEnterArgs are the nsenter options that enter the parent's mount
// namespace. -r keeps its root: entering a mount namespace otherwise resets
// the root to the namespace's, escaping a chroot.
func (e *ForeignMountNSError) NSEnterArgs() []string {
	return []string{"-t", strconv.Itoa(e.ParentPID), "-m", "-r"}
}

func (e *ForeignMountNSError) Unwrap() error { return ErrForeignMountNS }

// parentMountNS returns the parent's mount namespace when it differs from
// ours: `ip netns exec` (and unshare -m) exec the command in a namespace
// made for it alone.
//
// It fails when it cannot tell: reading the parent's namespace needs ptrace
// access to it, which a process with fewer capabilities than its parent
// lacks (systemd's CapabilityBoundingSet=, setpriv). Guessing "not
// private" there would mount a bpffs that vanishes with the process, and
// the links pinned in it with them.
func parentMountNS() (int, bool, error) {
	ppid := os.Getppid()
	var self, par unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &self); err != nil {
		return 0, false, fmt.Errorf("read own mount namespace: %w", err)
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/mnt", ppid), &par); err != nil {
		return 0, false, fmt.Errorf("read the mount namespace of parent process %d: %w", ppid, err)
	}
	return ppid, self.Ino != par.Ino || self.Dev != par.Dev, nil
}

// parentRoot is the path through which the parent's view of dir is seen.
func parentRoot(ppid int, dir string) string {
	return fmt.Sprintf("/proc/%d/root%s", ppid, dir)
}

// ensureBPFFS makes dir exist on a bpffs, mounting one when none is there.
// The mount must outlive this process, since pins are what keep links
// attached: see ForeignMountNSError.
func ensureBPFFS(dir string) error {
	dir = filepath.Clean(dir)
	if isBPFFS(existingAncestor(dir)) {
		return mkdirPins(dir)
	}
	mountPoint := dir
	if strings.HasPrefix(dir+"/", "/sys/fs/bpf/") {
		mountPoint = "/sys/fs/bpf" // the conventional place, as systemd mounts it
	}
	ppid, private, err := parentMountNS()
	if err != nil {
		return fmt.Errorf("no bpffs at %s, and it is unsafe to mount one: %w (mount it first: mount -t bpf bpf %s)", dir, err, mountPoint)
	}
	if private {
		fe := &ForeignMountNSError{Dir: mountPoint, ParentPID: ppid}
		if !isBPFFS(existingAncestor(parentRoot(ppid, dir))) {
			script := fmt.Sprintf("mkdir -p '%s' && mount -t bpf -o mode=0700 bpf '%s'", mountPoint, mountPoint)
			args := append(fe.NSEnterArgs(), "--", "sh", "-c", script)
			if out, err := exec.Command("nsenter", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("mount bpffs on %s in the parent mount namespace: %w: %s",
					mountPoint, err, strings.TrimSpace(string(out)))
			}
		}
		return fe
	}
	if err := os.MkdirAll(mountPoint, 0o700); err != nil {
		return fmt.Errorf("create bpffs mount point %s: %w", mountPoint, err)
	}
	if err := unix.Mount("bpf", mountPoint, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs on %s: %w", mountPoint, err)
	}
	return mkdirPins(dir)
}

func mkdirPins(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, linksDir), 0o700); err != nil {
		return fmt.Errorf("create pin directory %s: %w", dir, err)
	}
	return nil
}

// removePinDir removes dir once it holds nothing, and unmounts it first when
// it is a bpffs mount of its own (one that attach created).
func removePinDir(dir string) error {
	_ = os.Remove(filepath.Join(dir, linksDir))
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		// bpf_preload's iterators appear in every fresh bpffs root.
		if n := e.Name(); n != "maps.debug" && n != "progs.debug" {
			return nil
		}
	}
	if isBPFFS(dir) && !isBPFFS(filepath.Dir(dir)) {
		if err := unix.Unmount(dir, 0); err != nil {
			return fmt.Errorf("unmount bpffs %s: %w", dir, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// Purge removes every pin under dir, links and maps, whatever version of
// xdprouter made them, then the directory (unmounting a bpffs of its own).
// It needs no map to load, so `detach --all` works even when the pinned
// maps no longer match this version's.
func Purge(dir string) error {
	if !isBPFFS(existingAncestor(dir)) {
		return nil
	}
	links, err := os.ReadDir(filepath.Join(dir, linksDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range links {
		if err := removePin(dir, filepath.Join(dir, linksDir, e.Name())); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if n := e.Name(); e.IsDir() || n == "maps.debug" || n == "progs.debug" {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove pin %s: %w", e.Name(), err)
		}
	}
	return removePinDir(dir)
}
