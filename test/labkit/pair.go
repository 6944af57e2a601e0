package labkit

import (
	"testing"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// End is one namespace of a PairLab: its short name, its end of the veth,
// and whether it forwards.
type End struct {
	NS, If     string
	Forwarding bool
}

// PairLab makes two namespaces joined by one veth, removed when the test
// ends however it ends, and returns the lab and the two namespaces' names.
func PairLab(t testing.TB, a, b End) (*netlab.Lab, string, string) {
	t.Helper()
	lab := NewLab(t)
	nsA, err := lab.AddNS(a.NS, a.Forwarding)
	if err != nil {
		t.Fatal(err)
	}
	nsB, err := lab.AddNS(b.NS, b.Forwarding)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Veth(nsA, a.If, nsB, b.If); err != nil {
		t.Fatal(err)
	}
	return lab, nsA, nsB
}
