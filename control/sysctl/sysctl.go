// Package sysctl reads and writes the kernel's sysctls through /proc/sys,
// in the network namespace of the calling thread, and names them as
// sysctl(8) does. The daemon (which sets what a router needs) and the
// doctor (which reports what is missing) share it.
package sysctl

import (
	"os"
	"path/filepath"
	"strings"
)

// Get reads the sysctl at path below /proc/sys ("net/ipv4/ip_forward"),
// without the trailing newline.
func Get(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", path))
	return strings.TrimSpace(string(b)), err
}

// Set writes value to the sysctl at path below /proc/sys.
func Set(path, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", path), []byte(value+"\n"), 0o644)
}

// Name is path as sysctl(8) names it: dots between the parts, a dot inside
// a part (an interface name such as eth0.100) written as a slash.
func Name(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ".", "/")
	}
	return strings.Join(parts, ".")
}
