package loader

// NPTv6 on a tunnel netdev (npt entries whose interface is a vxlan or 6in4
// tunnel): XDP translates the inner packet on encapsulation (SNPT, what a
// LAN port sends into the tunnel) and decapsulation (DNPT, as if it
// arrived on the netdev), with the conntrack gate on and its tuple holding
// the inside addresses; the output is the models' (modelNPT, then the
// tunnel's model) and the slow path's: the kernel's vxlan netdev with
// xdprouter's TC programs on it, and for 6in4 the TC programs in turn.

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// tunnelNPTRules are an rfc6296 and a preserve-host rule, each inside
// prefix routed to the host behind lan0.
var tunnelNPTRules = []nptTestRule{
	{"rfc6296", "fd64:1:2:3::/64", "3fff:64:1:2::/64", NPTRFC6296, ""},
	{"preserve-host", "fd00:bbbb::/64", "3fff:aaaa::/64", NPTPreserveHost, ""},
}

// setTunnelNPT programs rules on the netdev tun, routes their inside
// prefixes to lan0's host and loads gated programs on lan0 and wan0.
func setTunnelNPT(t *testing.T, rl *routerLab, tun string) {
	t.Helper()
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Fatalf("needs the conntrack CLI (Debian package conntrack; make test installs it): %v", err)
	}
	var lr []NPTRule
	for _, r := range tunnelNPTRules {
		lr = append(lr, NPTRule{Interface: tun, Inside: netip.MustParsePrefix(r.inside),
			Outside: netip.MustParsePrefix(r.outside), Mode: r.mode})
		if err := rl.lab.MustExec(rl.ns, []string{"ip", "-6", "route", "replace", r.inside, "via", lanHost6, "dev", "lan0"}); err != nil {
			t.Fatal(err)
		}
	}
	d := &Dataplane{maps: *rl.maps}
	err := rl.lab.Do(rl.ns, func() error {
		if err := d.SyncNPT(lr); err != nil {
			return err
		}
		for name, role := range map[string]Role{"lan0": RoleLAN, "wan0": RoleWAN} {
			ifc, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			rl.progs[name] = loadTestProgramGate(t, ifc, role, CTGateOn, rl.maps)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// established makes conntrack hold the UDP flow src -> dst as established,
// so that the gate lets it through.
func established(t *testing.T, rl *routerLab, src, dst string) {
	t.Helper()
	if err := rl.lab.MustExec(rl.ns, []string{"conntrack", "-F"},
		append([]string{"conntrack"}, ctEntry("udp", src, dst, udpSport, udpDport, "-u", "SEEN_REPLY,ASSURED")...)); err != nil {
		t.Fatal(err)
	}
}

// attachTC attaches prog as the slow path's kind (tc_snpt, tc_dnpt) to
// the netdev in the lab for the test's time: by TCX, or on a kernel
// without it (before 6.6) as a clsact filter, as the loader would.
func (rl *routerLab) attachTC(t *testing.T, ifname, kind string, prog *ebpf.Program) {
	t.Helper()
	mode, err := ResolveTCMode()
	if err != nil {
		t.Fatal(err)
	}
	err = rl.lab.Do(rl.ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		var c io.Closer
		if mode == TCModeClsact {
			c, err = attachClsactUnpinned(kind, ifc.Index, prog)
		} else {
			hook := ebpf.AttachTCXIngress
			if clsactSlots[kind].egress {
				hook = ebpf.AttachTCXEgress
			}
			c, err = link.AttachTCX(link.TCXOptions{Interface: ifc.Index, Program: prog, Attach: hook})
		}
		if err != nil {
			return err
		}
		t.Cleanup(func() { c.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNPTOnVXLAN(t *testing.T) {
	// The slow path in both TC modes: clsact is what a kernel before 6.6
	// gets (the kernel matrix's 6.1 failed on TCX before).
	for _, mode := range []TCMode{TCModeAuto, TCModeClsact} {
		t.Run(string(mode), func(t *testing.T) {
			SetTCMode(mode)
			t.Cleanup(func() { SetTCMode(TCModeAuto) })
			testNPTOnVXLAN(t)
		})
	}
}

func testNPTOnVXLAN(t *testing.T) {
	rl := newVXLANRouterLab(t)
	setTunnelNPT(t, rl, "vx4")
	if err := rl.lab.MustExec(rl.ns, []string{"ethtool", "-K", "wan0", "tx", "off"}); err != nil {
		t.Fatal(err)
	}
	// The slow path: SNPT at the netdev's egress, before the netdev
	// encapsulates; DNPT at its ingress, after it decapsulated.
	rl.attachTC(t, "vx4", "tc_snpt", rl.tc.XdprTcSnpt)
	rl.attachTC(t, "vx4", "tc_dnpt", rl.tc.XdprTcDnpt)
	peer := rl.lab.NS("p")
	lanSock, wanSock := openLANWAN(t, rl, peer)
	vx4 := labVXLANByName("vx4")
	const far = "2001:db8:b40::9"
	for i, r := range tunnelNPTRules {
		inside, outside := r.host(false, "::2"), r.host(true, "::2")
		nonce := []byte{0x4e, 0x50, 0x54, byte(i), 0xe0, 0, 0, 0, 0, 0, 0, 1}
		t.Run("snpt into vxlan "+r.name, func(t *testing.T) {
			established(t, rl, inside, far)
			frame := udp6(t, inside, far)
			copy(frame[14+40+8:], nonce)
			frame = fixL4Checksum(t, frame)
			var delta []routerXdprCounterVal
			var fast []byte
			err := rl.lab.Do(rl.ns, func() error {
				var v uint32
				var err error
				v, fast, delta, err = rl.runOnce(frame, "lan0")
				if err == nil && v != xdpRedirect {
					t.Fatalf("XDP verdict %s, want XDP_REDIRECT", verdictName(v))
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := rl.checkCounters(delta, rl.counterIndex(t, "vxlan_encap_snpt"), len(frame)); err != nil {
				t.Error(err)
			}
			inner := bytes.Clone(frame)
			if !modelNPT(inner[14:], r.model(false), false) {
				t.Fatal("the model drops it")
			}
			sport, id := vxlanFields(fast)
			if want := vxlanEncapModel(inner, vx4, sport, id); !bytes.Equal(fast, want) {
				t.Errorf("XDP differs from the model: %s\nxdp   % x\nmodel % x", diffBytes(fast, want), fast, want)
			}
			if err := lanSock.send(frame); err != nil {
				t.Fatal(err)
			}
			slow := wanSock.recvMatching(nonce, time.Second)
			if slow == nil {
				t.Fatal("the kernel sent nothing out of wan0")
			}
			if err := verifyChecksums(slow); err != nil {
				t.Errorf("kernel: %v", err)
			}
			if !bytes.Equal(vxlanComparable(fast), vxlanComparable(slow)) {
				t.Errorf("XDP and the kernel's vxlan with tc_snpt differ: %s\nxdp    % x\nkernel % x",
					diffBytes(vxlanComparable(fast), vxlanComparable(slow)), fast, slow)
			}
		})
		t.Run("dnpt out of vxlan "+r.name, func(t *testing.T) {
			in := udp6(t, "2001:db8:b40::5", outside, overlay(vx4))
			copy(in[14+40+8:], nonce)
			in = fixL4Checksum(t, in)
			frame := vxlanFrame(in, "10.0.2.2", "10.0.2.1", 100, 4789, true)
			want := bytes.Clone(in)
			if !modelNPT(want[14:], r.model(true), true) {
				t.Fatal("the model drops it")
			}
			// Conntrack holds the inside address: a tuple with the
			// outside one finds no entry (pass_ct_new).
			established(t, rl, "2001:db8:b40::5", dstOf(want))
			want = expectForward(want, "lan0")
			fast, slow := fastAndSlow(t, rl, frame, "wan0", wanSock, lanSock, nonce)
			if !bytes.Equal(fast, want) {
				t.Errorf("XDP differs from the model: %s\nxdp   % x\nmodel % x", diffBytes(fast, want), fast, want)
			}
			if !bytes.Equal(fast, slow) {
				t.Errorf("XDP and the kernel with tc_dnpt differ: %s\nxdp    % x\nkernel % x", diffBytes(fast, slow), fast, slow)
			}
			err := rl.lab.Do(rl.ns, func() error {
				_, _, delta, err := rl.runOnce(frame, "wan0")
				if err != nil {
					return err
				}
				return rl.checkCounters(delta, rl.counterIndex(t, "vxlan_decap_dnpt"), len(frame))
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
}

func TestNPTOn6in4(t *testing.T) {
	rl, idx := newSixInFourLab(t)
	setTunnelNPT(t, rl, "s0")
	progs, err := loadTunnelPrograms(rl.maps)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() { progs.Close() })
	s0 := lab6in4[0]
	const far = "2001:db8:470::9"
	for _, r := range tunnelNPTRules {
		inside, outside := r.host(false, "::2"), r.host(true, "::2")
		t.Run("snpt into 6in4 "+r.name, func(t *testing.T) {
			established(t, rl, inside, far)
			frame := udp6(t, inside, far)
			want := bytes.Clone(frame)
			if !modelNPT(want[14:], r.model(false), false) {
				t.Fatal("the model drops it")
			}
			want = model6in4Encap(want, s0.remote, uint8(s0.ttl))
			err := rl.lab.Do(rl.ns, func() error {
				v, fast, delta, err := rl.runOnce(frame, "lan0")
				if err != nil {
					return err
				}
				if v != xdpRedirect || !bytes.Equal(fast, want) {
					t.Errorf("XDP: %s, %s", verdictName(v), diffBytes(fast, want))
				}
				if err := rl.checkCounters(delta, rl.counterIndex(t, "tun6in4_encap_snpt"), len(frame)); err != nil {
					t.Error(err)
				}
				// The slow path: the kernel forwards it into s0, whose
				// egress translates, then encapsulates.
				tv, mid, err := runTC(rl.tc.XdprTcSnpt, kernelForwarded6(frame), idx["s0"])
				if err != nil || tv != tcxNext {
					t.Fatalf("tc_snpt: verdict %d, %v", tv, err)
				}
				tv, slow, err := runTC(progs.XdprTunEgress, mid, idx["s0"])
				if err != nil || tv != tcActRedirect {
					t.Fatalf("tunegress: verdict %d, %v", tv, err)
				}
				slow = slow[:len(fast)]
				sameAfterMACs(t, fast, slow)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
		t.Run("dnpt out of 6in4 "+r.name, func(t *testing.T) {
			inner := udp6(t, broker6, outside, to(wanMAC), from(gwMAC))
			f := sixInFour(inner, s0.remote, local6in4.String(), 0)
			xl := bytes.Clone(f)
			if !modelNPT(xl[14+20:], r.model(true), true) {
				t.Fatal("the model drops it")
			}
			established(t, rl, broker6, dstOf(xl[20:]))
			want, ok := model6in4Decap(xl)
			if !ok {
				t.Fatal("the model drops it")
			}
			err := rl.lab.Do(rl.ns, func() error {
				v, fast, delta, err := rl.runOnce(f, "wan0")
				if err != nil {
					return err
				}
				if v != xdpRedirect || !bytes.Equal(fast, want) {
					t.Errorf("XDP: %s, %s", verdictName(v), diffBytes(fast, want))
				}
				if err := rl.checkCounters(delta, rl.counterIndex(t, "tun6in4_decap_dnpt"), len(f)); err != nil {
					t.Error(err)
				}
				// The slow path: the WAN's ingress decapsulates to s0,
				// whose ingress translates; the kernel forwards.
				tv, mid, err := runTC(progs.XdprTunIngress, f, rl.ifindex["wan0"])
				if err != nil || tv != tcActRedirect {
					t.Fatalf("tuningress: verdict %d, %v", tv, err)
				}
				tv, slow, err := runTC(rl.tc.XdprTcDnpt, mid, idx["s0"])
				if err != nil || tv != tcxNext {
					t.Fatalf("tc_dnpt: verdict %d, %v", tv, err)
				}
				slow = kernelForwarded6(slow[:len(fast)])
				sameAfterMACs(t, fast, slow)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// dstOf is the destination of the IPv6 frame f (as translated: rfc6296
// adjusts a word of the interface identifier).
func dstOf(f []byte) string {
	return netip.AddrFrom16([16]byte(f[14+24 : 14+40])).String()
}
