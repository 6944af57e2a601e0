package loader

import (
	"errors"
	"testing"

	"github.com/xdprouter/xdprouter/loader/vethnapi"
)

// TestTransmitsMultiBuffer: which ports take multi-buffer frames from
// XDP. On a kernel without xdp-features (before 6.3, Debian 12's 6.1)
// xdp_do_redirect refuses every multi-buffer frame bound for a device, so
// no port does, a veth included: the kernel matrix's 6.1 row lost every
// jumbo TCP segment XDP redirected to a veth (rx drops at the receiving
// port) before a veth was taken out of this rule.
func TestTransmitsMultiBuffer(t *testing.T) {
	old := func(int) (uint64, error) { return 0, vethnapi.ErrNoXDPFeatures }
	feats := func(f uint64) func(int) (uint64, error) { return func(int) (uint64, error) { return f, nil } }
	broken := func(int) (uint64, error) { return 0, errors.New("netlink: no answer") }
	for _, c := range []struct {
		name     string
		kind     string
		features func(int) (uint64, error)
		want     bool
		why      string
	}{
		{"veth before 6.3", "veth", old, false, noMultiBufferRedirect},
		{"nic before 6.3", "ixgbe", old, false, noMultiBufferRedirect},
		{"veth", "veth", feats(vethnapi.NDOXmit | vethnapi.NDOXmitSG), true, "veth"},
		{"veth whose peer has no NAPI (the kernel path's business)", "veth", feats(0), true, "veth"},
		{"nic with ndo-xmit-sg", "", feats(vethnapi.NDOXmit | vethnapi.NDOXmitSG), true, "ndo-xmit-sg"},
		{"nic without", "", feats(vethnapi.NDOXmit), false, "the driver does not advertise ndo-xmit-sg"},
		{"nic, features unreadable", "", broken, false, "netlink: no answer"},
	} {
		got, why := transmitsMultiBuffer(c.kind, 3, c.features)
		if got != c.want || why != c.why {
			t.Errorf("%s: %v (%s), want %v (%s)", c.name, got, why, c.want, c.why)
		}
	}
}
