package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A guest row's kernel comes from Debian's archive by apt, through an apt
// configuration of the matrix's own (sources, lists and cache under the
// cache directory): the machine's sources stay as they are.
const sourcesList = `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main
`

// Kernel is one guest kernel, unpacked and ready to boot.
type Kernel struct {
	Package string // linux-image-6.1.0-57-amd64
	Version string // the package's version, 6.1.192-3
	Suite   string // where apt found it
	Release string // uname -r, 6.1.0-57-amd64
	Dir     string // the unpacked package
	VMLinux string // the uncompressed kernel (boots with PVH, see vmlinux.go)
	Modules string // Dir's lib/modules/<Release>, after depmod
}

type apt struct {
	dir string // the cache directory's apt/
}

func (a apt) opts() []string {
	return []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(a.dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=/nonexistent",
		"-o", "Dir::State::Lists=" + filepath.Join(a.dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(a.dir, "cache"),
		"-o", "Dir::State::status=/var/lib/dpkg/status",
		"-o", "Acquire::Languages=none",
		"-o", "Debug::NoLocking=1",
	}
}

func (a apt) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, tool, append(a.opts(), args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	return cmd
}

// update refreshes the lists. A failure (no network) is not fatal when
// lists from an earlier run are there: the kernels already unpacked can
// still boot.
func (a apt) update(ctx context.Context, log func(string, ...any)) error {
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(a.dir, "sources.list"), []byte(sourcesList), 0o644); err != nil {
		return err
	}
	out, err := a.command(ctx, "apt-get", "update", "-qq").CombinedOutput()
	if err == nil {
		return nil
	}
	if m, _ := filepath.Glob(filepath.Join(a.dir, "lists", "*_Packages")); len(m) > 0 {
		log("apt-get update failed, using the lists of an earlier run: %v: %s", err, lastLines(out, 3))
		return nil
	}
	return fmt.Errorf("apt-get update (%s): %w: %s", a.dir, err, lastLines(out, 5))
}

// newest returns the newest linux-image-amd64 of the first suite in suites
// that has one (apt-cache madison lists newest first), and the versioned
// image package that metapackage depends on.
func (a apt) newest(ctx context.Context, suites []string) (pkg, version, suite string, err error) {
	out, err := a.command(ctx, "apt-cache", "madison", "linux-image-amd64").Output()
	if err != nil {
		return "", "", "", fmt.Errorf("apt-cache madison linux-image-amd64: %w", err)
	}
	for _, want := range suites {
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Split(sc.Text(), "|")
			if len(f) != 3 {
				continue
			}
			src := strings.Fields(f[2]) // URL suite/component arch Packages
			if len(src) < 2 || strings.Split(src[1], "/")[0] != want {
				continue
			}
			version = strings.TrimSpace(f[1])
			show, err := a.command(ctx, "apt-cache", "show", "linux-image-amd64="+version).Output()
			if err != nil {
				return "", "", "", fmt.Errorf("apt-cache show linux-image-amd64=%s: %w", version, err)
			}
			for _, l := range strings.Split(string(show), "\n") {
				if dep, ok := strings.CutPrefix(l, "Depends: "); ok {
					// "linux-image-6.1.0-57-amd64 (= 6.1.192-3)"
					return strings.Fields(dep)[0], version, want, nil
				}
			}
			return "", "", "", fmt.Errorf("linux-image-amd64=%s depends on no image", version)
		}
	}
	return "", "", "", fmt.Errorf("no linux-image-amd64 in %s (apt lists under %s)", strings.Join(suites, ", "), a.dir)
}

// fetchKernel downloads and unpacks the newest kernel of suites into cache,
// once: a later run finds it unpacked (the .ready file) and only asks apt
// which version is newest.
func fetchKernel(ctx context.Context, a apt, cache string, suites []string) (*Kernel, error) {
	pkg, version, suite, err := a.newest(ctx, suites)
	if err != nil {
		return nil, err
	}
	k := &Kernel{Package: pkg, Version: version, Suite: suite, Dir: filepath.Join(cache, "kernels", pkg+"_"+version)}
	if _, err := os.Stat(filepath.Join(k.Dir, ".ready")); err != nil {
		if err := unpack(ctx, a, cache, k); err != nil {
			return nil, fmt.Errorf("%s %s: %w", pkg, version, err)
		}
	}
	if err := k.locate(); err != nil {
		return nil, err
	}
	return k, nil
}

func unpack(ctx context.Context, a apt, cache string, k *Kernel) error {
	debs := filepath.Join(cache, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	dl := a.command(ctx, "apt-get", "download", "-qq", k.Package+"="+k.Version)
	dl.Dir = debs
	if out, err := dl.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download: %w: %s", err, lastLines(out, 5))
	}
	deb, err := filepath.Glob(filepath.Join(debs, k.Package+"_*.deb"))
	if err != nil || len(deb) == 0 {
		return fmt.Errorf("apt-get download left no %s_*.deb in %s", k.Package, debs)
	}
	if err := os.RemoveAll(k.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(k.Dir, 0o755); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb[0], k.Dir).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w: %s", deb[0], err, out)
	}
	if err := k.locate(); err != nil {
		return err
	}
	// depmod writes modules.dep and friends, which the package leaves to
	// its postinst: the guest's modprobe needs them.
	if out, err := exec.CommandContext(ctx, "depmod", "-b", k.modBase(), k.Release).CombinedOutput(); err != nil {
		return fmt.Errorf("depmod -b %s %s: %w: %s", k.modBase(), k.Release, err, out)
	}
	if err := extractVMLinux(filepath.Join(k.Dir, "boot", "vmlinuz-"+k.Release), k.VMLinux); err != nil {
		return err
	}
	for _, d := range deb {
		os.Remove(d) // unpacked now; the .deb would only take room
	}
	return os.WriteFile(filepath.Join(k.Dir, ".ready"), nil, 0o644)
}

// locate finds the release and the modules directory: bookworm's packages
// ship lib/modules, trixie's usr/lib/modules.
func (k *Kernel) locate() error {
	m, _ := filepath.Glob(filepath.Join(k.Dir, "boot", "vmlinuz-*"))
	if len(m) != 1 {
		return fmt.Errorf("%s: want one boot/vmlinuz-*, found %d", k.Dir, len(m))
	}
	k.Release = strings.TrimPrefix(filepath.Base(m[0]), "vmlinuz-")
	k.VMLinux = filepath.Join(k.Dir, "vmlinux")
	for _, d := range []string{"lib", "usr/lib"} {
		p := filepath.Join(k.Dir, d, "modules", k.Release)
		if _, err := os.Stat(filepath.Join(p, "kernel")); err == nil {
			k.Modules = p
			return nil
		}
	}
	return fmt.Errorf("%s: no lib/modules/%s", k.Dir, k.Release)
}

// modBase is the root that depmod -b and modprobe -d take: the directory
// above lib/modules/<release>.
func (k *Kernel) modBase() string {
	return strings.TrimSuffix(k.Modules, "/"+filepath.Join("lib", "modules", k.Release))
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
