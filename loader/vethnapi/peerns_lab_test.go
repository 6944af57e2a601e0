package vethnapi

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// noXDPFeatures answers as a kernel before 6.3 does.
func noXDPFeatures(int) (uint64, error) { return 0, ErrNoXDPFeatures }

// TestPeerInOtherNamespaceWithoutXDPFeatures: on a kernel that reports no
// xdp-features (Debian 12's 6.1), a veth whose peer is in another network
// namespace is told about from the peer itself, found by the namespace id
// the veth gives: GRO off and no XDP program is no NAPI, GRO on is NAPI.
// Before, it was Unknown, the loader kept the port on the redirect path,
// and with GRO off at the peer everything XDP sent there was lost (the
// kernel matrix's TestJumboVethPeerWithoutNAPI on 6.1).
func TestPeerInOtherNamespaceWithoutXDPFeatures(t *testing.T) {
	lab := netlab.ForTest(t)
	a, err := lab.AddNS("pa", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := lab.AddNS("pb", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Veth(a, "a0", b, "b0"); err != nil {
		t.Fatal(err)
	}
	inspectA0 := func() Port {
		t.Helper()
		var p Port
		err := lab.Do(a, func() error {
			l, err := netlink.LinkByName("a0")
			if err != nil {
				return err
			}
			p, err = inspect(l, nil, noXDPFeatures, peerElsewhere)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		gro  string
		want NAPI
	}{{"off", No}, {"on", Yes}, {"off", No}} {
		if err := lab.MustExec(b, []string{"ethtool", "-K", "b0", "gro", c.gro}); err != nil {
			t.Fatal(err)
		}
		p := inspectA0()
		if !p.PeerOtherNS || p.Peer != "b0" || p.NAPI != c.want || p.Source != "peer" || p.UnknownWhy != "" {
			t.Errorf("GRO %s on b0: %+v, want peer b0 in another namespace, NAPI %s from the peer", c.gro, p, c.want)
		}
	}
}

// TestPeerNamespaceOutOfSight: a peer whose namespace cannot be opened is
// Unknown, saying why.
func TestPeerNamespaceOutOfSight(t *testing.T) {
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "a0", Index: 7, ParentIndex: 3, NetNsID: 2}}
	p, err := inspect(l, nil, noXDPFeatures, func(int, int) (string, bool, string, error) {
		return "", false, "", errNoPeerNS
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.NAPI != Unknown || !p.PeerOtherNS || p.Peer != "" || p.UnknownWhy != errNoPeerNS.Error() {
		t.Errorf("%+v: want NAPI unknown because %v", p, errNoPeerNS)
	}
	if _, err := inspect(l, nil, func(int) (uint64, error) { return 0, errors.New("netlink says no") }, nil); err == nil {
		t.Error("a failing xdp-features read of a kernel that has them is not an error")
	}
}
