package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuTicks are one CPU's cumulative times from /proc/stat, in clock ticks.
type cpuTicks struct {
	total, steal, idle uint64
}

// readCPUTicks reads the line of cpu (-1: the all-CPU line) from /proc/stat.
// The file is not namespaced, so it describes the machine whichever network
// namespace the caller is in.
func readCPUTicks(cpu int) (cpuTicks, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuTicks{}, err
	}
	defer f.Close()
	want := "cpu"
	if cpu >= 0 {
		want = "cpu" + strconv.Itoa(cpu)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 9 || fields[0] != want {
			continue
		}
		var t cpuTicks
		// user nice system idle iowait irq softirq steal [guest guest_nice]:
		// guest time is already counted in user, so only the first eight add up.
		for i, s := range fields[1:9] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return cpuTicks{}, fmt.Errorf("/proc/stat %s field %d: %w", want, i+1, err)
			}
			t.total += v
			switch i {
			case 3, 4: // idle, iowait
				t.idle += v
			case 7:
				t.steal = v
			}
		}
		return t, nil
	}
	if err := sc.Err(); err != nil {
		return cpuTicks{}, err
	}
	return cpuTicks{}, fmt.Errorf("/proc/stat has no %s line", want)
}

// stealShare is the share of the CPU's time between a and b that the
// hypervisor gave to someone else: time the run was not running although
// it wanted to, which no ratio can correct for afterwards.
func stealShare(a, b cpuTicks) float64 {
	if b.total <= a.total {
		return 0
	}
	return float64(b.steal-a.steal) / float64(b.total-a.total)
}

// busyShare is the share of the CPU's time between a and b it was busy
// (neither idle nor stolen): for circulating frames, whose loop runs in that
// CPU's softirq, near 1 means the loop kept the CPU busy all through.
func busyShare(a, b cpuTicks) float64 {
	if b.total <= a.total {
		return 0
	}
	return 1 - float64((b.idle-a.idle)+(b.steal-a.steal))/float64(b.total-a.total)
}
