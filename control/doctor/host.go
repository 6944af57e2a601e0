package doctor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"github.com/xdprouter/xdprouter/control/sysctl"
	"github.com/xdprouter/xdprouter/loader"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Host is the System of the calling thread's network namespace (links,
// sysctls under /proc/sys) and of the host's /proc.
type Host struct{}

var _ System = Host{}

func (Host) Sysctl(path string) (string, error) { return sysctl.Get(path) }

func (Host) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

func (Host) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

func (Host) Kernel() loader.KernelReport { return loader.ProbeKernel() }

func (Host) IsBPFFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.BPF_FS_MAGIC
}

func (Host) Processes() ([]Process, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue // gone
		}
		p := Process{PID: pid, Comm: strings.TrimSpace(string(comm))}
		if cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil {
			p.Cmdline = strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
		}
		out = append(out, p)
	}
	return out, nil
}

func xdpMode(a *netlink.LinkAttrs) string {
	if a.Xdp == nil || (!a.Xdp.Attached && a.Xdp.ProgId == 0) {
		return XDPNone
	}
	switch a.Xdp.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		return XDPNative
	case nl.XDP_ATTACHED_SKB:
		return XDPGeneric
	case nl.XDP_ATTACHED_HW:
		return XDPOffload
	}
	return "attached"
}

func (Host) Links() ([]Link, error) {
	nls, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	byIndex := map[int]netlink.Link{}
	for _, l := range nls {
		byIndex[l.Attrs().Index] = l
	}
	var out []Link
	for _, nlk := range nls {
		a := nlk.Attrs()
		l := Link{
			Name: a.Name, Index: a.Index, Type: nlk.Type(), MTU: a.MTU,
			Ether: len(a.HardwareAddr) == 6 && a.Name != "lo",
			XDP:   xdpMode(a),
		}
		l.GRO, _ = ethtoolFlag(a.Name, ethtoolGGRO, 1)
		l.LRO, _ = ethtoolFlag(a.Name, ethtoolGFLAGS, ethFlagLRO)
		if l.Type == "veth" {
			if a.NetNsID >= 0 {
				l.PeerOtherNS = true
			} else if p, ok := byIndex[a.ParentIndex]; ok {
				l.PeerName = p.Attrs().Name
				l.PeerXDP = xdpMode(p.Attrs())
				l.PeerGRO, _ = ethtoolFlag(l.PeerName, ethtoolGGRO, 1)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// Legacy ethtool ioctls (linux/ethtool.h): enough for two flags.
const (
	ethtoolGFLAGS = 0x25
	ethtoolGGRO   = 0x2b
	ethFlagLRO    = 1 << 15
)

// ethtoolFlag runs the ETHTOOL_G* command cmd (struct ethtool_value) on
// ifname and reports whether data&mask is set.
func ethtoolFlag(ifname string, cmd, mask uint32) (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	val := struct{ cmd, data uint32 }{cmd: cmd}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(&val)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return false, errno
	}
	return val.data&mask != 0, nil
}
