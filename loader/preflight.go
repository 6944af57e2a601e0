package loader

import (
	"errors"
	"fmt"
	"os"
)

// ErrNotRoot, ErrNoBTF: conditions under which nothing can be attached, each
// worth one clear line to the user rather than a verifier dump.
var (
	ErrNotRoot = errors.New("must run as root (loads BPF programs and changes interfaces)")
	ErrNoBTF   = errors.New("kernel has no BTF")
)

// kernelBTF is the file whose presence proves the kernel has BTF; a variable
// so tests can point it elsewhere.
var kernelBTF = "/sys/kernel/btf/vmlinux"

// Preflight checks what attach needs before anything is touched.
func Preflight() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if path := os.Getenv("XDPROUTER_KERNEL_BTF"); path != "" {
		kernelBTF = path
	}
	if _, err := os.Stat(kernelBTF); err != nil {
		return fmt.Errorf("%w (%s missing): xdprouter needs CONFIG_DEBUG_INFO_BTF=y", ErrNoBTF, kernelBTF)
	}
	return nil
}
