package loader

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// relayed6in4 is the frame control/reasm writes to its tap for the 6in4
// frame f the kernel reassembled: the tap's own MAC both ways (wanMAC
// stands in for it: a test run's device is wan0), the outer header
// rebuilt as received (addresses, TOS, TTL) with no ID, no flags, no
// options, checksummed; the inner packet untouched.
func relayed6in4(f []byte) []byte {
	out := bytes.Clone(f)
	copy(out[0:6], mustMAC(wanMAC))
	copy(out[6:12], mustMAC(wanMAC))
	binary.BigEndian.PutUint32(out[14+4:], 0)
	return fixIPv4Checksum(out)
}

// TestTunnel6in4ReassembledDecap: xdpr_tun_reasm, on the daemon's tap,
// decapsulates reassembled 6in4 the relay hands back exactly as the WAN's
// TC program decapsulates the same packet had it arrived whole (same
// bytes after the MAC addresses, to the tunnel netdev's MAC), whatever
// its length (inner packets far over the tunnel MTU of 1480, which is why
// the path fragmented them), counted tc_decap_reassembled. Before, the
// program knew ipip6 only and dropped every 6in4 frame as malformed.
func TestTunnel6in4ReassembledDecap(t *testing.T) {
	rl, idx := newSixInFourLab(t)
	progs, err := loadTunnelPrograms(rl.maps)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() { progs.Close() })
	s0, err := (&Dataplane{maps: *rl.maps}).tunnel(idx["s0"])
	if err != nil {
		t.Fatal(err)
	}
	remote, local := lab6in4[0].remote, local6in4.String()
	fromBroker := func(opts ...frameOpt) []byte {
		return udp6(t, broker6, lanHost6, append([]frameOpt{to(wanMAC), from(gwMAC)}, opts...)...)
	}
	for _, c := range []struct {
		name  string
		inner []byte
		tos   uint8
	}{
		{"1500 bytes inside", fromBroker(totalLen(1500)), 0},
		{"3000 bytes inside", fromBroker(totalLen(3000)), 0},
		{"a short packet", fromBroker(), 0},
		{"tcp", fromBroker(tcp(), totalLen(1500)), 0},
		{"outer ce onto ect(0)", fromBroker(totalLen(1500), ipv6(func(ip *layers.IPv6) { ip.TrafficClass = 0x02 })), 0x03},
	} {
		t.Run(c.name, func(t *testing.T) {
			wan := sixInFour(c.inner, remote, local, c.tos)
			tap := relayed6in4(wan)
			err := rl.lab.Do(rl.ns, func() error {
				before := rl.tcCounters(t)
				wv, fromWAN, err := runTC(progs.XdprTunIngress, wan, rl.ifindex["wan0"])
				if err != nil {
					return err
				}
				mid := rl.tcCounters(t)
				rv, fromTap, err := runTC(progs.XdprTunReasm, tap, rl.ifindex["wan0"])
				if err != nil {
					return err
				}
				after := rl.tcCounters(t)
				if wv != tcActRedirect || rv != tcActRedirect {
					t.Fatalf("TC verdicts: WAN %d, reassembly %d, want both TC_ACT_REDIRECT (7)", wv, rv)
				}
				if d := mid["tc_decap_6in4"] - before["tc_decap_6in4"]; d != 1 {
					t.Errorf("WAN: tc_decap_6in4 +%d, want +1", d)
				}
				if d := after["tc_decap_reassembled"] - mid["tc_decap_reassembled"]; d != 1 {
					t.Errorf("reassembly: tc_decap_reassembled +%d, want +1", d)
				}
				n := len(c.inner)
				if len(fromWAN) < n || len(fromTap) < n {
					t.Fatalf("outputs of %d and %d bytes, want at least the %d of the inner frame", len(fromWAN), len(fromTap), n)
				}
				if !bytes.Equal(fromWAN[12:n], fromTap[12:n]) {
					t.Errorf("WAN and reassembly decapsulation differ after the MAC addresses: %s", diffBytes(fromWAN[12:n], fromTap[12:n]))
				}
				if !bytes.Equal(fromTap[0:6], s0.MAC) {
					t.Errorf("destination MAC %x, want the tunnel netdev's %s", fromTap[0:6], s0.MAC)
				}
				// The model forwards: all but the hop limit is what
				// arrives on the tunnel netdev (ECN combined, RFC 6040).
				if want, _ := model6in4Decap(wan); !bytes.Equal(fromTap[14:14+7], want[14:14+7]) || !bytes.Equal(fromTap[14+8:n], want[14+8:]) {
					t.Errorf("inner packet differs from the model's:\n got % x\nwant % x", fromTap[14:min(n, 14+48)], want[14:14+48])
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTunnel6in4ReassembledChecks: on the tap, what is not 6in4 of a
// configured pair, or not what the relay writes, is dropped and counted,
// never left to the kernel; the WAN's source and ECN checks hold.
func TestTunnel6in4ReassembledChecks(t *testing.T) {
	rl, idx := newSixInFourLab(t)
	remote, local := lab6in4[0].remote, local6in4.String()
	from := func(src string) []byte { return udp6(t, src, lanHost6, to(wanMAC), from(gwMAC), totalLen(1500)) }
	ok := relayed6in4(sixInFour(from(broker6), remote, local, 0))
	runTCCases(t, rl, idx, "xdpr_tun_reasm", []tcCase{
		{"configured pair", ok, tcActRedirect, "tc_decap_reassembled", nil},
		{"unknown remote", relayed6in4(sixInFour(from(broker6), "198.51.100.99", local, 0)), tcActShot, "tc_drop_unknown_endpoint", nil},
		{"other local", relayed6in4(sixInFour(from(broker6), remote, "10.0.2.9", 0)), tcActShot, "tc_drop_unknown_endpoint", nil},
		{"inner source the router's own", relayed6in4(sixInFour(from("2001:db8:2::1"), remote, local, 0)), tcActShot, "tc_drop_src6_local", nil},
		{"inner source a lan host", relayed6in4(sixInFour(from("2001:db8:1::9"), remote, local, 0)), tcActShot, "tc_drop_src6_lan", nil},
		{"outer ce on not-ect", relayed6in4(sixInFour(from(broker6), remote, local, 0x03)), tcActShot, "tc_drop_ecn", nil},
		{"inner not ipv6", set(ok, 34, 0x45), tcActShot, "tc_drop_malformed", nil},
		{"not protocol 41", fixIPv4Checksum(set(ok, 14+9, 17)), tcActShot, "tc_drop_malformed", nil},
		{"bad outer checksum", set(ok, 14+10, 0, 0), tcActShot, "tc_drop_malformed", nil},
		{"a fragment", fixIPv4Checksum(set(ok, 14+6, 0x20)), tcActShot, "tc_drop_malformed", nil},
	})
}
