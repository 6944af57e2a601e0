package labkit

import (
	"io"
	"testing"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// CloseAtEnd closes lab (a netlab.Lab or a topology) when the test ends
// however it ends, and fails the test if that leaves something behind.
func CloseAtEnd(t testing.TB, lab io.Closer) {
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
}

// NewLab makes an empty namespace lab, removed when the test ends.
func NewLab(t testing.TB) *netlab.Lab {
	t.Helper()
	lab, err := netlab.New()
	if err != nil {
		t.Fatal(err)
	}
	CloseAtEnd(t, lab)
	return lab
}
