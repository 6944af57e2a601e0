package loader

// NPTv6 data-plane tests: prog.Run of xdpr_main with NPT rules in the maps,
// expected frames from the reference model (nptmodel_test.go) plus the
// forward step, and every forwarded frame's checksums verified from
// scratch. The kernel oracle (ip6tables SNPT/DNPT) is in npt_oracle_test.go.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// nptCase names one rule of the lab: inside behind lan0, outside on wan0.
type nptTestRule struct {
	name            string
	inside, outside string
	mode            NPTMode
	exclude         string // the router's own outside address; "": none
}

var nptTestRules = []nptTestRule{
	{"rfc6296-48", "fd48:1:2::/48", "3fff:48:1::/48", NPTRFC6296, ""},
	{"rfc6296-56", "fd56:1:2:300::/56", "3fff:56:1:ab00::/56", NPTRFC6296, ""},
	{"rfc6296-64", "fd64:1:2:3::/64", "3fff:64:1:2::/64", NPTRFC6296, "3fff:64:1:2::feed"},
	{"rfc6296-37", "fd37:1000::/37", "3fff:3000::/37", NPTRFC6296, ""},
	{"preserve-64", "fd00:bbbb::/64", "3fff:aaaa::/64", NPTPreserveHost, "3fff:aaaa::feed"},
	{"preserve-61", "fd61:0:0:8::/61", "3fff:61:0:10::/61", NPTPreserveHost, ""},
}

func (r nptTestRule) excludeAddr() netip.Addr {
	if r.exclude == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(r.exclude)
}

func (r nptTestRule) model(dnpt bool) modelRule {
	in, out := netip.MustParsePrefix(r.inside), netip.MustParsePrefix(r.outside)
	if dnpt {
		return modelRule{from: out, to: in, mode: r.mode, exclude: r.excludeAddr()}
	}
	return modelRule{from: in, to: out, mode: r.mode, exclude: r.excludeAddr()}
}

// excludedInside is the inside address whose SNPT would be the excluded
// address: its DNPT.
func (r nptTestRule) excludedInside() string {
	a, ok := modelMap(r.excludeAddr().As16(), modelRule{from: netip.MustParsePrefix(r.outside), to: netip.MustParsePrefix(r.inside), mode: r.mode})
	if !ok {
		panic("excluded address of " + r.name + " is unmappable")
	}
	return netip.AddrFrom16(a).String()
}

// host returns the address with the rule's inside (or outside) prefix and
// interface identifier iid.
func (r nptTestRule) host(outside bool, iid string) string {
	p := netip.MustParsePrefix(r.inside)
	if outside {
		p = netip.MustParsePrefix(r.outside)
	}
	a, h := p.Addr().As16(), netip.MustParseAddr(iid).As16()
	for i := 8; i < 16; i++ {
		a[i] = h[i]
	}
	return netip.AddrFrom16(a).String()
}

// setNPT programs rules through the loader's SyncNPT (on the test's
// unpinned maps) and routes every inside prefix to the host behind lan0.
func (rl *routerLab) setNPT(t testing.TB, rules []nptTestRule) {
	t.Helper()
	var lr []NPTRule
	for _, r := range rules {
		lr = append(lr, NPTRule{Interface: "wan0", Inside: netip.MustParsePrefix(r.inside),
			Outside: netip.MustParsePrefix(r.outside), Mode: r.mode, Exclude: r.excludeAddr()})
		if err := rl.lab.MustExec(rl.ns, []string{"ip", "-6", "route", "replace", r.inside, "via", "2001:db8:1::2", "dev", "lan0"}); err != nil {
			t.Fatal(err)
		}
	}
	d := &Dataplane{maps: *rl.maps}
	if err := rl.lab.Do(rl.ns, func() error { return d.SyncNPT(lr) }); err != nil {
		t.Fatal(err)
	}
}

// onWAN addresses a frame as arriving on wan0 from its neighbour.
func onWAN() frameOpt {
	return func(f *frameSpec) {
		f.dst, f.src = mustMAC(labIfaceByName("wan0").mac), mustMAC(labIfaceByName("wan0").peerMAC)
	}
}

// icmp6 builds an ICMPv6 message (type, code, 4 bytes of type-specific
// data, body) from src to dst with a correct checksum.
func icmp6(t *testing.T, src, dst string, typ, code uint8, rest uint32, body []byte, opts ...frameOpt) []byte {
	t.Helper()
	f := frameSpec{}
	f.dst, f.src = mustMAC("02:00:00:00:01:01"), mustMAC("02:00:00:00:01:02")
	for _, o := range opts {
		o(&f)
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
	if err := ic.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	pl := binary.BigEndian.AppendUint32(nil, rest)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{DstMAC: f.dst, SrcMAC: f.src, EthernetType: layers.EthernetTypeIPv6},
		ip, ic, gopacket.Payload(append(pl, body...)))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// nptCase is a dpCase with the NPT direction the model applies.
type nptCase struct {
	dpCase
	rule  *nptTestRule // nil: no translation expected
	dnpt  bool
	noCsV bool // skip from-scratch checksum verification (UDP without checksum)
}

func nptCases(t *testing.T) []nptCase {
	var cs []nptCase
	add := func(name, ingress string, frame []byte, verdict uint32, counter, egress string, r *nptTestRule, dnpt bool) {
		cs = append(cs, nptCase{dpCase: dpCase{name: name, ingress: ingress, frame: frame, verdict: verdict,
			counter: counter, egress: egress}, rule: r, dnpt: dnpt})
	}
	const remote = "2001:db8:100::1"
	for i := range nptTestRules {
		r := &nptTestRules[i]
		in, out := r.host(false, "::1234:5678:9abc:def0"), r.host(true, "::1234:5678:9abc:def0")
		add(r.name+"/snpt-udp", "lan0", udp6(t, in, remote), xdpRedirect, "fwd_npt_snpt", "wan0", r, false)
		add(r.name+"/dnpt-udp", "wan0", udp6(t, remote, out, onWAN()), xdpRedirect, "fwd_npt_dnpt", "lan0", r, true)
		add(r.name+"/snpt-tcp", "lan0", udp6(t, in, remote, tcp()), xdpRedirect, "fwd_npt_snpt", "wan0", r, false)
		add(r.name+"/dnpt-tcp", "wan0", udp6(t, remote, out, tcp(), onWAN()), xdpRedirect, "fwd_npt_dnpt", "lan0", r, true)
		add(r.name+"/snpt-echo", "lan0", icmp6(t, in, remote, 128, 0, 0x12340001, []byte("ping through npt")),
			xdpRedirect, "fwd_npt_snpt", "wan0", r, false)
		add(r.name+"/dnpt-echo-reply", "wan0", icmp6(t, remote, out, 129, 0, 0x12340001, []byte("pong"), onWAN()),
			xdpRedirect, "fwd_npt_dnpt", "lan0", r, true)
		// Destination options before the upper-layer header.
		add(r.name+"/snpt-dstopts-udp", "lan0", udp6(t, in, remote, ext(dstOpts(4))), xdpRedirect, "fwd_npt_snpt", "wan0", r, false)
		add(r.name+"/dnpt-dstopts-tcp", "wan0", udp6(t, remote, out, tcp(), ext(dstOpts(12)), onWAN()),
			xdpRedirect, "fwd_npt_dnpt", "lan0", r, true)
		// ICMPv6 errors: the embedded packet is the reverse direction.
		// A router upstream reports that our outbound packet (source =
		// outside address) was too big: DNPT also maps its source.
		inner := udp6(t, out, remote, payload(64))[14:]
		add(r.name+"/dnpt-icmp-too-big", "wan0", icmp6(t, "2001:db8:100::fe", out, 2, 0, 1280, inner, onWAN()),
			xdpRedirect, "fwd_npt_dnpt", "lan0", r, true)
		// A LAN host's port unreachable for a packet that came to its
		// inside address: SNPT also maps the embedded destination.
		inner = udp6(t, remote, in, payload(64))[14:]
		add(r.name+"/snpt-icmp-port-unreach", "lan0", icmp6(t, in, remote, 1, 4, 0, inner), xdpRedirect, "fwd_npt_snpt", "wan0", r, false)
		// Embedded header cut short: only the outer address is mapped.
		add(r.name+"/dnpt-icmp-short-embedded", "wan0", icmp6(t, "2001:db8:100::fe", out, 1, 0, 0, inner[:30], onWAN()),
			xdpRedirect, "fwd_npt_dnpt", "lan0", r, true)
		// Hop-by-hop options are for the kernel; the TC slow path translates.
		add(r.name+"/snpt-hop-by-hop", "lan0", udp6(t, in, remote, ext(&layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{{OptionType: 0x1e, OptionData: make([]byte, 4)}}})),
			xdpPass, "pass_ipv6_hop_by_hop", "", nil, false)
	}
	r64, r48, ph := &nptTestRules[2], &nptTestRules[0], &nptTestRules[4]
	// The 0xffff corner (RFC 6296 5.2): for a /64 the first IID word that
	// is not 0xffff takes the adjustment; none left means drop.
	add("rfc6296-64/snpt-iid-ffff-first", "lan0", udp6(t, r64.host(false, "::ffff:1:2:3"), remote), xdpRedirect, "fwd_npt_snpt", "wan0", r64, false)
	add("rfc6296-64/snpt-iid-ffff-three", "lan0", udp6(t, r64.host(false, "::ffff:ffff:ffff:0"), remote), xdpRedirect, "fwd_npt_snpt", "wan0", r64, false)
	add("rfc6296-64/snpt-iid-all-ffff", "lan0", udp6(t, r64.host(false, "::ffff:ffff:ffff:ffff"), remote), xdpDrop, "drop_npt_unmappable", "", nil, false)
	add("rfc6296-64/dnpt-iid-all-ffff", "wan0", udp6(t, remote, r64.host(true, "::ffff:ffff:ffff:ffff"), onWAN()), xdpDrop, "drop_npt_unmappable", "", nil, false)
	// Up to /48 word 3 is adjusted whatever it holds, 0xffff included.
	a48 := netip.MustParseAddr("fd48:1:2:ffff:ffff:ffff:ffff:ffff").String()
	add("rfc6296-48/snpt-subnet-ffff", "lan0", udp6(t, a48, remote), xdpRedirect, "fwd_npt_snpt", "wan0", r48, false)
	// Not NPT: inside source leaving by another interface, and plain
	// addresses out of the WAN.
	add("snpt-other-egress", "lan0", udp6(t, r64.host(false, "::5"), "2001:db8:4::2"), xdpRedirect, "fwd_ipv6", "small0", nil, false)
	add("no-npt-plain", "lan0", udp6(t, "2001:db8:1::2", remote), xdpRedirect, "fwd_ipv6", "wan0", nil, false)
	// Payload length shorter than the UDP header: rfc6296 does not look at
	// L4 and forwards (like the kernel); preserve-host cannot fix the
	// checksum and drops.
	short := func(f []byte) []byte { return set16(f, 14+4, 4) }
	add("rfc6296-64/snpt-l4-cut-by-length", "lan0", short(udp6(t, r64.host(false, "::7"), remote)), xdpRedirect, "fwd_npt_snpt", "wan0", r64, false)
	add("preserve-64/snpt-l4-cut-by-length", "lan0", short(udp6(t, ph.host(false, "::7"), remote)), xdpDrop, "drop_npt_malformed", "", nil, false)
	// The router's own outside address (WAN prefix + token): to it nothing
	// is translated, the kernel gets it as it came; an inside host that
	// would translate onto it is dropped. Its neighbours are not excluded.
	for _, r := range []*nptTestRule{r64, ph} {
		add(r.name+"/dnpt-excluded-udp", "wan0", udp6(t, remote, r.exclude, onWAN()), xdpPass, "pass_npt_excluded", "", nil, true)
		add(r.name+"/dnpt-excluded-echo", "wan0", icmp6(t, remote, r.exclude, 128, 0, 0x12340001, []byte("ping the router"), onWAN()),
			xdpPass, "pass_npt_excluded", "", nil, true)
		inner := udp6(t, r.exclude, remote, payload(64))[14:]
		add(r.name+"/dnpt-excluded-icmp-too-big", "wan0", icmp6(t, "2001:db8:100::fe", r.exclude, 2, 0, 1280, inner, onWAN()),
			xdpPass, "pass_npt_excluded", "", nil, true)
		add(r.name+"/snpt-excluded-udp", "lan0", udp6(t, r.excludedInside(), remote), xdpDrop, "drop_npt_excluded", "", nil, false)
		add(r.name+"/snpt-excluded-tcp", "lan0", udp6(t, r.excludedInside(), remote, tcp()), xdpDrop, "drop_npt_excluded", "", nil, false)
		next := r.host(true, "::fef0")
		add(r.name+"/dnpt-next-to-excluded", "wan0", udp6(t, remote, next, onWAN()), xdpRedirect, "fwd_npt_dnpt", "lan0", r, true)
		add(r.name+"/snpt-next-to-excluded", "lan0", udp6(t, r.host(false, "::fef0"), remote), xdpRedirect, "fwd_npt_snpt", "wan0", r, false)
	}
	// ipip6 that is no tunnel of ours, to an outside address: an inside
	// host's own tunnel, translated and forwarded like any packet to it.
	ipip := set(udp6(t, remote, r64.host(true, "::4"), onWAN()), 14+6, 4)
	cs = append(cs, nptCase{dpCase: dpCase{name: "rfc6296-64/dnpt-ipip6-not-ours", ingress: "wan0", frame: ipip,
		verdict: xdpRedirect, counter: "fwd_npt_dnpt", egress: "lan0"}, rule: r64, dnpt: true, noCsV: true})
	// Without an excluded address every outside address is translated.
	r56 := &nptTestRules[1]
	add("rfc6296-56/dnpt-feed-no-exclude", "wan0", udp6(t, remote, r56.host(true, "::feed"), onWAN()), xdpRedirect, "fwd_npt_dnpt", "lan0", r56, true)
	// A zero UDP checksum stays zero (no checksum, RFC 6935).
	zero := set16(udp6(t, ph.host(false, "::8"), remote), 14+40+6, 0)
	cs = append(cs, nptCase{dpCase: dpCase{name: "preserve-64/snpt-udp-zero-csum", ingress: "lan0", frame: zero,
		verdict: xdpRedirect, counter: "fwd_npt_snpt", egress: "wan0"}, rule: ph, noCsV: true})
	return cs
}

func (c nptCase) want() []byte {
	if c.verdict != xdpRedirect {
		return c.frame
	}
	out := bytes.Clone(c.frame)
	if c.rule != nil && !modelNPT(out[14:], c.rule.model(c.dnpt), c.dnpt) {
		panic("model drops " + c.name)
	}
	return expectForward(out, c.egress)
}

// nptStates are the ways the XDP path can find a rule: the /64 hash maps,
// the tries, or both, chosen by which rule lengths exist (SyncNPT sets the
// bits) or forced (the tries alone, as after a failed /64 map update).
var nptStates = []struct {
	name  string
	rules func(nptTestRule) bool // which of nptTestRules are programmed
	force uint32                 // xdpr_features after SyncNPT; 0: as synced
	want  uint32                 // the bits SyncNPT must have set
}{
	{"mixed", func(nptTestRule) bool { return true }, 0, featureNPT | featureNPT64 | featureNPTTrie},
	{"only-64", func(r nptTestRule) bool { return is64(r) }, 0, featureNPT | featureNPT64},
	{"no-64", func(r nptTestRule) bool { return !is64(r) }, 0, featureNPT | featureNPTTrie},
	{"tries-only", func(nptTestRule) bool { return true }, featureNPT | featureNPTTrie, featureNPT | featureNPT64 | featureNPTTrie},
}

func is64(r nptTestRule) bool { return netip.MustParsePrefix(r.inside).Bits() == 64 }

// nptCasesFor keeps the cases of the programmed rules, and those of no rule.
func nptCasesFor(t *testing.T, rules []nptTestRule) []nptCase {
	var out []nptCase
	for _, c := range nptCases(t) {
		rule, _, found := strings.Cut(c.name, "/")
		keep := !found
		for _, r := range rules {
			keep = keep || r.name == rule
		}
		if keep {
			out = append(out, c)
		}
	}
	return out
}

func TestNPT(t *testing.T) {
	for _, st := range nptStates {
		t.Run(st.name, func(t *testing.T) {
			var rules []nptTestRule
			for _, r := range nptTestRules {
				if st.rules(r) {
					rules = append(rules, r)
				}
			}
			rl := newRouterLab(t)
			rl.setNPT(t, rules)
			d := &Dataplane{maps: *rl.maps}
			rl.wantFeatures(t, d, st.want)
			if st.force != 0 {
				if err := rl.maps.XdprFeatures.Put(uint32(0), routerXdprFeatureWord{Flags: st.force}); err != nil {
					t.Fatal(err)
				}
			}
			testNPTCases(t, rl, nptCasesFor(t, rules))
		})
	}
}

func testNPTCases(t *testing.T, rl *routerLab, cases []nptCase) {
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			if !c.noCsV {
				if err := verifyChecksums(c.frame); err != nil && c.verdict == xdpRedirect && c.rule != nil && c.rule.mode == NPTPreserveHost {
					t.Fatalf("input frame: %v", err)
				}
			}
			want := c.want()
			wantCounter := rl.counterIndex(t, c.counter)
			err := rl.lab.Do(rl.ns, func() error {
				verdict, out, delta, err := rl.runOnce(c.frame, c.ingress)
				if err != nil {
					return err
				}
				if verdict != c.verdict {
					t.Errorf("verdict %s, want %s", verdictName(verdict), verdictName(c.verdict))
				}
				// A dropped frame goes nowhere, so its bytes do not matter
				// (SNPT finds the unmappable source after the fib lookup
				// has rewritten the MACs).
				if verdict != xdpDrop && !bytes.Equal(out, want) {
					t.Errorf("output frame differs from the model: %s", diffBytes(out, want))
				}
				if verdict == xdpRedirect && !c.noCsV && l3Len(c.frame) >= 48 {
					if err := verifyChecksums(out); err != nil {
						t.Errorf("output frame: %v", err)
					}
				}
				if verdict == xdpRedirect && c.rule != nil {
					if err := checkNPTInvariants(c.frame, out, c.rule, c.dnpt); err != nil {
						t.Error(err)
					}
				}
				return rl.checkCounters(delta, wantCounter, len(c.frame))
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkNPTInvariants checks what each mode promises, independently of the
// model: the translated address carries the new prefix; preserve-host
// keeps every bit after it; rfc6296 keeps the 16-bit one's complement sum
// of the address (checksum neutrality) and changes exactly one word after
// the prefix for prefixes longer than /48.
func checkNPTInvariants(in, out []byte, r *nptTestRule, dnpt bool) error {
	off := 14 + 8
	if dnpt {
		off = 14 + 24
	}
	before, after := [16]byte(in[off:off+16]), [16]byte(out[off:off+16])
	m := r.model(dnpt)
	if !m.to.Contains(netip.AddrFrom16(after)) {
		return fmt.Errorf("translated address %v not in %v", netip.AddrFrom16(after), m.to)
	}
	bits := m.to.Bits()
	changed := 0
	for w := 0; w < 8; w++ {
		if w*16 >= bits && binary.BigEndian.Uint16(before[2*w:]) != binary.BigEndian.Uint16(after[2*w:]) {
			changed++
		}
	}
	switch r.mode {
	case NPTPreserveHost:
		if changed != 0 {
			return fmt.Errorf("preserve-host changed %d words after the prefix: %v -> %v", changed, netip.AddrFrom16(before), netip.AddrFrom16(after))
		}
	case NPTRFC6296:
		if a, b := wordsSum(before), wordsSum(after); a%0xffff != b%0xffff {
			return fmt.Errorf("rfc6296 not checksum-neutral: sum %#x -> %#x", a, b)
		}
		if bits > 48 && changed != 1 {
			return fmt.Errorf("rfc6296 /%d changed %d words after the prefix, want 1", bits, changed)
		}
	}
	return nil
}

// TestNPTTruncations cuts every NPT case at every length: the program must
// pass untouched, or forward a complete, correct frame, or drop with a
// drop counter; exactly one counter counts it.
func TestNPTTruncations(t *testing.T) {
	rl := newRouterLab(t)
	rl.setNPT(t, nptTestRules)
	for _, c := range nptCases(t) {
		t.Run(c.name, func(t *testing.T) {
			full := 14 + l3Len(c.frame)
			err := rl.lab.Do(rl.ns, func() error {
				for n := 14; n < len(c.frame); n++ {
					in := c.frame[:n]
					verdict, out, delta, err := rl.runOnce(in, c.ingress)
					if err != nil {
						return err
					}
					total := 0
					for _, d := range delta {
						total += int(d.Packets)
					}
					if total != 1 {
						t.Errorf("length %d: %d counter increments", n, total)
					}
					switch verdict {
					case xdpPass:
						if !bytes.Equal(out, in) {
							t.Errorf("length %d: passed frame modified: %s", n, diffBytes(out, in))
						}
					case xdpDrop:
						if delta[rl.counterIndex(t, "drop_npt_unmappable")].Packets+delta[rl.counterIndex(t, "drop_npt_malformed")].Packets+
							delta[rl.counterIndex(t, "drop_npt_excluded")].Packets != 1 {
							t.Errorf("length %d: dropped without an NPT drop counter", n)
						}
					case xdpRedirect:
						// Only the Ethernet padding after the packet was cut.
						cc := c
						cc.frame = in
						if n < full {
							t.Errorf("length %d: redirected though the packet needs %d bytes", n, full)
						} else if want := cc.want(); !bytes.Equal(out, want) {
							t.Errorf("length %d: %s", n, diffBytes(out, want))
						}
					default:
						t.Errorf("length %d: verdict %s for a cut frame", n, verdictName(verdict))
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

// TestNPTSlowPathMatchesFastPath runs the TC programs on every NPT case:
// DNPT at TCX ingress on the frame as it arrives, SNPT at TCX egress on the
// frame as the kernel forwards it (MACs and hop limit done, addresses not).
// What XDP forwards, TC must translate to the same bytes; what XDP hands to
// the kernel because only the kernel can (hop-by-hop options), TC must
// translate as the model says; what XDP drops, TC drops.
func TestNPTSlowPathMatchesFastPath(t *testing.T) {
	rl := newRouterLab(t)
	rl.setNPT(t, nptTestRules)
	for _, c := range nptCases(t) {
		dnpt := c.ingress == "wan0"
		t.Run(c.name, func(t *testing.T) {
			err := rl.lab.Do(rl.ns, func() error {
				xv, xout, _, err := rl.runOnce(c.frame, c.ingress)
				if err != nil {
					return err
				}
				var tv uint32
				var tout []byte
				if dnpt {
					tv, tout, err = runTC(rl.tc.XdprTcDnpt, c.frame, rl.ifindex["wan0"])
				} else {
					// Only what leaves by wan0 meets the SNPT program.
					if c.egress != "" && c.egress != "wan0" {
						return nil
					}
					tv, tout, err = runTC(rl.tc.XdprTcSnpt, expectForward(c.frame, "wan0"), rl.ifindex["wan0"])
				}
				if err != nil {
					return err
				}
				switch {
				case xv == xdpDrop:
					if tv != 2 {
						t.Errorf("XDP drops, TC verdict %d", int32(tv))
					}
				case xv == xdpRedirect:
					if tv != tcxNext {
						t.Fatalf("TC verdict %d", int32(tv))
					}
					if dnpt {
						tout = expectForward(tout, c.egress)
					}
					if !bytes.Equal(tout, xout) {
						t.Errorf("TC differs from XDP: %s", diffBytes(tout, xout))
					}
				case xv == xdpPass && c.counter == "pass_npt_excluded":
					if tv != tcxNext || !bytes.Equal(tout, c.frame) {
						t.Errorf("TC verdict %d, frame: %s; want the kernel's, untouched", int32(tv), diffBytes(tout, c.frame))
					}
				case xv == xdpPass && c.counter == "pass_ipv6_hop_by_hop":
					r := &nptTestRules[0]
					for i := range nptTestRules {
						if netip.MustParsePrefix(nptTestRules[i].inside).Contains(netip.MustParseAddr(net.IP(c.frame[14+8 : 14+24]).String())) {
							r = &nptTestRules[i]
						}
					}
					want := expectForward(c.frame, "wan0")
					modelNPT(want[14:], r.model(false), false)
					if tv != tcxNext || !bytes.Equal(tout, want) {
						t.Errorf("TC verdict %d, frame vs model: %s", int32(tv), diffBytes(tout, want))
					}
					if err := verifyChecksums(tout); err != nil {
						t.Error(err)
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

// TestSyncNPTChangesOutside is what the daemon does when the ISP renumbers:
// the same inside prefix gets a new outside prefix through SyncNPT, in
// place. Afterwards the new outside address is translated, the old one is
// not, and the inside->outside direction writes the new prefix.
func TestSyncNPTChangesOutside(t *testing.T) {
	rl := newRouterLab(t)
	old := nptTestRule{name: "old", inside: "fd00:bbbb::/64", outside: "3fff:aaaa::/64", mode: NPTPreserveHost}
	renum := nptTestRule{name: "new", inside: "fd00:bbbb::/64", outside: "3fff:cccc::/64", mode: NPTPreserveHost}
	rl.setNPT(t, []nptTestRule{old})
	rl.setNPT(t, []nptTestRule{renum})
	d := &Dataplane{maps: *rl.maps}
	var rules []NPTRule
	if err := rl.lab.Do(rl.ns, func() error {
		var err error
		rules, err = d.NPTRules()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].Outside != netip.MustParsePrefix(renum.outside) || rules[0].Interface != "wan0" {
		t.Fatalf("rules after renumbering: %+v", rules)
	}
	const remote = "2001:db8:100::1"
	for _, c := range []struct {
		name    string
		ingress string
		frame   []byte
		verdict uint32
		want    func([]byte) []byte
	}{
		{"new outside translated", "wan0", udp6(t, remote, "3fff:cccc::123", onWAN()), xdpRedirect, func(f []byte) []byte {
			out := bytes.Clone(f)
			modelNPT(out[14:], renum.model(true), true)
			return expectForward(out, "lan0")
		}},
		// The old outside prefix is no longer ours: routed like any other
		// address (back out of wan0: the kernel's hairpin).
		{"old outside untouched", "wan0", udp6(t, remote, "3fff:aaaa::123", onWAN()), xdpPass, func(f []byte) []byte { return f }},
		{"inside gets the new prefix", "lan0", udp6(t, "fd00:bbbb::123", remote), xdpRedirect, func(f []byte) []byte {
			out := bytes.Clone(f)
			modelNPT(out[14:], renum.model(false), false)
			return expectForward(out, "wan0")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := rl.lab.Do(rl.ns, func() error {
				v, out, _, err := rl.runOnce(c.frame, c.ingress)
				if err != nil {
					return err
				}
				if want := c.want(c.frame); v != c.verdict || !bytes.Equal(out, want) {
					t.Errorf("verdict %s (want %s), frame: %s", verdictName(v), verdictName(c.verdict), diffBytes(out, want))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
