package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed guest/init
var initScript []byte

// bootModules are what init needs to reach the host's root: virtio-pci
// (a module in 6.1, built in later), 9p over virtio, and overlayfs.
var bootModules = []string{"virtio_pci", "9pnet_virtio", "9p", "overlay"}

// busyboxApplets are the commands init uses.
var busyboxApplets = []string{"sh", "mount", "umount", "insmod", "switch_root", "sed", "cat", "mkdir", "echo", "sleep"}

// buildInitramfs writes a gzipped newc cpio with busybox, init and the
// kernel's boot modules (decompressed, in modprobe's dependency order).
func buildInitramfs(ctx context.Context, k *Kernel, out string) error {
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("busybox (Debian package busybox-static): %w", err)
	}
	mods, err := moduleChain(ctx, k, bootModules)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	w := &cpioWriter{w: zw}
	for _, d := range []string{"bin", "dev", "modules", "proc", "sys"} {
		w.dir(d)
	}
	w.chardev("dev/console", 5, 1)
	w.file("init", 0o755, initScript)
	w.file("bin/busybox", 0o755, busybox)
	for _, a := range busyboxApplets {
		w.symlink("bin/"+a, "busybox")
	}
	var order []string
	for _, m := range mods {
		data, err := readModule(ctx, m)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(filepath.Base(m), ".xz"), ".zst"), ".gz")
		w.file("modules/"+name, 0o644, data)
		order = append(order, name)
	}
	w.file("modules/order", 0o644, []byte(strings.Join(order, "\n")+"\n"))
	w.trailer()
	if w.err != nil {
		return w.err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// moduleChain lists the module files that load names and their
// dependencies, each once, dependencies first (built-in ones are left out).
func moduleChain(ctx context.Context, k *Kernel, names []string) ([]string, error) {
	seen := map[string]bool{}
	var files []string
	for _, n := range names {
		out, err := exec.CommandContext(ctx, "modprobe", "-d", k.modBase(), "-S", k.Release, "--show-depends", n).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("modprobe --show-depends %s for %s: %w: %s", n, k.Release, err, out)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "insmod" && !seen[f[1]] {
				seen[f[1]] = true
				files = append(files, f[1])
			}
		}
	}
	return files, nil
}

// readModule returns a module decompressed, so that busybox insmod needs
// no decompressor of its own (6.12 ships .ko.xz, 6.1 plain .ko).
func readModule(ctx context.Context, path string) ([]byte, error) {
	var tool string
	switch filepath.Ext(path) {
	case ".xz":
		tool = "xz"
	case ".zst":
		tool = "zstd"
	case ".gz":
		tool = "gzip"
	default:
		return os.ReadFile(path)
	}
	out, err := exec.CommandContext(ctx, tool, "-dc", path).Output()
	if err != nil {
		return nil, fmt.Errorf("%s -dc %s: %w", tool, path, err)
	}
	return out, nil
}

// cpioWriter writes the "newc" format the kernel unpacks an initramfs
// from: a 110-byte ASCII header, the name, the data, each padded to 4.
type cpioWriter struct {
	w   io.Writer
	ino int
	err error
}

func (c *cpioWriter) entry(name string, mode uint32, data []byte, rmaj, rmin int) {
	if c.err != nil {
		return
	}
	c.ino++
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rmaj, rmin, len(name)+1, 0)
	var b bytes.Buffer
	b.WriteString(hdr)
	b.WriteString(name)
	b.WriteByte(0)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	b.Write(data)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	_, c.err = c.w.Write(b.Bytes())
}

func (c *cpioWriter) dir(name string)                         { c.entry(name, 0o040755, nil, 0, 0) }
func (c *cpioWriter) file(name string, perm uint32, b []byte) { c.entry(name, 0o100000|perm, b, 0, 0) }
func (c *cpioWriter) symlink(name, target string)             { c.entry(name, 0o120777, []byte(target), 0, 0) }
func (c *cpioWriter) chardev(name string, maj, min int)       { c.entry(name, 0o020600, nil, maj, min) }
func (c *cpioWriter) trailer()                                { c.entry("TRAILER!!!", 0, nil, 0, 0) }
