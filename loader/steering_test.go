package loader

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// The source steering of seed 001 as the control plane installs it
// (control/steering.go): a vxlan tunnel vx0 whose prefixes are
// 2001:db8:ae00:1::/64 (carved to lan0) and 2001:db8:ae01::/48, a native
// default route out of wan0, and the rules
//
//	2000: to <each LAN prefix> lookup main
//	2001: from <tunnel prefix or link net> lookup 2000; to <tunnel prefix> lookup 2000
//	table 2000: default via the peer's link address dev vx0; unreachable <tunnel prefix>
var steeringSetup = [][]string{
	{"ip", "link", "add", "vx0", "address", "02:00:00:00:0a:01", "type", "vxlan", "id", "1", "dstport", "4789", "remote", "10.0.2.2", "dev", "wan0"},
	{"ip", "link", "set", "vx0", "up"},
	{"ip", "-6", "addr", "add", "2001:db8:ae00:0:1::2/80", "dev", "vx0", "nodad"},
	{"ip", "-6", "neigh", "replace", "2001:db8:ae00:0:1::1", "lladdr", "02:00:00:00:0a:02", "dev", "vx0", "nud", "permanent"},
	{"ip", "-6", "addr", "add", "2001:db8:ae00:1::1/64", "dev", "lan0", "nodad"},
	{"ip", "-6", "neigh", "replace", "2001:db8:ae00:1::2", "lladdr", "02:00:00:00:01:02", "dev", "lan0", "nud", "permanent"},
	{"ip", "-6", "route", "add", "default", "via", "2001:db8:2::2", "dev", "wan0"},
	{"ip", "-6", "rule", "add", "to", "2001:db8:1::/64", "lookup", "main", "priority", "2000", "protocol", "200"},
	{"ip", "-6", "rule", "add", "to", "2001:db8:4::/64", "lookup", "main", "priority", "2000", "protocol", "200"},
	{"ip", "-6", "rule", "add", "to", "2001:db8:ae00:1::/64", "lookup", "main", "priority", "2000", "protocol", "200"},
	{"ip", "-6", "rule", "add", "from", "2001:db8:ae00:1::/64", "lookup", "2000", "priority", "2001", "protocol", "200"},
	{"ip", "-6", "rule", "add", "from", "2001:db8:ae01::/48", "lookup", "2000", "priority", "2001", "protocol", "200"},
	{"ip", "-6", "rule", "add", "from", "2001:db8:ae00:0:1::/80", "lookup", "2000", "priority", "2001", "protocol", "200"},
	{"ip", "-6", "rule", "add", "to", "2001:db8:ae00:1::/64", "lookup", "2000", "priority", "2001", "protocol", "200"},
	{"ip", "-6", "rule", "add", "to", "2001:db8:ae01::/48", "lookup", "2000", "priority", "2001", "protocol", "200"},
	{"ip", "-6", "route", "add", "default", "via", "2001:db8:ae00:0:1::1", "dev", "vx0", "table", "2000", "proto", "200"},
	{"ip", "-6", "route", "add", "unreachable", "2001:db8:ae00:1::/64", "table", "2000", "proto", "200"},
	{"ip", "-6", "route", "add", "unreachable", "2001:db8:ae01::/48", "table", "2000", "proto", "200"},
}

// steeringCases are (ingress, source, destination) the test asks both
// the kernel and XDP about; why says what each shows.
var steeringCases = []struct{ ingress, src, dst, why string }{
	{"lan0", "2001:db8:1::2", "2001:db8:77::9", "native source, default route: wan0"},
	{"lan0", "2001:db8:1::2", "2001:db8:100::9", "native source, a more specific route: wan0"},
	{"lan0", "2001:db8:ae00:1::2", "2001:db8:77::9", "tunnel /64 source: the tunnel's table, vx0"},
	{"lan0", "2001:db8:ae00:1::2", "2001:db8:100::9", "tunnel source beats main's more specific route: vx0"},
	{"lan0", "2001:db8:ae01:7::2", "2001:db8:77::9", "tunnel /48 source: vx0"},
	{"lan0", "2001:db8:ae00:1::2", "2001:db8:4::2", "tunnel source to another LAN: main, small0, not the peer"},
	{"lan0", "2001:db8:ae00:1::2", "2001:db8:ae01:5::9", "unused part of the tunnel /48: unreachable, not back to the peer"},
	{"lan0", "2001:db8:1::2", "2001:db8:ae01:5::9", "native source to the unused /48 part: unreachable too"},
	{"wan0", "2001:db8:77::9", "2001:db8:ae00:1::2", "from outside to the tunnel /64: lan0"},
	{"wan0", "2001:db8:77::9", "2001:db8:1::2", "from outside to the native LAN: lan0"},
}

// kernelRoute is the kernel's answer for a forwarded packet: the egress
// device, or "unreachable".
func kernelRoute(t *testing.T, rl *routerLab, ingress, src, dst string) string {
	t.Helper()
	out, err := rl.lab.Exec(rl.ns, "ip", "-6", "route", "get", dst, "from", src, "iif", ingress)
	// An input lookup that ends at an unreachable route is EHOSTUNREACH.
	if err != nil && strings.Contains(out, "No route to host") {
		return "unreachable"
	}
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(` dev (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ip route get %s from %s iif %s: no device in %q", dst, src, ingress, out)
	}
	return m[1]
}

// xdpRoute runs the program on a packet and says where it sent it: the
// egress (read from the neighbour MAC it wrote), or the pass counter.
func xdpRoute(rl *routerLab, frame []byte, ingress string) (string, error) {
	var answer string
	err := rl.lab.Do(rl.ns, func() error {
		verdict, out, delta, err := rl.runOnce(frame, ingress)
		if err != nil {
			return err
		}
		if verdict == xdpRedirect {
			// Encapsulated into VXLAN (vxlan.h): IPv4, UDP to 4789.
			vxlan := len(out) > 14+20+8 && out[12] == 0x08 && out[13] == 0 && out[14+9] == 17 &&
				out[14+22] == 0x12 && out[14+23] == 0xb5
			for _, li := range labIfaces {
				if bytes.Equal(out[0:6], mustMAC(li.peerMAC)) && bytes.Equal(out[6:12], mustMAC(li.mac)) {
					answer = li.name
					if vxlan {
						answer = "vxlan over " + li.name
					}
					return nil
				}
			}
			return fmt.Errorf("redirected to unknown MACs %s <- %s", net.HardwareAddr(out[0:6]), net.HardwareAddr(out[6:12]))
		}
		for i, d := range delta {
			if d.Packets != 0 {
				answer = rl.names[i]
			}
		}
		if verdict != xdpPass {
			return fmt.Errorf("verdict %s", verdictName(verdict))
		}
		return nil
	})
	return answer, err
}

// XDP's route lookups must give the kernel's answer for every case of
// source steering: bpf_fib_lookup without BPF_FIB_LOOKUP_DIRECT goes
// through the policy rules with the packet's source (net/core/filter.c
// bpf_ipv6_fib_lookup: fib6_lookup, RT6_LOOKUP_F_HAS_SADDR on input), so
// a packet from a tunnel prefix is never forwarded out of the native WAN.
// Where the kernel routes into the vxlan device, XDP encapsulates the
// packet as the device would and sends it out of the underlay (wan0)
// once the device is recorded as a kernel tunnel, and passes it
// (pass_egress_not_attached) before.
func TestSourceSteeringMatchesKernel(t *testing.T) {
	rl := newRouterLab(t)
	if err := rl.lab.MustExec(rl.ns, steeringSetup...); err != nil {
		t.Fatal(err)
	}
	vxIndex, err := rl.lab.IfIndex(rl.ns, "vx0")
	if err != nil {
		t.Fatal(err)
	}
	// What XDP must do with what the kernel routes to each device.
	expect := func(kernel string, recorded bool) string {
		switch kernel {
		case "vx0":
			if recorded {
				return "vxlan over wan0"
			}
			return "pass_egress_not_attached"
		case "unreachable":
			return "pass_unreachable"
		}
		return kernel // an attached port: redirected there
	}
	run := func(t *testing.T, recorded bool) {
		for _, c := range steeringCases {
			kernel := kernelRoute(t, rl, c.ingress, c.src, c.dst)
			opts := []frameOpt{}
			if c.ingress == "wan0" {
				opts = append(opts, to("02:00:00:00:02:01"), from("02:00:00:00:02:02"))
			}
			got, err := xdpRoute(rl, udp6(t, c.src, c.dst, opts...), c.ingress)
			if err != nil {
				t.Fatalf("%s -> %s: %v", c.src, c.dst, err)
			}
			if want := expect(kernel, recorded); got != want {
				t.Errorf("%s -> %s iif %s (%s): kernel routes to %s, so XDP should give %s; it gave %s",
					c.src, c.dst, c.ingress, c.why, kernel, want, got)
			} else {
				t.Logf("%s -> %s iif %s: kernel %s, XDP %s (%s)", c.src, c.dst, c.ingress, kernel, got, c.why)
			}
		}
	}
	t.Run("vxlan not recorded", func(t *testing.T) { run(t, false) })
	d := &Dataplane{maps: *rl.maps}
	// In the router's namespace: the loader reads the netdev.
	if err := rl.lab.Do(rl.ns, func() error {
		return d.PutKernelTunnel(KernelTunnel{Name: "vx0", Ifindex: vxIndex, Kind: "vxlan", VNI: 1, Port: 4789,
			Remote: netip.MustParseAddr("10.0.2.2")})
	}); err != nil {
		t.Fatal(err)
	}
	t.Run("vxlan recorded", func(t *testing.T) { run(t, true) })
	ts, err := d.KernelTunnels()
	if err != nil || len(ts) != 1 || ts[0].Name != "vx0" || ts[0].Remote != netip.MustParseAddr("10.0.2.2") || ts[0].Local.IsValid() ||
		ts[0].Kind != "vxlan" || ts[0].VNI != 1 || ts[0].Port != 4789 {
		t.Errorf("KernelTunnels() = %+v, %v", ts, err)
	}
	if err := d.DeleteKernelTunnel(vxIndex); err != nil {
		t.Fatal(err)
	}
	t.Run("vxlan forgotten", func(t *testing.T) { run(t, false) })
}
