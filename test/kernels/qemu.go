package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Accel is how qemu runs the guests, and why.
type Accel struct {
	Name   string // "kvm" or "tcg"
	Reason string
}

// chooseAccel picks KVM where it can run a stock kernel and TCG (qemu's
// own emulation, several times slower) where it cannot. "KVM_CREATE_VM
// succeeds" is not enough: a host whose KVM is PVM (the kvm_pvm module, a
// shadow-paging KVM for machines without VMX/SVM) boots only kernels built
// as PVM guests; Debian's kernels die in its instruction emulator
// ("KVM internal error. Suberror: 1 ... emulation failure", seen on lock
// cmpxchg16b, xrstor and int3 within the first two minutes of boot).
// XDPR_QEMU_ACCEL=kvm|tcg overrides the choice.
func chooseAccel() Accel {
	if a := os.Getenv("XDPR_QEMU_ACCEL"); a != "" {
		return Accel{a, "XDPR_QEMU_ACCEL=" + a}
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return Accel{"tcg", fmt.Sprintf("/dev/kvm is not usable (%v)", err)}
	}
	f.Close()
	hw := false
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if _, err := os.Stat("/sys/module/" + m); err == nil {
			hw = true
		}
	}
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil && !hw {
		return Accel{"tcg", "/dev/kvm is PVM (kvm_pvm), which boots only PVM guest kernels: Debian's stop in its instruction emulator (\"KVM internal error ... emulation failure\")"}
	}
	return Accel{"kvm", "/dev/kvm opens and KVM is hardware-assisted"}
}

// Boot is one guest run.
type Boot struct {
	Kernel    *Kernel
	Initramfs string
	RunScript string // guest/run.sh, as the guest sees it (the host's path)
	Out       string // shared writable directory: plan in, results out
	Console   string // serial console log
	Timeout   time.Duration
	Accel     Accel
	CPUs      int
	MemMB     int
}

// ErrBootFailed: the guest ended without writing its "done" file.
var ErrBootFailed = errors.New("guest run did not finish")

// Run boots the guest and waits for it to power off or for the timeout.
// The error says why a run did not finish, with the console's last lines.
func (b *Boot) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.Timeout)
	defer cancel()
	// Under TCG an x86-64-v2 model runs the tests faster than "max" (TestDataplane
	// 17 s against 26 s): glibc and the kernel pick simpler code paths
	// than the AVX-512 ones qemu would emulate.
	cpu := "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16"
	if b.Accel.Name == "kvm" {
		cpu = "host"
	}
	if c := os.Getenv("XDPR_QEMU_CPU"); c != "" {
		cpu = c
	}
	args := []string{
		"-machine", "q35", "-cpu", cpu,
		"-smp", fmt.Sprint(b.CPUs), "-m", fmt.Sprint(b.MemMB),
		"-nodefaults", "-display", "none", "-no-reboot",
		"-serial", "file:" + b.Console,
		"-kernel", b.Kernel.VMLinux, "-initrd", b.Initramfs,
		"-append", strings.Join([]string{
			"console=ttyS0", "panic=-1", "quiet", "loglevel=4",
			"xdpr_run=" + b.RunScript, "xdpr_out=" + b.Out, "xdpr_kmod=" + b.Kernel.Modules,
		}, " "),
		// The host's root, read-only; the guest puts a tmpfs overlay on it.
		"-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path=" + b.Out + ",mount_tag=xdprout,security_model=none,multidevs=remap",
	}
	if b.Accel.Name == "tcg" {
		args = append(args, "-accel", "tcg,thread=multi") // one host thread per guest CPU
	} else {
		args = append(args, "-accel", b.Accel.Name)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	err := cmd.Run()
	if _, statErr := os.Stat(filepath.Join(b.Out, "done")); statErr == nil {
		return nil
	}
	why := "qemu exited"
	switch {
	case ctx.Err() != nil:
		why = fmt.Sprintf("timed out after %v", b.Timeout)
	case err != nil:
		why = fmt.Sprintf("qemu: %v", err)
	}
	return fmt.Errorf("%w: %s; qemu stderr: %s; console (%s) ends: %s", ErrBootFailed, why,
		lastLines(stderr.Bytes(), 4), b.Console, consoleTail(b.Console, filepath.Join(b.Out, "guest.log")))
}

// consoleTail is the last lines of the console and of the run script's log,
// which together say how far the guest got.
func consoleTail(paths ...string) string {
	var parts []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		data = bytes.ReplaceAll(data, []byte("\r"), nil)
		parts = append(parts, lastLines(data, 6))
	}
	if len(parts) == 0 {
		return "(empty)"
	}
	return strings.Join(parts, " / ")
}
