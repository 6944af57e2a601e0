package labkit

import (
	"fmt"
	"net/netip"
	"os/exec"
	"testing"

	"github.com/xdprouter/xdprouter/test/netlab"
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

// InjectTCP sends count TCP segments from namespace ns to dst through its
// kernel's routing (scapy's send): ACK set, no SYN, 100 octets of payload
// each, source ports from 40000 up, the shape of an established flow's
// data that conntrack never saw.
func InjectTCP(lab *netlab.Lab, ns string, dst netip.AddrPort, count int) error {
	script := fmt.Sprintf(`from scapy.all import IPv6, TCP, Raw, send
send([IPv6(dst=%q)/TCP(sport=40000+i, dport=%d, flags="A", seq=1000, ack=1000)/Raw(b"x"*100) for i in range(%d)], verbose=0)
`, dst.Addr().String(), dst.Port(), count)
	if _, err := lab.Exec(ns, Python, "-c", script); err != nil {
		return fmt.Errorf("inject %d TCP segments to %s from %s: %w", count, dst, ns, err)
	}
	return nil
}
