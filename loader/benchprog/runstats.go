package benchprog

import (
	"fmt"
	"io"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnableRunStats turns on the kernel's BPF run-time statistics until the
// returned Closer is closed. It is the file-descriptor form of
// kernel.bpf_stats_enabled: if the process dies the statistics go off again,
// so a killed benchmark cannot leave every BPF program on the host paying
// for them.
func EnableRunStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("BPF_ENABLE_STATS: %w", err)
	}
	return c, nil
}

// RunStats are a program's cumulative run count and run time, as the kernel
// keeps them while statistics are on.
type RunStats struct {
	ProgramID uint32
	Count     uint64
	Time      time.Duration
}

// Sub is s - o.
func (s RunStats) Sub(o RunStats) RunStats {
	return RunStats{ProgramID: s.ProgramID, Count: s.Count - o.Count, Time: s.Time - o.Time}
}

// NsPerRun is the mean run time in nanoseconds (0 without runs).
func (s RunStats) NsPerRun() float64 {
	if s.Count == 0 {
		return 0
	}
	return float64(s.Time.Nanoseconds()) / float64(s.Count)
}

// XDPRunStats reads the statistics of the XDP program attached to ifindex in
// the calling thread's namespace.
func XDPRunStats(ifindex int) (RunStats, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return RunStats{}, fmt.Errorf("link %d: %w", ifindex, err)
	}
	x := l.Attrs().Xdp
	if x == nil || !x.Attached || x.ProgId == 0 {
		return RunStats{}, fmt.Errorf("%s: no XDP program attached", l.Attrs().Name)
	}
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(x.ProgId))
	if err != nil {
		return RunStats{}, fmt.Errorf("%s: XDP program %d: %w", l.Attrs().Name, x.ProgId, err)
	}
	defer p.Close()
	st, err := p.Stats()
	if err != nil {
		return RunStats{}, fmt.Errorf("%s: XDP program %d stats: %w", l.Attrs().Name, x.ProgId, err)
	}
	return RunStats{ProgramID: x.ProgId, Count: st.RunCount, Time: st.Runtime}, nil
}
