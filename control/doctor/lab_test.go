package doctor

import (
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/loader/vethnapi"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// TestDoctorLabVethPeer: in a namespace with a veth pair whose peer has no
// GRO and no XDP program, the doctor reads the peer through netlink and
// ethtool and warns with the fix; with GRO on there is nothing to say. A
// veth whose peer is in another namespace is judged by what the kernel
// says of the veth (its xdp-features): nothing while the peer has GRO, a
// warning once it has not. A jumbo MTU on a veth is fine (the program is
// multi-buffer), and the veth's XDP features are read through netlink.
func TestDoctorLabVethPeer(t *testing.T) {
	lab := netlab.ForTest(t)
	ns, err := lab.AddNS("r", true)
	if err != nil {
		t.Fatal(err)
	}
	other, err := lab.AddNS("o", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Veth(ns, "va", ns, "vb"); err != nil {
		t.Fatal(err)
	}
	if err := lab.Veth(ns, "vc", other, "vd"); err != nil {
		t.Fatal(err)
	}
	if err := lab.MustExec(ns, []string{"ethtool", "-K", "vb", "gro", "off"}); err != nil {
		t.Fatal(err)
	}
	run := func() Report {
		var r Report
		if err := lab.Do(ns, func() error {
			r = Run(Host{}, Options{Interfaces: []string{"va", "vc"}, BPFFS: lab.RunDir()})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Log("\n" + r.String())
		return r
	}
	r := run()
	fs := find(r, "veth-peer", "va")
	if len(fs) != 1 || fs[0].Severity != Warn || !strings.HasPrefix(fs[0].Fix, "ethtool -K vb gro on") {
		t.Fatalf("peer without GRO/XDP: %+v", fs)
	}
	if fs := find(r, "veth-peer", "vc"); len(fs) != 0 {
		t.Errorf("peer in another namespace with GRO: %+v", fs)
	}
	if fs := find(r, "sysctl", "net.ipv6.conf.all.forwarding"); len(fs) != 1 || fs[0].Severity != OK {
		t.Errorf("forwarding (set in the lab's namespace): %+v", fs)
	}

	if err := lab.MustExec(ns, []string{"ethtool", "-K", "vb", "gro", "on"}, []string{"ip", "link", "set", "va", "mtu", "9000"}); err != nil {
		t.Fatal(err)
	}
	if err := lab.MustExec(other, []string{"ethtool", "-K", "vd", "gro", "off"}); err != nil {
		t.Fatal(err)
	}
	r = run()
	if fs := find(r, "veth-peer", "va"); len(fs) != 0 {
		t.Errorf("peer with GRO, no XDP: %+v", fs)
	}
	if fs := find(r, "veth-peer", "vc"); len(fs) != 1 || fs[0].Severity != Warn ||
		!strings.HasPrefix(fs[0].Fix, "in the peer's namespace: ethtool -K PEER gro on") {
		t.Errorf("peer in another namespace without GRO: %+v", fs)
	}
	if fs := find(r, "mtu", "va"); len(fs) != 0 {
		t.Errorf("MTU 9000 on a veth: %+v, want nothing", fs)
	}
	if err := lab.Do(ns, func() error {
		links, err := Host{}.Links()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Name == "va" && (l.XDPFeaturesErr != "" || l.XDPFeatures&vethnapi.RxSG == 0) {
				t.Errorf("va's XDP features: %#x %q, want rx-sg", l.XDPFeatures, l.XDPFeaturesErr)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
