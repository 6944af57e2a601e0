package loader

// The fast path and the slow path must put the same packet on the wire.
// This runs the same IPv4 packet through XDP (encapsulated from the LAN
// port) and through the TC egress program of the tunnel netdev (as the
// kernel hands it over after forwarding it: TTL already lowered), and
// compares everything from the ethertype on. The Ethernet addresses are
// not compared: bpf_redirect_neigh fills them after the program.

import (
	"bytes"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

const tcActRedirect = 7

// kernelForwarded is frame as the kernel's forward path hands it to the
// tunnel netdev: TTL lowered, header checksum updated.
func kernelForwarded(frame []byte) []byte {
	f := bytes.Clone(frame)
	f[14+8]--
	fixIPv4Header(f[14 : 14+20])
	return f
}

func TestTunnelFastPathEqualsSlowPath(t *testing.T) {
	rl, tunIdx := newTunnelRouterLab(t)
	progs, err := loadTunnelPrograms(rl.maps)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() { progs.Close() })
	syn := tcpSYN(t, "10.0.1.2", "100.100.1.1", false, []layers.TCPOption{mssOpt(1460), nop, nop})
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"udp", udp4(t, "10.0.1.2", "100.100.1.1")},
		{"tcp", udp4(t, "10.0.1.2", "100.100.1.1", tcp())},
		{"tos and ecn", udp4(t, "10.0.1.2", "100.100.1.1", ipv4(func(ip *layers.IPv4) { ip.TOS = 0x2e }))},
		{"icmp", udp4(t, "10.0.1.2", "100.100.1.1", noL4(), ipv4(func(ip *layers.IPv4) { ip.Protocol = layers.IPProtocolICMPv4 }))},
		{"syn with mss to clamp", syn},
		{"at the tunnel mtu", udp4(t, "10.0.1.2", "100.100.1.1", totalLen(1460))},
		{"longer prefix, other tunnel", udp4(t, "10.0.1.2", "100.100.5.7")},
	} {
		t.Run(c.name, func(t *testing.T) {
			tun := "t0"
			if bytes.Equal(c.frame[30:34], []byte{100, 100, 5, 7}) {
				tun = "t2"
			}
			err := rl.lab.Do(rl.ns, func() error {
				v, fast, _, err := rl.runOnce(c.frame, "lan0")
				if err != nil {
					return err
				}
				if v != xdpRedirect {
					t.Fatalf("XDP verdict %s, want XDP_REDIRECT", verdictName(v))
				}
				tv, slow, err := runTC(progs.XdprTunEgress, kernelForwarded(c.frame), tunIdx[tun])
				if err != nil {
					return err
				}
				if tv != tcActRedirect {
					t.Fatalf("TC verdict %d, want TC_ACT_REDIRECT (7)", tv)
				}
				sameAfterMACs(t, fast, slow)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// sameAfterMACs fails t when the fast path's frame and the slow path's
// differ after the MAC addresses (which each path takes from its own
// neighbour lookup).
func sameAfterMACs(t *testing.T, fast, slow []byte) {
	t.Helper()
	if !bytes.Equal(fast[12:], slow[12:]) {
		t.Errorf("fast and slow path differ after the MAC addresses: %s\nfast % x\nslow % x",
			diffBytes(fast[12:], slow[12:]), fast, slow)
	}
}

// TestTunnelSlowPathUnresolvedNextHop: the TC egress program hands the
// encapsulated packet to bpf_redirect_neigh, which resolves the outer next
// hop itself, so an unresolved one (t3's gateway has no neighbour entry)
// must not stop it. Kernels without BPF_FIB_LOOKUP_SKIP_NEIGH (before 6.3
// and 6.1.57) answer the route lookup NO_NEIGH there, with the egress
// filled in: their program variant (compat.h) must take that answer, on
// this kernel too.
func TestTunnelSlowPathUnresolvedNextHop(t *testing.T) {
	rl, tunIdx := newTunnelRouterLab(t)
	this := ProbeKernel()
	for _, kern := range []struct {
		name string
		r    KernelReport
	}{
		{"this kernel", this},
		{"without " + featureFibSkipNeigh, without(this, featureFibSkipNeigh)},
	} {
		t.Run(kern.name, func(t *testing.T) {
			progs, err := loadTunnelProgramsFor(rl.maps, kern.r)
			if err != nil {
				skipOrFail(t, err)
			}
			t.Cleanup(func() { progs.Close() })
			for _, tun := range []string{"t0", "t3"} {
				dst := map[string]string{"t0": "100.100.1.1", "t3": "100.103.1.1"}[tun]
				err := rl.lab.Do(rl.ns, func() error {
					v, out, err := runTC(progs.XdprTunEgress, kernelForwarded(udp4(t, "10.0.1.2", dst)), tunIdx[tun])
					if err != nil {
						return err
					}
					if v != tcActRedirect {
						t.Errorf("%s: TC verdict %d, want TC_ACT_REDIRECT (7)", tun, v)
					}
					if len(out) < 14+40 || out[12] != 0x86 || out[13] != 0xdd || out[14+6] != 4 {
						t.Errorf("%s: not an ipip6 frame: % x", tun, out[:min(len(out), 60)])
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
