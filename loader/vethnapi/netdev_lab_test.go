package vethnapi

import (
	"net"
	"testing"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// TestXDPFeaturesVeth reads a veth's xdp-features through netlink: it
// takes multi-buffer frames (rx-sg) and redirects, and takes frames from
// XDP, single- and multi-buffer (ndo-xmit, ndo-xmit-sg), exactly while its
// peer has NAPI, here GRO.
func TestXDPFeaturesVeth(t *testing.T) {
	lab := netlab.ForTest(t)
	ns, err := lab.AddNS("f", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.MustExec(ns,
		[]string{"ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1"},
		[]string{"ip", "link", "set", "a0", "up"},
		[]string{"ip", "link", "set", "a1", "up"},
		[]string{"ethtool", "-K", "a1", "gro", "off"}); err != nil {
		t.Fatal(err)
	}
	check := func(wantXmit bool) {
		t.Helper()
		err := lab.Do(ns, func() error {
			ifc, err := net.InterfaceByName("a0")
			if err != nil {
				return err
			}
			f, err := XDPFeatures(ifc.Index)
			if err != nil {
				return err
			}
			if f&RxSG == 0 || f&Redirect == 0 || f&Basic == 0 {
				t.Errorf("a0 features %#x lack basic, redirect or rx-sg", f)
			}
			if got := f&NDOXmit != 0; got != wantXmit {
				t.Errorf("a0 features %#x: ndo-xmit %v, want %v", f, got, wantXmit)
			}
			if got := f&NDOXmitSG != 0; got != wantXmit {
				t.Errorf("a0 features %#x: ndo-xmit-sg %v, want %v", f, got, wantXmit)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check(false)
	if err := lab.MustExec(ns, []string{"ethtool", "-K", "a1", "gro", "on"}); err != nil {
		t.Fatal(err)
	}
	check(true)
}
