package loader

import (
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// A VLAN device is refused with the reason and the lower link to use; other
// kinds pass. (This host has no 8021q; the kernel matrix's TestVLAN shows
// the refusal on Debian's kernels, where attaching used to lose the
// VLAN's forwarded traffic.)
func TestUnsupportedKind(t *testing.T) {
	vlan := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "eth0.100", ParentIndex: 1}, VlanId: 100}
	err := unsupportedKind("eth0.100", vlan)
	if err == nil || !strings.Contains(err.Error(), "802.1Q VLAN device (id 100 on lo)") || !strings.Contains(err.Error(), "attach lo") {
		t.Errorf("vlan: %v", err)
	}
	for _, l := range []netlink.Link{&netlink.Veth{}, &netlink.Device{}, &netlink.Bridge{}, &netlink.Vxlan{}} {
		if err := unsupportedKind("x", l); err != nil {
			t.Errorf("%T refused: %v", l, err)
		}
	}
}
