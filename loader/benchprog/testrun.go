package benchprog

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// progRunAttr is the BPF_PROG_TEST_RUN part of union bpf_attr. cilium/ebpf's
// Program.Run hides the kernel's duration and Program.Benchmark takes no
// context (so no ingress ifindex, and no fib lookup), hence the raw syscall.
type progRunAttr struct {
	ProgFD      uint32
	Retval      uint32
	DataSizeIn  uint32
	DataSizeOut uint32
	DataIn      uint64
	DataOut     uint64
	Repeat      uint32
	Duration    uint32
	CtxSizeIn   uint32
	CtxSizeOut  uint32
	CtxIn       uint64
	CtxOut      uint64
	Flags       uint32
	CPU         uint32
	BatchSize   uint32
	_           uint32
}

// TestRun runs the program with file descriptor fd repeat times on frame (not
// live: the frame is not sent anywhere and, between runs, not restored),
// bound to ingress ifindex in the calling thread's namespace.
func TestRun(fd int, frame []byte, ifindex int, repeat uint32) (TestResult, error) {
	ctx := xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}
	in := append([]byte(nil), frame...)
	out := make([]byte, len(frame)+MaxFrame) // room for a program that grows it
	attr := progRunAttr{
		ProgFD:      uint32(fd),
		DataSizeIn:  uint32(len(in)),
		DataSizeOut: uint32(len(out)),
		DataIn:      uint64(uintptr(unsafe.Pointer(&in[0]))),
		DataOut:     uint64(uintptr(unsafe.Pointer(&out[0]))),
		Repeat:      repeat,
		CtxSizeIn:   uint32(unsafe.Sizeof(ctx)),
		CtxIn:       uint64(uintptr(unsafe.Pointer(&ctx))),
	}
	interrupted := 0
	for {
		_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN,
			uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(in)
		runtime.KeepAlive(out)
		runtime.KeepAlive(&ctx)
		if errno == unix.EINTR {
			// A signal cut the run short; its figures are partial. Again.
			attr.DataSizeOut = uint32(len(out))
			interrupted++
			continue
		}
		if errno != 0 {
			return TestResult{}, fmt.Errorf("BPF_PROG_TEST_RUN of program fd %d on ifindex %d: %w", fd, ifindex, errno)
		}
		if int(attr.DataSizeOut) > len(out) {
			return TestResult{}, errors.New("BPF_PROG_TEST_RUN: output larger than its buffer")
		}
		r := TestResult{
			Verdict:      attr.Retval,
			KernelPerRun: time.Duration(attr.Duration),
			Repeat:       repeat,
			Out:          out[:attr.DataSizeOut],
			Interrupted:  interrupted,
		}
		return r, nil
	}
}
