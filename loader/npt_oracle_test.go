package loader

// The kernel as oracle: the same packet goes once through the router
// namespace's kernel with ip6tables SNPT/DNPT rules and once through
// prog.Run of the XDP program and of the TC slow-path program, for many
// random prefixes (every length /7-/64, nibble or not) and addresses
// (0xffff words included). All must agree byte for byte.

import (
	"bytes"
	"encoding/binary"

	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const tcxNext = 0xffffffff // TCX_NEXT (-1) as the program's u32 return

// rawSock is an AF_PACKET socket on one interface of a namespace.
type rawSock struct {
	fd      int
	ifindex int
}

func openRaw(rl *routerLab, ns, ifname string) (*rawSock, error) {
	var s rawSock
	err := rl.lab.Do(ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval(int64(20 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		s = rawSock{fd: fd, ifindex: ifc.Index}
		return nil
	})
	return &s, err
}

// openLANWAN opens the raw sockets on the peer's ends of lan0 and wan0,
// closed when the test ends.
func openLANWAN(t testing.TB, rl *routerLab, peer string) (lan, wan *rawSock) {
	t.Helper()
	for _, c := range []struct {
		s   **rawSock
		dev string
	}{{&lan, "h-lan0"}, {&wan, "h-wan0"}} {
		s, err := openRaw(rl, peer, c.dev)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(s.fd) })
		*c.s = s
	}
	return lan, wan
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *rawSock) send(frame []byte) error {
	return unix.Sendto(s.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: s.ifindex, Protocol: htons(unix.ETH_P_IPV6)})
}

// recvMatching returns the first frame received within d that contains
// nonce, or nil.
func (s *rawSock) recvMatching(nonce []byte, d time.Duration) []byte {
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		if err != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if bytes.Contains(buf[:n], nonce) {
			return bytes.Clone(buf[:n])
		}
	}
	return nil
}

// randPrefix returns a random /bits prefix inside base.
func randPrefix(rng *rand.Rand, base netip.Prefix, bits int) netip.Prefix {
	a := base.Addr().As16()
	for i := base.Bits(); i < bits; i++ {
		if rng.IntN(2) == 1 {
			a[i/8] |= 0x80 >> (i % 8)
		}
	}
	return netip.PrefixFrom(netip.AddrFrom16(a), bits).Masked()
}

// randHost puts random bits after p's prefix; some words become 0xffff
// to reach the RFC 6296 corner, and now and then all of them.
func randHost(rng *rand.Rand, p netip.Prefix) [16]byte {
	a := p.Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		if rng.IntN(2) == 1 {
			a[i/8] |= 0x80 >> (i % 8)
		}
	}
	switch rng.IntN(8) {
	case 0: // the first words after the prefix
		for w := 3; w < 6; w++ {
			if w*16 >= p.Bits() {
				a[2*w], a[2*w+1] = 0xff, 0xff
			}
		}
	case 1: // every word after the prefix: unmappable beyond /48
		for w := 3; w < 8; w++ {
			if w*16 >= p.Bits() {
				a[2*w], a[2*w+1] = 0xff, 0xff
			}
		}
	}
	return a
}

func TestNPTKernelOracle(t *testing.T) {
	if _, err := exec.LookPath("ip6tables"); err != nil {
		t.Skipf("the oracle needs ip6tables (Debian package iptables, installed by `make test`): %v", err)
	}
	rl := newRouterLab(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("XDPR_ORACLE_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (XDPR_ORACLE_SEED=%d reproduces this run)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6296))

	peer := rl.lab.NS("p")
	lanSock, wanSock := openLANWAN(t, rl, peer)

	insideBase, outsideBase := netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("3000::/4")
	lengths := []int{48, 64, 56, 60, 7, 37, 49, 63}
	for len(lengths) < 20 {
		lengths = append(lengths, 7+rng.IntN(58))
	}
	var compared, dropped int
	for _, bits := range lengths {
		inside, outside := randPrefix(rng, insideBase, bits), randPrefix(rng, outsideBase, bits)
		rule := nptTestRule{name: fmt.Sprintf("%v<->%v", inside, outside), inside: inside.String(), outside: outside.String(), mode: NPTRFC6296}
		rl.setNPT(t, []nptTestRule{rule})
		if err := rl.lab.MustExec(rl.ns,
			[]string{"ip6tables", "-t", "mangle", "-F"},
			[]string{"ip6tables", "-t", "mangle", "-A", "POSTROUTING", "-o", "wan0", "-s", inside.String(),
				"-j", "SNPT", "--src-pfx", inside.String(), "--dst-pfx", outside.String()},
			[]string{"ip6tables", "-t", "mangle", "-A", "PREROUTING", "-i", "wan0", "-d", outside.String(),
				"-j", "DNPT", "--src-pfx", outside.String(), "--dst-pfx", inside.String()},
		); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 16; i++ {
			for _, dnpt := range []bool{false, true} {
				nonce := make([]byte, 12)
				for j := range nonce {
					nonce[j] = byte(rng.Uint32())
				}
				remote := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 14: byte(rng.Uint32()), 15: byte(rng.Uint32()) | 1})
				var frame []byte
				var in, out *rawSock
				if dnpt {
					dst := netip.AddrFrom16(randHost(rng, outside))
					frame = udp6(t, remote.String(), dst.String(), onWAN(), payload(12+rng.IntN(64)))
					in, out = wanSock, lanSock
				} else {
					src := netip.AddrFrom16(randHost(rng, inside))
					frame = udp6(t, src.String(), remote.String(), payload(12+rng.IntN(64)))
					in, out = lanSock, wanSock
				}
				copy(frame[14+48:], nonce)
				binary.BigEndian.PutUint16(frame[14+40+6:], 0)
				binary.BigEndian.PutUint16(frame[14+40+6:], rfc1071(udpPseudo(frame[14:])))

				ingress, egress := "lan0", "wan0"
				if dnpt {
					ingress, egress = "wan0", "lan0"
				}
				var xdpVerdict uint32
				var xdpOut, tcOut []byte
				var tcVerdict uint32
				err := rl.lab.Do(rl.ns, func() error {
					var err error
					xdpVerdict, xdpOut, _, err = rl.runOnce(frame, ingress)
					if err != nil {
						return err
					}
					// The slow path: DNPT sees the frame as it arrives,
					// SNPT after the kernel forwarded it untranslated.
					if dnpt {
						tcVerdict, tcOut, err = runTC(rl.tc.XdprTcDnpt, frame, rl.ifindex["wan0"])
					} else {
						tcVerdict, tcOut, err = runTC(rl.tc.XdprTcSnpt, expectForward(frame, "wan0"), rl.ifindex["wan0"])
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := in.send(frame); err != nil {
					t.Fatal(err)
				}
				kernel := out.recvMatching(nonce, 300*time.Millisecond)
				name := fmt.Sprintf("%s dnpt=%v frame %x", rule.name, dnpt, frame[14:14+40])
				if kernel == nil {
					// The kernel drops what it cannot map (RFC 6296 5.2).
					if xdpVerdict != xdpDrop || tcVerdict != 2 {
						t.Errorf("%s: kernel dropped it; XDP %s, TC %d", name, verdictName(xdpVerdict), int32(tcVerdict))
					}
					dropped++
					continue
				}
				compared++
				if xdpVerdict != xdpRedirect {
					t.Errorf("%s: XDP %s, kernel forwarded", name, verdictName(xdpVerdict))
				} else if !bytes.Equal(xdpOut, kernel) {
					t.Errorf("%s: XDP differs from the kernel: %s", name, diffBytes(xdpOut, kernel))
				}
				if tcVerdict != tcxNext {
					t.Errorf("%s: TC verdict %d", name, int32(tcVerdict))
				} else {
					if dnpt {
						tcOut = expectForward(tcOut, egress)
					}
					if !bytes.Equal(tcOut, kernel) {
						t.Errorf("%s: TC slow path differs from the kernel: %s", name, diffBytes(tcOut, kernel))
					}
				}
				if t.Failed() {
					t.FailNow()
				}
			}
		}
	}
	_ = rl.lab.MustExec(rl.ns, []string{"ip6tables", "-t", "mangle", "-F"})
	t.Logf("%d packets identical through kernel ip6tables, XDP and TC; %d dropped by all three (unmappable)", compared, dropped)
	if compared < 500 {
		t.Errorf("only %d packets compared", compared)
	}
}

// udpPseudo returns the IPv6 pseudo header and UDP segment of l3 with the
// checksum field as it is, for recomputing the UDP checksum.
func udpPseudo(l3 []byte) []byte {
	n := int(binary.BigEndian.Uint16(l3[4:6]))
	p := append([]byte{}, l3[8:40]...)
	p = binary.BigEndian.AppendUint32(p, uint32(n))
	p = append(p, 0, 0, 0, 17)
	return append(p, l3[40:40+n]...)
}
