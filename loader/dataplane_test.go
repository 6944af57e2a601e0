package loader

// Data-plane tests: table-driven BPF_PROG_TEST_RUN of xdpr_main inside a
// network namespace whose routes and neighbours feed bpf_fib_lookup.
// Expected frames are computed here, independently of the data plane: MACs
// from the topology, TTL / hop limit minus one, and the IPv4 header
// checksum recomputed from scratch (RFC 1071), never incrementally.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// labIface is one router interface; the far end of its veth sits in a
// peer namespace and is known to the router as a static neighbour.
type labIface struct {
	name     string
	mac      string
	peerMAC  string // the neighbour behind it (nud permanent)
	v4, v6   string // router addresses
	nb4, nb6 string // neighbour addresses
	mtu      int
	attached bool // in xdpr_ifaces and xdpr_tx_ports
	noFwd    bool // forwarding sysctls off on this interface
}

var labIfaces = []labIface{
	{name: "lan0", mac: "02:00:00:00:01:01", peerMAC: "02:00:00:00:01:02",
		v4: "10.0.1.1/24", v6: "2001:db8:1::1/64", nb4: "10.0.1.2", nb6: "2001:db8:1::2", attached: true},
	{name: "wan0", mac: "02:00:00:00:02:01", peerMAC: "02:00:00:00:02:02",
		v4: "10.0.2.1/24", v6: "2001:db8:2::1/64", nb4: "10.0.2.2", nb6: "2001:db8:2::2", attached: true},
	// Up and routed, but not attached: in neither map.
	{name: "ext0", mac: "02:00:00:00:03:01", peerMAC: "02:00:00:00:03:02",
		v4: "10.0.3.1/24", v6: "2001:db8:3::1/64", nb4: "10.0.3.2", nb6: "2001:db8:3::2"},
	{name: "small0", mac: "02:00:00:00:04:01", peerMAC: "02:00:00:00:04:02",
		v4: "10.0.4.1/24", v6: "2001:db8:4::1/64", nb4: "10.0.4.2", nb6: "2001:db8:4::2", mtu: 1280, attached: true},
	{name: "nofwd0", mac: "02:00:00:00:05:01", peerMAC: "02:00:00:00:05:02",
		v4: "10.0.5.1/24", v6: "2001:db8:5::1/64", nb4: "10.0.5.2", nb6: "2001:db8:5::2", attached: true, noFwd: true},
}

var labRoutes = [][]string{
	{"ip", "route", "add", "198.51.100.0/24", "via", "10.0.2.2", "dev", "wan0"},
	{"ip", "-6", "route", "add", "2001:db8:100::/48", "via", "2001:db8:2::2", "dev", "wan0"},
	// Gateways that are never resolved: no neighbour entry.
	{"ip", "route", "add", "203.0.113.0/24", "via", "10.0.2.3", "dev", "wan0"},
	{"ip", "-6", "route", "add", "2001:db8:200::/48", "via", "2001:db8:2::3", "dev", "wan0"},
	{"ip", "route", "add", "unreachable", "192.0.2.0/24"},
	{"ip", "-6", "route", "add", "unreachable", "2001:db8:dead::/48"},
	{"ip", "route", "add", "blackhole", "100.64.0.0/10"},
	{"ip", "-6", "route", "add", "prohibit", "2001:db8:beef::/48"},
}

func labIfaceByName(name string) labIface {
	for _, li := range labIfaces {
		if li.name == name {
			return li
		}
	}
	panic("no lab interface " + name)
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// routerLab is a router namespace with the data plane's maps filled for
// its attached interfaces.
type routerLab struct {
	lab     *netlab.Lab
	ns      string
	maps    *routerMaps
	progs   map[string]*ebpf.Program // per attached interface, as Attach loads them
	tc      *tcPrograms              // the NPT slow path, over the same maps
	ifindex map[string]int
	names   []string // counter names, by index
}

func newRouterLab(t testing.TB) *routerLab {
	t.Helper()
	requirePrivileged(t)
	for _, tool := range []string{"ip", "ethtool", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			// As root the test is meant to run: `make test` installs the
			// tools, so a missing one is a set-up bug, not a reason to skip.
			t.Fatalf("data-plane test needs %s (make test installs it): %v", tool, err)
		}
	}
	names, err := CounterNames()
	if err != nil {
		t.Fatal(err)
	}
	lab, err := netlab.New()
	if err != nil {
		t.Fatalf("cannot build a network namespace lab: %v", err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	r, err := lab.AddNS("r", true)
	if err != nil {
		t.Fatal(err)
	}
	p, err := lab.AddNS("p", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, li := range labIfaces {
		peer := "h-" + li.name
		if err := lab.Veth(r, li.name, p, peer); err != nil {
			t.Fatal(err)
		}
		cmds := [][]string{
			{"ip", "link", "set", li.name, "address", li.mac},
			{"ip", "addr", "add", li.v4, "dev", li.name},
			{"ip", "-6", "addr", "add", li.v6, "dev", li.name, "nodad"},
			{"ip", "neigh", "replace", li.nb4, "lladdr", li.peerMAC, "dev", li.name, "nud", "permanent"},
			{"ip", "-6", "neigh", "replace", li.nb6, "lladdr", li.peerMAC, "dev", li.name, "nud", "permanent"},
		}
		if li.mtu != 0 {
			cmds = append(cmds, []string{"ip", "link", "set", li.name, "mtu", fmt.Sprint(li.mtu)})
		}
		if li.noFwd {
			cmds = append(cmds,
				[]string{"sysctl", "-qw", "net.ipv4.conf." + li.name + ".forwarding=0"},
				[]string{"sysctl", "-qw", "net.ipv6.conf." + li.name + ".forwarding=0"})
		}
		if err := lab.MustExec(r, cmds...); err != nil {
			t.Fatal(err)
		}
		if err := lab.MustExec(p, []string{"ip", "link", "set", peer, "address", li.peerMAC}); err != nil {
			t.Fatal(err)
		}
	}
	if err := lab.MustExec(r, labRoutes...); err != nil {
		t.Fatal(err)
	}

	rl := &routerLab{lab: lab, ns: r, maps: loadTestMaps(t), progs: map[string]*ebpf.Program{}, ifindex: map[string]int{}, names: names}
	tc, err := loadTCPrograms(rl.maps, TCModeAuto)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() { tc.Close() })
	rl.tc = tc
	// Devmap entries resolve the ifindex in the caller's namespace, so the
	// maps are filled from inside the router namespace.
	err = lab.Do(r, func() error {
		for _, li := range labIfaces {
			ifc, err := net.InterfaceByName(li.name)
			if err != nil {
				return err
			}
			if ifc.HardwareAddr.String() != li.mac {
				return fmt.Errorf("%s has MAC %s, want %s", li.name, ifc.HardwareAddr, li.mac)
			}
			rl.ifindex[li.name] = ifc.Index
			if !li.attached {
				continue
			}
			// wan0 faces the ISP: NPT translates there.
			role := RoleLAN
			if li.name == "wan0" {
				role = RoleWAN
			}
			rl.progs[li.name] = loadTestProgram(t, ifc, role, rl.maps)
			v := ifaceEntry(ifc, role, routerXdprXdpModeXDPR_MODE_NATIVE, CTGateOff)
			if err := rl.maps.XdprIfaces.Put(uint32(ifc.Index), v); err != nil {
				return fmt.Errorf("xdpr_ifaces[%s]: %w", li.name, err)
			}
			if _, _, err := setTxPorts(rl.maps, ifc.Index, TXXDP); err != nil {
				return fmt.Errorf("%s: %w", li.name, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rl
}

func (rl *routerLab) counterIndex(t testing.TB, name string) int {
	t.Helper()
	for i, n := range rl.names {
		if n == name {
			return i
		}
	}
	t.Fatalf("no counter named %q in %v", name, rl.names)
	return -1
}

// runOnce runs the program on frame arriving on ingress. It must be called
// on a thread inside the router namespace. It returns the verdict, the
// output frame and the counter deltas.
func (rl *routerLab) runOnce(frame []byte, ingress string) (uint32, []byte, []routerXdprCounterVal, error) {
	before, err := counterSnapshot(rl.maps.XdprCounters)
	if err != nil {
		return 0, nil, nil, err
	}
	// A frame arriving on an interface without its own program runs
	// through lan0's, which must count it as not its own.
	prog, ok := rl.progs[ingress]
	if !ok {
		prog = rl.progs["lan0"]
	}
	verdict, out, err := runXDP(prog, frame, rl.ifindex[ingress])
	if err != nil {
		return 0, nil, nil, fmt.Errorf("prog.Run: %w", err)
	}
	after, err := counterSnapshot(rl.maps.XdprCounters)
	if err != nil {
		return 0, nil, nil, err
	}
	for i := range after {
		after[i].Packets -= before[i].Packets
		after[i].Bytes -= before[i].Bytes
	}
	return verdict, out, after, nil
}

// checkCounters reports unless counter want (and no other) went up by one
// packet of n bytes.
func (rl *routerLab) checkCounters(delta []routerXdprCounterVal, want, n int) error {
	var errs []string
	for i, d := range delta {
		switch {
		case i == want && (d.Packets != 1 || d.Bytes != uint64(n)):
			errs = append(errs, fmt.Sprintf("%s +%d packets +%d bytes, want +1 packet +%d bytes", rl.names[i], d.Packets, d.Bytes, n))
		case i != want && (d.Packets != 0 || d.Bytes != 0):
			errs = append(errs, fmt.Sprintf("%s +%d packets (want unchanged)", rl.names[i], d.Packets))
		}
	}
	if errs != nil {
		return fmt.Errorf("counters: %s", strings.Join(errs, "; "))
	}
	return nil
}

// dpCase is one data-plane test case.
type dpCase struct {
	name    string
	ingress string // router interface the frame arrives on
	frame   []byte
	verdict uint32
	counter string // from CounterNames()
	egress  string // XDP_REDIRECT only: interface the frame leaves by
}

func TestDataplane(t *testing.T) {
	rl := newRouterLab(t)
	cases := dataplaneCases(t)
	if len(cases) < 15 {
		t.Fatalf("only %d cases", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			want := c.frame
			if c.verdict == xdpRedirect {
				// The test's own frames must be valid before the data
				// plane sees them.
				if err := verifyChecksums(c.frame); err != nil {
					t.Fatalf("input frame: %v", err)
				}
				want = expectForward(c.frame, c.egress)
			}
			wantCounter := rl.counterIndex(t, c.counter)
			err := rl.lab.Do(rl.ns, func() error {
				verdict, out, delta, err := rl.runOnce(c.frame, c.ingress)
				if err != nil {
					return err
				}
				if verdict != c.verdict {
					t.Errorf("verdict %s, want %s", verdictName(verdict), verdictName(c.verdict))
				}
				if !bytes.Equal(out, want) {
					t.Errorf("output frame differs: %s", diffBytes(out, want))
				}
				if verdict == xdpRedirect {
					if err := verifyChecksums(out); err != nil {
						t.Errorf("output frame: %v", err)
					}
				}
				if err := rl.checkCounters(delta, wantCounter, len(c.frame)); err != nil {
					t.Error(err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDataplaneTruncations runs every case's frame cut at every length from
// an Ethernet header up to the full frame: the program must pass or
// redirect, a passed frame must be untouched, a redirected one must be
// complete and correctly rewritten, and exactly one counter must count it.
func TestDataplaneTruncations(t *testing.T) {
	rl := newRouterLab(t)
	for _, c := range dataplaneCases(t) {
		t.Run(c.name, func(t *testing.T) {
			full := 14 + l3Len(c.frame)
			err := rl.lab.Do(rl.ns, func() error {
				failures := 0
				for n := 14; n <= len(c.frame) && failures < 5; n++ {
					in := c.frame[:n]
					verdict, out, delta, err := rl.runOnce(in, c.ingress)
					if err != nil {
						return fmt.Errorf("length %d: %w", n, err)
					}
					var problems []string
					switch verdict {
					case xdpPass:
						if !bytes.Equal(out, in) {
							problems = append(problems, "passed frame was modified: "+diffBytes(out, in))
						}
					case xdpRedirect:
						if c.verdict != xdpRedirect {
							problems = append(problems, "redirected, but the whole frame is passed")
						} else if n < full {
							problems = append(problems, fmt.Sprintf("redirected though the packet needs %d bytes", full))
						} else if want := expectForward(in, c.egress); !bytes.Equal(out, want) {
							problems = append(problems, "redirected frame: "+diffBytes(out, want))
						}
					default:
						problems = append(problems, "verdict "+verdictName(verdict))
					}
					total := 0
					for i, d := range delta {
						total += int(d.Packets)
						if d.Packets == 1 && d.Bytes != uint64(n) {
							problems = append(problems, fmt.Sprintf("%s counted %d bytes", rl.names[i], d.Bytes))
						}
					}
					if total != 1 {
						problems = append(problems, fmt.Sprintf("%d counter increments, want exactly 1", total))
					}
					if problems != nil {
						failures++
						t.Errorf("length %d/%d: %s", n, len(c.frame), strings.Join(problems, "; "))
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// --- expected output, computed independently of the data plane ---

// expectForward is what a router sends out of egress for frame: the
// neighbour's MAC as destination, egress's MAC as source, TTL or hop limit
// lowered by one and the IPv4 header checksum computed anew. Nothing else
// changes.
func expectForward(frame []byte, egress string) []byte {
	li := labIfaceByName(egress)
	out := bytes.Clone(frame)
	copy(out[0:6], mustMAC(li.peerMAC))
	copy(out[6:12], mustMAC(li.mac))
	switch binary.BigEndian.Uint16(out[12:14]) {
	case uint16(layers.EthernetTypeIPv4):
		ip := out[14:]
		ihl := int(ip[0]&0x0f) * 4
		ip[8]--
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:12], rfc1071(ip[:ihl]))
	case uint16(layers.EthernetTypeIPv6):
		out[14+7]--
	}
	return out
}

// onesSum is the 16-bit one's complement sum of b (RFC 1071), folded.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// rfc1071 is the Internet checksum of b.
func rfc1071(b []byte) uint16 { return ^onesSum(b) }

// verifyChecksums checks the IPv4 header checksum and the TCP/UDP checksum
// of an Ethernet frame, each by summing to 0xffff.
func verifyChecksums(frame []byte) error {
	var (
		proto  byte
		l4     []byte
		pseudo []byte
	)
	if len(frame) < 14 {
		return fmt.Errorf("frame of %d bytes", len(frame))
	}
	ip := frame[14:]
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case uint16(layers.EthernetTypeIPv4):
		if len(ip) < 20 {
			return fmt.Errorf("IPv4 header truncated")
		}
		ihl, tot := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:4]))
		if ihl < 20 || tot < ihl || tot > len(ip) {
			return fmt.Errorf("IPv4 header length %d, total length %d in %d bytes", ihl, tot, len(ip))
		}
		if s := onesSum(ip[:ihl]); s != 0xffff {
			return fmt.Errorf("IPv4 header sums to %#04x, want 0xffff", s)
		}
		proto, l4 = ip[9], ip[ihl:tot]
		pseudo = append(append([]byte{}, ip[12:20]...), 0, proto, byte(len(l4)>>8), byte(len(l4)))
	case uint16(layers.EthernetTypeIPv6):
		if len(ip) < 40 {
			return fmt.Errorf("IPv6 header truncated")
		}
		end := 40 + int(binary.BigEndian.Uint16(ip[4:6]))
		if end > len(ip) {
			return fmt.Errorf("IPv6 payload length beyond frame")
		}
		off, nh := 40, ip[6]
		for nh == byte(layers.IPProtocolIPv6HopByHop) || nh == byte(layers.IPProtocolIPv6Routing) ||
			nh == byte(layers.IPProtocolIPv6Destination) {
			if off+8 > end {
				return fmt.Errorf("extension header beyond payload")
			}
			nh, off = ip[off], off+(int(ip[off+1])+1)*8
		}
		if off > end {
			return fmt.Errorf("extension header beyond payload")
		}
		proto, l4 = nh, ip[off:end]
		pseudo = append([]byte{}, ip[8:40]...)
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(l4)))
		pseudo = append(pseudo, 0, 0, 0, proto)
	default:
		return fmt.Errorf("not IP")
	}
	switch proto {
	case byte(layers.IPProtocolUDP):
		if len(l4) < 8 {
			return fmt.Errorf("UDP header truncated")
		}
		if binary.BigEndian.Uint16(l4[6:8]) == 0 {
			return fmt.Errorf("UDP checksum absent")
		}
	case byte(layers.IPProtocolTCP):
		if len(l4) < 20 {
			return fmt.Errorf("TCP header truncated")
		}
	case byte(layers.IPProtocolICMPv6):
		if len(l4) < 4 {
			return fmt.Errorf("ICMPv6 header truncated")
		}
	default:
		return nil
	}
	if s := onesSum(append(pseudo, l4...)); s != 0xffff {
		return fmt.Errorf("protocol %d checksum sums to %#04x, want 0xffff", proto, s)
	}
	return nil
}

// l3Len is the IP packet length the frame's header claims (0 if not IP).
func l3Len(frame []byte) int {
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case uint16(layers.EthernetTypeIPv4):
		if len(frame) >= 18 {
			return int(binary.BigEndian.Uint16(frame[16:18]))
		}
	case uint16(layers.EthernetTypeIPv6):
		if len(frame) >= 20 {
			return 40 + int(binary.BigEndian.Uint16(frame[18:20]))
		}
	}
	return 0
}

func diffBytes(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			lo, hi := max(0, i-4), min(len(got), i+12)
			return fmt.Sprintf("first difference at byte %d: got % x, want % x", i, got[lo:hi], want[lo:hi])
		}
	}
	return "equal"
}

// --- input frames, built with gopacket ---

type l4Kind int

const (
	l4UDP l4Kind = iota
	l4TCP
	l4None
)

// frameSpec describes a frame; the zero values are a UDP packet from the
// host behind lan0 to lan0's MAC.
type frameSpec struct {
	dst, src net.HardwareAddr
	vlan     uint16
	ip4      *layers.IPv4
	ip6      *layers.IPv6
	ext      []gopacket.SerializableLayer // IPv6 extension headers, in order
	l4       l4Kind
	payload  int
	swap     bool // source and destination ports exchanged (a reply)
}

type frameOpt func(*frameSpec)

func to(mac string) frameOpt   { return func(f *frameSpec) { f.dst = mustMAC(mac) } }
func from(mac string) frameOpt { return func(f *frameSpec) { f.src = mustMAC(mac) } }
func vlan(id uint16) frameOpt  { return func(f *frameSpec) { f.vlan = id } }
func tcp() frameOpt            { return func(f *frameSpec) { f.l4 = l4TCP } }
func noL4() frameOpt           { return func(f *frameSpec) { f.l4 = l4None } }
func payload(n int) frameOpt   { return func(f *frameSpec) { f.payload = n } }
func ipv4(m func(*layers.IPv4)) frameOpt {
	return func(f *frameSpec) { m(f.ip4) }
}
func ipv6(m func(*layers.IPv6)) frameOpt {
	return func(f *frameSpec) { m(f.ip6) }
}
func ttl(n uint8) frameOpt {
	return func(f *frameSpec) {
		if f.ip4 != nil {
			f.ip4.TTL = n
		} else {
			f.ip6.HopLimit = n
		}
	}
}
func ext(hs ...gopacket.SerializableLayer) frameOpt {
	return func(f *frameSpec) { f.ext = append(f.ext, hs...) }
}

// totalLen makes the IP packet exactly n bytes long.
func totalLen(n int) frameOpt {
	return func(f *frameSpec) {
		hdr := 20 + 8
		if f.ip6 != nil {
			hdr = 40 + 8
		}
		f.payload = n - hdr
	}
}

func udp4(t testing.TB, src, dst string, opts ...frameOpt) []byte {
	f := frameSpec{ip4: &layers.IPv4{
		Version: 4, TOS: 0x10, Id: 0x1c46, Flags: layers.IPv4DontFragment, TTL: 64,
		Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4(),
	}}
	return f.build(t, opts)
}

func udp6(t testing.TB, src, dst string, opts ...frameOpt) []byte {
	f := frameSpec{ip6: &layers.IPv6{
		Version: 6, TrafficClass: 0x28, FlowLabel: 0x5a5a5, HopLimit: 64,
		NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst),
	}}
	return f.build(t, opts)
}

func (f frameSpec) build(t testing.TB, opts []frameOpt) []byte {
	t.Helper()
	f.dst, f.src, f.payload = mustMAC("02:00:00:00:01:01"), mustMAC("02:00:00:00:01:02"), 32
	for _, o := range opts {
		o(&f)
	}
	var (
		ls    []gopacket.SerializableLayer
		netL  gopacket.NetworkLayer
		proto layers.IPProtocol
	)
	etype := layers.EthernetTypeIPv4
	if f.ip6 != nil {
		etype = layers.EthernetTypeIPv6
	}
	eth := &layers.Ethernet{DstMAC: f.dst, SrcMAC: f.src, EthernetType: etype}
	ls = append(ls, eth)
	if f.vlan != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: f.vlan, Priority: 3, Type: etype})
	}
	switch f.l4 {
	case l4UDP:
		proto = layers.IPProtocolUDP
	case l4TCP:
		proto = layers.IPProtocolTCP
	case l4None:
		proto = layers.IPProtocolNoNextHeader
	}
	if f.ip4 != nil {
		if f.ip4.Protocol == layers.IPProtocolUDP {
			f.ip4.Protocol = proto
		}
		netL = f.ip4
		ls = append(ls, f.ip4)
	} else {
		netL = f.ip6
		ls = append(ls, f.ip6)
		// Chain the next-header fields through the extension headers.
		next := &f.ip6.NextHeader
		for _, h := range f.ext {
			switch h := h.(type) {
			case *layers.IPv6HopByHop:
				*next, next = layers.IPProtocolIPv6HopByHop, &h.NextHeader
			case *layers.IPv6Routing:
				*next, next = layers.IPProtocolIPv6Routing, &h.NextHeader
			case *layers.IPv6Destination:
				*next, next = layers.IPProtocolIPv6Destination, &h.NextHeader
			case *layers.IPv6Fragment:
				*next, next = layers.IPProtocolIPv6Fragment, &h.NextHeader
			default:
				t.Fatalf("unknown extension header %T", h)
			}
			ls = append(ls, h)
		}
		*next = proto
	}
	switch f.l4 {
	case l4UDP:
		u := &layers.UDP{SrcPort: 40000, DstPort: 5353}
		if f.swap {
			u.SrcPort, u.DstPort = u.DstPort, u.SrcPort
		}
		if err := u.SetNetworkLayerForChecksum(netL); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, u)
	case l4TCP:
		tc := &layers.TCP{SrcPort: 40001, DstPort: 443, Seq: 0x01020304, Ack: 0x0a0b0c0d,
			ACK: true, PSH: true, Window: 65535}
		if f.swap {
			tc.SrcPort, tc.DstPort = tc.DstPort, tc.SrcPort
		}
		if err := tc.SetNetworkLayerForChecksum(netL); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, tc)
		f.payload -= 12 // TCP header is 20 bytes, UDP's 8
	}
	pl := make([]byte, max(f.payload, 0))
	for i := range pl {
		pl[i] = byte(i*7 + 3)
	}
	ls = append(ls, gopacket.Payload(pl))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return bytes.Clone(buf.Bytes())
}

func dstOpts(dataLen int) *layers.IPv6Destination {
	return &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{
		// Type 0x1e: experimental (RFC 4727), "skip if unknown".
		{OptionType: 0x1e, OptionData: make([]byte, dataLen)},
	}}
}

// --- byte surgery for frames a packet library will not build ---

func cut(b []byte, n int) []byte { return bytes.Clone(b[:n]) }

func set(b []byte, off int, v ...byte) []byte {
	b = bytes.Clone(b)
	copy(b[off:], v)
	return b
}

func set16(b []byte, off int, v uint16) []byte {
	return set(b, off, byte(v>>8), byte(v))
}

// fixIPv4Checksum recomputes the header checksum of an IPv4 frame after
// surgery, so that only the intended defect remains.
func fixIPv4Checksum(b []byte) []byte {
	b = bytes.Clone(b)
	ip := b[14:]
	ihl := int(ip[0]&0x0f) * 4
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:12], rfc1071(ip[:ihl]))
	return b
}

// ipv4WithChecksumAfterTTL finds an IP ID for which the header checksum
// computed from scratch after the TTL decrement is want, and builds that
// packet: the corner cases of incremental checksum update.
func ipv4WithChecksumAfterTTL(t *testing.T, want uint16) []byte {
	t.Helper()
	base := udp4(t, "10.0.1.2", "198.51.100.9")
	hdr := bytes.Clone(base[14:34])
	hdr[8]--
	for id := 0; id < 1<<16; id++ {
		binary.BigEndian.PutUint16(hdr[4:6], uint16(id))
		hdr[10], hdr[11] = 0, 0
		if rfc1071(hdr) == want {
			return udp4(t, "10.0.1.2", "198.51.100.9", ipv4(func(ip *layers.IPv4) { ip.Id = uint16(id) }))
		}
	}
	t.Fatalf("no IP ID gives checksum %#04x", want)
	return nil
}

// Offsets into an untagged frame.
const (
	offIP     = 14
	offV4Len  = offIP + 2
	offV4Frag = offIP + 6
	offV4Sum  = offIP + 10
	offV6Plen = offIP + 4
)

func dataplaneCases(t *testing.T) []dpCase {
	const (
		lanMAC   = "02:00:00:00:01:01"
		hostLAN  = "02:00:00:00:01:02"
		wanMAC   = "02:00:00:00:02:01"
		gwWAN    = "02:00:00:00:02:02"
		extMAC   = "02:00:00:00:03:01"
		nofwdMAC = "02:00:00:00:05:01"
	)
	fromWAN := []frameOpt{to(wanMAC), from(gwWAN)}

	v4 := udp4(t, "10.0.1.2", "198.51.100.9")
	v6 := udp6(t, "2001:db8:1::2", "2001:db8:100::9")
	v6dst := udp6(t, "2001:db8:1::2", "2001:db8:100::9", ext(dstOpts(12))) // 16-byte header

	// A destination options header that claims 16 bytes where the
	// frame (and payload length) holds only its first 8.
	truncExt := set16(cut(v6dst, 14+40+8), offV6Plen, 8)
	// The same header whole in the frame, but beyond the payload length.
	extBeyondPlen := set16(v6dst, offV6Plen, 8)

	// The checksum 0xffff ("negative zero") is as valid as 0x0000.
	// A header whose checksum computes to 0x0000 (0x0100 after the TTL
	// decrement) sent with the equivalent 0xffff instead.
	negZero := ipv4WithChecksumAfterTTL(t, 0x0100)
	if c := binary.BigEndian.Uint16(negZero[offV4Sum:]); c != 0 {
		t.Fatalf("negative-zero frame: checksum %#04x, want 0", c)
	}
	negZero = set16(negZero, offV4Sum, 0xffff)

	pass, redirect := xdpPass, xdpRedirect
	return []dpCase{
		// Forwarded.
		{"ipv4 udp forwarded", "lan0", v4, redirect, "fwd_ipv4", "wan0"},
		{"ipv4 tcp forwarded", "lan0", udp4(t, "10.0.1.2", "198.51.100.9", tcp()), redirect, "fwd_ipv4", "wan0"},
		{"ipv4 forwarded wan to lan", "wan0", udp4(t, "198.51.100.9", "10.0.1.2", fromWAN...), redirect, "fwd_ipv4", "lan0"},
		{"ipv4 ttl 2 forwarded", "lan0", udp4(t, "10.0.1.2", "198.51.100.9", ttl(2)), redirect, "fwd_ipv4", "wan0"},
		{"ipv4 checksum wraps to 0x0000", "lan0", ipv4WithChecksumAfterTTL(t, 0x0000), redirect, "fwd_ipv4", "wan0"},
		{"ipv4 input checksum 0xffff", "lan0", negZero, redirect, "fwd_ipv4", "wan0"},
		{"ipv4 at egress mtu forwarded", "lan0", udp4(t, "10.0.1.2", "10.0.4.2", totalLen(1280)), redirect, "fwd_ipv4", "small0"},
		{"ipv4 without df over egress mtu", "lan0", udp4(t, "10.0.1.2", "10.0.4.2", totalLen(1281),
			ipv4(func(ip *layers.IPv4) { ip.Flags = 0 })), pass, "pass_frag_needed", ""},
		// A minimum-size frame carries Ethernet padding after the packet;
		// it travels along untouched.
		{"ipv4 padded minimum frame forwarded", "lan0", udp4(t, "10.0.1.2", "198.51.100.9", payload(0)), redirect, "fwd_ipv4", "wan0"},
		{"ipv6 udp forwarded", "lan0", v6, redirect, "fwd_ipv6", "wan0"},
		{"ipv6 padded minimum frame forwarded", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9", noL4(), payload(0)), redirect, "fwd_ipv6", "wan0"},
		{"ipv6 tcp forwarded wan to lan", "wan0", udp6(t, "2001:db8:100::9", "2001:db8:1::2", tcp(), to(wanMAC), from(gwWAN)), redirect, "fwd_ipv6", "lan0"},
		{"ipv6 destination options forwarded", "lan0", v6dst, redirect, "fwd_ipv6", "wan0"},
		{"ipv6 routing header forwarded", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9", tcp(),
			ext(&layers.IPv6Routing{RoutingType: 4, Reserved: make([]byte, 4), Data: net.ParseIP("2001:db8:100::9")})), redirect, "fwd_ipv6", "wan0"},
		{"ipv6 six extension headers forwarded", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9",
			ext(dstOpts(4), dstOpts(4), dstOpts(4), dstOpts(4), dstOpts(4), dstOpts(4))), redirect, "fwd_ipv6", "wan0"},
		{"ipv6 no next header forwarded", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9", noL4()), redirect, "fwd_ipv6", "wan0"},
		{"ipv6 unique-local source forwarded", "lan0", udp6(t, "fd00:1::2", "2001:db8:100::9"), redirect, "fwd_ipv6", "wan0"},
		// First octet 0xfe but not link-local: the kernel forwards it.
		{"ipv6 site-local source forwarded", "lan0", udp6(t, "fec0::2", "2001:db8:100::9"), redirect, "fwd_ipv6", "wan0"},
		{"ipv6 hop limit 2 forwarded", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9", ttl(2)), redirect, "fwd_ipv6", "wan0"},
		{"ipv6 at egress mtu forwarded", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:4::2", totalLen(1280)), redirect, "fwd_ipv6", "small0"},

		// Truncated and malformed.
		{"ipv4 header truncated", "lan0", cut(v4, 14+12), pass, "pass_truncated", ""},
		{"ipv4 total length beyond frame", "lan0", cut(v4, len(v4)-1), pass, "pass_truncated", ""},
		{"ipv6 header truncated", "lan0", cut(v6, 14+39), pass, "pass_truncated", ""},
		{"ipv6 payload length beyond frame", "lan0", cut(v6, len(v6)-1), pass, "pass_truncated", ""},
		{"ipv6 extension header truncated", "lan0", truncExt, pass, "pass_truncated", ""},
		{"ipv6 extension header beyond payload length", "lan0", extBeyondPlen, pass, "pass_truncated", ""},
		{"ethernet header only", "lan0", cut(v4, 14), pass, "pass_truncated", ""},
		{"ipv4 ihl below 5", "lan0", set(v4, offIP, 0x44), pass, "pass_malformed", ""},
		{"ipv4 total length below header", "lan0", fixIPv4Checksum(set16(v4, offV4Len, 19)), pass, "pass_malformed", ""},
		{"ipv4 version 6 in ipv4 ethertype", "lan0", fixIPv4Checksum(set(v4, offIP, 0x65)), pass, "pass_malformed", ""},
		{"ipv6 version 4 in ipv6 ethertype", "lan0", set(v6, offIP, 0x40|v6[offIP]&0x0f), pass, "pass_malformed", ""},
		{"ipv4 bad header checksum", "lan0", set(v4, offV4Sum+1, v4[offV4Sum+1]^0x01), pass, "pass_bad_checksum", ""},

		// What the kernel must see.
		{"ipv4 ttl 1", "lan0", udp4(t, "10.0.1.2", "198.51.100.9", ttl(1)), pass, "pass_ttl_expired", ""},
		{"ipv4 ttl 0", "lan0", udp4(t, "10.0.1.2", "198.51.100.9", ttl(0)), pass, "pass_ttl_expired", ""},
		{"ipv6 hop limit 1", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9", ttl(1)), pass, "pass_ttl_expired", ""},
		{"vlan tagged ipv4", "lan0", udp4(t, "10.0.1.2", "198.51.100.9", vlan(10)), pass, "pass_vlan", ""},
		{"vlan tagged ipv6", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9", vlan(10)), pass, "pass_vlan", ""},
		{"802.1ad tagged", "lan0", set16(udp4(t, "10.0.1.2", "198.51.100.9", vlan(10)), 12, uint16(layers.EthernetTypeQinQ)), pass, "pass_vlan", ""},
		{"ipv6 hop-by-hop", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9", ext(&layers.IPv6HopByHop{
			Options: []*layers.IPv6HopByHopOption{
				{OptionType: 5, OptionData: []byte{0, 0}}, // router alert
				{OptionType: 1, OptionData: []byte{}},     // PadN
			}})), pass, "pass_ipv6_hop_by_hop", ""},
		{"ipv6 hop-by-hop after destination options", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9", ext(dstOpts(4), &layers.IPv6HopByHop{
			Options: []*layers.IPv6HopByHopOption{{OptionType: 0x1e, OptionData: make([]byte, 4)}}})), pass, "pass_ipv6_hop_by_hop", ""},
		{"ipv6 seven extension headers", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9",
			ext(dstOpts(4), dstOpts(4), dstOpts(4), dstOpts(4), dstOpts(4), dstOpts(4), dstOpts(4))), pass, "pass_ipv6_ext_limit", ""},
		{"ipv4 options", "lan0", udp4(t, "10.0.1.2", "198.51.100.9", ipv4(func(ip *layers.IPv4) {
			ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert
		})), pass, "pass_ipv4_options", ""},
		{"ipv4 first fragment", "lan0", udp4(t, "10.0.1.2", "198.51.100.9", ipv4(func(ip *layers.IPv4) {
			ip.Flags = layers.IPv4MoreFragments
		})), pass, "pass_fragment", ""},
		{"ipv4 last fragment", "lan0", udp4(t, "10.0.1.2", "198.51.100.9", ipv4(func(ip *layers.IPv4) {
			ip.Flags, ip.FragOffset = 0, 185
		})), pass, "pass_fragment", ""},
		{"ipv6 fragment header", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9",
			ext(&layers.IPv6Fragment{MoreFragments: true, Identification: 0xabcd})), pass, "pass_fragment", ""},
		{"l2 broadcast", "lan0", udp4(t, "10.0.1.2", "10.0.1.255", to("ff:ff:ff:ff:ff:ff")), pass, "pass_l2_multicast", ""},
		{"l2 multicast ipv4", "lan0", udp4(t, "10.0.1.2", "224.0.0.251", to("01:00:5e:00:00:fb")), pass, "pass_l2_multicast", ""},
		{"l2 multicast ipv6", "lan0", udp6(t, "2001:db8:1::2", "ff02::fb", to("33:33:00:00:00:fb")), pass, "pass_l2_multicast", ""},
		{"ipv4 multicast destination", "lan0", udp4(t, "10.0.1.2", "239.1.2.3"), pass, "pass_ip_multicast", ""},
		{"ipv4 limited broadcast", "lan0", udp4(t, "10.0.1.2", "255.255.255.255"), pass, "pass_ip_multicast", ""},
		{"ipv6 multicast destination", "lan0", udp6(t, "2001:db8:1::2", "ff0e::1:3"), pass, "pass_ip_multicast", ""},
		{"ipv6 link-local source", "lan0", udp6(t, "fe80::2", "2001:db8:100::9"), pass, "pass_link_local", ""},
		{"ipv6 link-local destination", "lan0", udp6(t, "2001:db8:1::2", "fe80::1"), pass, "pass_link_local", ""},
		{"ipv4 loopback source", "lan0", udp4(t, "127.0.0.1", "198.51.100.9"), pass, "pass_martian", ""},
		{"ipv4 zero-network destination", "lan0", udp4(t, "10.0.1.2", "0.1.2.3"), pass, "pass_martian", ""},
		{"ipv6 loopback destination", "lan0", udp6(t, "2001:db8:1::2", "::1"), pass, "pass_martian", ""},
		{"ipv6 unspecified source", "lan0", udp6(t, "::", "2001:db8:100::9"), pass, "pass_martian", ""},
		{"otherhost unicast mac", "lan0", udp4(t, "10.0.1.2", "198.51.100.9", to("02:00:00:00:99:99")), pass, "pass_otherhost", ""},
		{"frame for another attached interface's mac", "lan0", udp4(t, "10.0.1.2", "198.51.100.9", to(wanMAC)), pass, "pass_otherhost", ""},
		{"arp", "lan0", arpReply(t, lanMAC, hostLAN), pass, "pass_not_ip", ""},

		// FIB results.
		{"ipv4 no neighbour", "lan0", udp4(t, "10.0.1.2", "203.0.113.9"), pass, "pass_no_neigh", ""},
		{"ipv6 no neighbour", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:200::9"), pass, "pass_no_neigh", ""},
		{"ipv4 local delivery", "lan0", udp4(t, "10.0.1.2", "10.0.1.1"), pass, "pass_local", ""},
		{"ipv4 local address of other interface", "lan0", udp4(t, "10.0.1.2", "10.0.2.1"), pass, "pass_local", ""},
		{"ipv6 local delivery", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:1::1"), pass, "pass_local", ""},
		{"ipv4 directed broadcast", "lan0", udp4(t, "10.0.1.2", "10.0.2.255"), pass, "pass_local", ""},
		{"ipv6 subnet-router anycast", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:2::"), pass, "pass_local", ""},
		{"ipv4 unreachable route", "lan0", udp4(t, "10.0.1.2", "192.0.2.9"), pass, "pass_unreachable", ""},
		{"ipv4 blackhole route", "lan0", udp4(t, "10.0.1.2", "100.64.0.9"), pass, "pass_unreachable", ""},
		{"ipv6 unreachable route", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:dead::9"), pass, "pass_unreachable", ""},
		{"ipv6 prohibit route", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:beef::9"), pass, "pass_unreachable", ""},
		{"ipv4 frag needed", "lan0", udp4(t, "10.0.1.2", "10.0.4.2", totalLen(1281)), pass, "pass_frag_needed", ""},
		{"ipv6 frag needed", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:4::2", totalLen(1281)), pass, "pass_frag_needed", ""},
		{"ipv4 forwarding disabled on ingress", "nofwd0", udp4(t, "10.0.5.2", "198.51.100.9", to(nofwdMAC)), pass, "pass_fwd_disabled", ""},
		{"ipv6 forwarding disabled on ingress", "nofwd0", udp6(t, "2001:db8:5::2", "2001:db8:100::9", to(nofwdMAC)), pass, "pass_fwd_disabled", ""},
		{"ipv4 egress not attached", "lan0", udp4(t, "10.0.1.2", "10.0.3.2"), pass, "pass_egress_not_attached", ""},
		{"ipv6 egress not attached", "lan0", udp6(t, "2001:db8:1::2", "2001:db8:3::2"), pass, "pass_egress_not_attached", ""},
		{"ipv4 hairpin", "wan0", udp4(t, "10.0.2.2", "198.51.100.9", fromWAN...), pass, "pass_hairpin", ""},
		{"ipv6 hairpin", "wan0", udp6(t, "2001:db8:2::2", "2001:db8:100::9", fromWAN...), pass, "pass_hairpin", ""},
		{"ingress is not the program's interface", "ext0", udp4(t, "10.0.3.2", "198.51.100.9", to(extMAC)), pass, "pass_iface_unknown", ""},
	}
}

func arpReply(t *testing.T, dst, src string) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{DstMAC: mustMAC(dst), SrcMAC: mustMAC(src), EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPReply,
			SourceHwAddress: mustMAC(src), SourceProtAddress: net.ParseIP("10.0.1.2").To4(),
			DstHwAddress: mustMAC(dst), DstProtAddress: net.ParseIP("10.0.1.1").To4()})
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}
