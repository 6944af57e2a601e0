package loader

import (
	"bytes"
	"fmt"
	"testing"
)

// TestTunnelSlowPathDecapShort runs the TC ingress program (the slow
// path's decapsulation of what XDP passes to the kernel: new and
// unreplied flows under the conntrack gate, ICMP, ...) on ipip6 packets
// whose inner IPv4 packet is shorter than an IPv6 header: a UDP datagram
// of a few bytes (a keepalive, a one-byte NAT-T probe). Removing the
// outer header must leave the inner packet, whatever its length;
// bpf_skb_adjust_room refuses a shrink that leaves fewer bytes than the
// skb's current network header (40 for IPv6) unless told the new L3 is
// IPv4, and the program dropped such packets (tc_drop_error). Kernels
// before 6.3 know no such flag: the program variant for them (compat.h)
// must decapsulate the same packets, which this kernel runs too.
func TestTunnelSlowPathDecapShort(t *testing.T) {
	rl, _ := newTunnelRouterLab(t)
	this := ProbeKernel()
	for _, kern := range []struct {
		name string
		r    KernelReport
	}{
		{"this kernel", this},
		{"without " + featureDecapL3, without(this, featureDecapL3)},
	} {
		t.Run(kern.name, func(t *testing.T) { testDecapShort(t, rl, kern.r) })
	}
}

func testDecapShort(t *testing.T, rl *routerLab, kern KernelReport) {
	progs, err := loadTunnelProgramsFor(rl.maps, kern)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() { progs.Close() })
	lt := labTunnelByName("t0")
	for _, n := range []int{28, 29, 32, 39, 40, 41, 84, 1460} {
		t.Run(fmt.Sprintf("inner %d bytes", n), func(t *testing.T) {
			inner := udp4(t, "100.100.1.1", "10.0.1.2", totalLen(n))
			if len(inner) < 14+n {
				t.Fatalf("inner frame %d bytes, want %d", len(inner), 14+n)
			}
			frame := ipip6(inner, lt.remote, tunLocal.String(), 0x10)
			err := rl.lab.Do(rl.ns, func() error {
				v, out, err := runTC(progs.XdprTunIngress, frame, rl.ifindex["wan0"])
				if err != nil {
					return err
				}
				if v != tcActRedirect {
					t.Fatalf("TC verdict %d, want TC_ACT_REDIRECT (7) into the tunnel netdev", v)
				}
				if len(out) < 14+n || !bytes.Equal(out[12:14+n], inner[12:14+n]) {
					t.Errorf("decapsulated frame after the MAC addresses:\n got % x\nwant % x", out[12:min(len(out), 14+n)], inner[12:14+n])
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
