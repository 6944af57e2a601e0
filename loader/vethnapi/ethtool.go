package vethnapi

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Legacy ethtool ioctls (linux/ethtool.h): enough for two flags.
const (
	ethtoolGFLAGS = 0x25
	ethtoolGGRO   = 0x2b
	ethFlagLRO    = 1 << 15
)

// GRO says whether generic receive offload is on for ifname.
func GRO(ifname string) (bool, error) { return ethtoolFlag(ifname, ethtoolGGRO, 1) }

// LRO says whether large receive offload is on for ifname.
func LRO(ifname string) (bool, error) { return ethtoolFlag(ifname, ethtoolGFLAGS, ethFlagLRO) }

// ethtoolFlag runs the ETHTOOL_G* command cmd (struct ethtool_value) on
// ifname and reports whether data&mask is set.
func ethtoolFlag(ifname string, cmd, mask uint32) (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	return ethtoolFlagOn(fd, ifname, cmd, mask)
}

// ethtoolFlagOn is ethtoolFlag through the socket fd, whose namespace is
// where ifname is looked up.
func ethtoolFlagOn(fd int, ifname string, cmd, mask uint32) (bool, error) {
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
