package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xdprouter/xdprouter/control/sysctl"
	"github.com/xdprouter/xdprouter/loader"
	"github.com/xdprouter/xdprouter/loader/vethnapi"

	"github.com/vishvananda/netlink"
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
			XDP:   vethnapi.XDPMode(a),
		}
		if f, err := vethnapi.XDPFeatures(a.Index); err == nil {
			l.XDPFeatures = f
		} else {
			l.XDPFeaturesErr = err.Error()
		}
		l.GRO, _ = vethnapi.GRO(a.Name)
		l.LRO, _ = vethnapi.LRO(a.Name)
		if l.Type == "veth" {
			// The same inspection as attach's, which decides how the
			// router transmits through the port.
			p, err := vethnapi.Inspect(nlk, func(index int) (netlink.Link, error) {
				if pl, ok := byIndex[index]; ok {
					return pl, nil
				}
				return nil, fmt.Errorf("no link %d", index)
			})
			if err != nil {
				return nil, err
			}
			l.PeerName, l.PeerGRO, l.PeerXDP, l.PeerOtherNS, l.PeerNAPI = p.Peer, p.PeerGRO, p.PeerXDP, p.PeerOtherNS, string(p.NAPI)
		}
		out = append(out, l)
	}
	return out, nil
}
