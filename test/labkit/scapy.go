package labkit

import (
	"os/exec"
	"testing"
)

// Python is the interpreter scapy scripts run with: Debian's, where `make
// test` installs python3-scapy (a python3 earlier in PATH, such as a
// pyenv one, may lack it).
const Python = "/usr/bin/python3"

// NeedScapy fails t when Debian's python3 cannot import scapy. A failure,
// not a skip: `make test` installs python3-scapy, so a missing one is a
// broken set-up, and a skipped hostile-peer test would pass for nothing.
func NeedScapy(t testing.TB) {
	t.Helper()
	if out, err := exec.Command(Python, "-c", "import scapy.all").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import scapy (make test installs python3-scapy): %v: %s", Python, err, out)
	}
}
