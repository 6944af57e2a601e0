package loader

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// jumboAttachLab is a namespace with the veth pair a0/a1 (queues as
// asked on each end) and a bpffs for the Dataplane.
func jumboAttachLab(t *testing.T, setup ...[]string) (*netlab.Lab, string, *Dataplane) {
	t.Helper()
	requirePrivileged(t)
	lab, err := netlab.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	ns, err := lab.AddNS("j", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.MustExec(ns, setup...); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return lab, ns, d
}

// TestAttachJumboVeth: attach on a veth of MTU 9001 (an AWS VPC's) in
// native mode, where a single-buffer program is refused with ERANGE; the
// port becomes a multi-buffer egress and attach says so.
func TestAttachJumboVeth(t *testing.T) {
	lab, ns, d := jumboAttachLab(t,
		[]string{"ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1"},
		[]string{"ip", "link", "set", "a0", "mtu", "9001", "up"},
		[]string{"ip", "link", "set", "a1", "mtu", "9001", "up"},
		[]string{"ethtool", "-K", "a1", "gro", "on"})
	err := lab.Do(ns, func() error {
		for _, mode := range []Mode{ModeNative, ModeAuto} {
			res, err := d.Attach("a0", RoleWAN, mode, CTGateOff)
			if err != nil {
				t.Fatalf("attach in %s mode at MTU 9001: %v", mode, err)
			}
			t.Logf("%s: %+v", mode, res)
			if res.Mode != string(ModeNative) {
				t.Errorf("mode %s, want native", res.Mode)
			}
			if !strings.Contains(res.Jumbo, "MTU 9001") || !strings.Contains(res.Jumbo, "multi-buffer in XDP") {
				t.Errorf("attach says %q about the MTU", res.Jumbo)
			}
			var v uint32
			if err := d.maps.XdprTxPortsMb.Lookup(uint32(res.Ifindex), &v); err != nil {
				t.Errorf("a0 not in xdpr_tx_ports_mb: %v", err)
			}
		}
		return d.DetachAll()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAttachAutoFallsBackToGeneric: a driver with native XDP that refuses
// the attachment (here a veth with fewer RX queues than its peer has TX
// queues; on EC2, ENA above MTU 3498) gets generic mode in auto mode, with
// a warning, as the kernel's own forwarding works there; native mode
// still fails.
func TestAttachAutoFallsBackToGeneric(t *testing.T) {
	lab, ns, d := jumboAttachLab(t,
		[]string{"ip", "link", "add", "a0", "numtxqueues", "1", "numrxqueues", "1", "type", "veth",
			"peer", "name", "a1", "numtxqueues", "2", "numrxqueues", "2"},
		[]string{"ip", "link", "set", "a0", "up"},
		[]string{"ip", "link", "set", "a1", "up"})
	err := lab.Do(ns, func() error {
		if _, err := d.Attach("a0", RoleLAN, ModeNative, CTGateOff); err == nil {
			t.Skip("this kernel attaches native XDP to a veth with fewer RX queues than its peer's TX queues: no refusal to fall back from")
		}
		res, err := d.Attach("a0", RoleLAN, ModeAuto, CTGateOff)
		if err != nil {
			t.Fatalf("auto attach: %v", err)
		}
		t.Logf("%+v", res)
		if res.Mode != string(ModeGeneric) || !strings.Contains(res.Warning, "native XDP refused") {
			t.Errorf("auto attach: mode %s, warning %q; want generic, saying native was refused", res.Mode, res.Warning)
		}
		return d.DetachAll()
	})
	if err != nil {
		t.Fatal(err)
	}
}
