package loader

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// onOneCPU runs fn with the calling thread pinned to one CPU, so that test
// runs see the same per-CPU map entries (the lookup caches) one after the
// other: a thread that migrated between two runs would find another CPU's
// entry, and a test of what the cache remembers would flake.
func onOneCPU(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("get CPU affinity: %w", err)
	}
	cpu := -1
	for i := 0; i < 1024 && cpu < 0; i++ {
		if old.IsSet(i) {
			cpu = i
		}
	}
	if cpu < 0 {
		return fmt.Errorf("empty CPU affinity")
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	defer unix.SchedSetaffinity(0, &old)
	return fn()
}
