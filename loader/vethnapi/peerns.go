package vethnapi

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// errNoPeerNS: no namespace this process can open has the id.
var errNoPeerNS = errors.New("no network namespace with that id is named in /run/netns or held by a process in /proc")

// peerElsewhere reads the state of a veth's peer that lives in another
// network namespace, for kernels that report no xdp-features (before 6.3),
// where only the peer itself can say whether it has NAPI. The veth names
// that namespace by its id in this one (IFLA_LINK_NETNSID) and the peer
// by its ifindex there (IFLA_LINK). A namespace exists only while a
// process, a bind mount or an open descriptor holds it, so the named ones
// and every process's are the places to look; one held only by a mount
// elsewhere or a process of another PID namespace stays unknown.
func peerElsewhere(nsid, index int) (name string, gro bool, xdp string, err error) {
	ns, err := netNSByID(nsid)
	if err != nil {
		return "", false, "", fmt.Errorf("the peer's namespace (id %d here): %w", nsid, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return "", false, "", fmt.Errorf("netlink in the peer's namespace (id %d): %w", nsid, err)
	}
	defer h.Close()
	l, err := h.LinkByIndex(index)
	if err != nil {
		return "", false, "", fmt.Errorf("the peer, ifindex %d in namespace id %d: %w", index, nsid, err)
	}
	name = l.Attrs().Name
	fd, err := socketIn(ns)
	if err != nil {
		return "", false, "", fmt.Errorf("a socket in the peer's namespace (id %d): %w", nsid, err)
	}
	defer unix.Close(fd)
	if gro, err = ethtoolFlagOn(fd, name, ethtoolGGRO, 1); err != nil {
		return "", false, "", fmt.Errorf("GRO of the peer %s (namespace id %d): %w", name, nsid, err)
	}
	return name, gro, XDPMode(l.Attrs()), nil
}

// netNSByID opens the network namespace whose id in this one is nsid.
func netNSByID(nsid int) (netns.NsHandle, error) {
	named, _ := filepath.Glob("/run/netns/*")
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	seen := map[[2]uint64]bool{}
	for _, p := range append(named, procs...) {
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil {
			continue
		}
		key := [2]uint64{st.Dev, st.Ino}
		if seen[key] {
			continue
		}
		seen[key] = true
		ns, err := netns.GetFromPath(p)
		if err != nil {
			continue
		}
		if id, err := netlink.GetNetNsIdByFd(int(ns)); err == nil && id == nsid {
			return ns, nil
		}
		ns.Close()
	}
	return netns.None(), errNoPeerNS
}

// socketIn opens a datagram socket in ns: a socket keeps the namespace it
// was made in, so ethtool ioctls on it reach that namespace's devices. It
// switches namespace on a goroutine of its own, locked to its thread: if
// the way back fails, the goroutine ends locked and the runtime retires
// the thread instead of running others in the wrong namespace.
func socketIn(ns netns.NsHandle) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		here, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, err}
			return
		}
		defer here.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, err}
			return
		}
		fd, serr := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err := netns.Set(here); err != nil {
			if serr == nil {
				unix.Close(fd)
			}
			ch <- result{-1, fmt.Errorf("back to this namespace: %w", err)}
			return // still locked: the thread goes with the goroutine
		}
		runtime.UnlockOSThread()
		ch <- result{fd, serr}
	}()
	r := <-ch
	return r.fd, r.err
}
