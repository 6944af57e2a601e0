package config

import (
	"net/netip"
	"strings"
	"testing"
)

const firewallBase = `
wan: {interface: wan0, token: "::feed", dhcpv6-pd: {}}
lan:
  - {interface: lan0, sla-id: 1, ipv4: 192.168.1.1/24}
  - {interface: lan1, sla-id: 2, ipv4: 10.1.0.1/16}
tunnels:
  - {name: fixed, remote: "2404:8e00::feed:140", local: auto, ipv4-address: 203.0.113.7, nat44: true, routes: [0.0.0.0/0]}
  - {name: dslite, remote: "2001:db8:f::1", local: auto}
`

func TestParseFirewallDefault(t *testing.T) {
	c, err := Parse(strings.NewReader(firewallBase))
	if err != nil {
		t.Fatal(err)
	}
	if c.Firewall.Mode != FirewallDefault || !c.Firewall.On() || len(c.Firewall.Allow)+len(c.Firewall.Forward) != 0 {
		t.Errorf("firewall without a section = %+v, want mode default and nothing else", c.Firewall)
	}
}

func TestParseFirewall(t *testing.T) {
	c, err := Parse(strings.NewReader(firewallBase + `
firewall:
  mode: default
  allow:
    - {to: "::10", proto: tcp, port: 22, from: "2001:db8:ff::/48", comment: ssh}
    - {to: "2001:db8:1:1::/64", proto: udp, ports: [53, "60000-61000"]}
    - {to: 192.168.1.0/25, from: 10.20.0.0/16}
    - {to: 10.1.2.3, proto: icmp}
  forward:
    - {tunnel: fixed, proto: tcp, port: 8080, to: 192.168.1.10, to-port: 80, comment: web}
    - {tunnel: fixed, proto: udp, port: 8080, to: 10.1.0.20}
`))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Firewall
	if len(f.Allow) != 4 || len(f.Forward) != 2 {
		t.Fatalf("firewall = %+v", f)
	}
	ssh := f.Allow[0]
	if ssh.ToIID != netip.MustParseAddr("::10") || ssh.To.IsValid() || ssh.Proto != "tcp" ||
		len(ssh.Ports) != 1 || ssh.Ports[0] != (PortRange{22, 22}) || ssh.From != netip.MustParsePrefix("2001:db8:ff::/48") || ssh.Comment != "ssh" {
		t.Errorf("allow[0] = %+v", ssh)
	}
	if dns := f.Allow[1]; dns.To != netip.MustParsePrefix("2001:db8:1:1::/64") || len(dns.Ports) != 2 || dns.Ports[1] != (PortRange{60000, 61000}) {
		t.Errorf("allow[1] = %+v", dns)
	}
	if v4 := f.Allow[2]; !v4.IPv4() || v4.Proto != "any" || v4.From != netip.MustParsePrefix("10.20.0.0/16") {
		t.Errorf("allow[2] = %+v", v4)
	}
	if h := f.Allow[3]; h.To != netip.MustParsePrefix("10.1.2.3/32") || h.Proto != "icmp" {
		t.Errorf("allow[3] = %+v", h)
	}
	want := PortForward{Tunnel: "fixed", Addr: netip.MustParseAddr("203.0.113.7"), Proto: "tcp", Port: 8080,
		To: netip.MustParseAddr("192.168.1.10"), ToPort: 80, Comment: "web"}
	if f.Forward[0] != want {
		t.Errorf("forward[0] = %+v, want %+v", f.Forward[0], want)
	}
	if f.Forward[1].ToPort != 8080 {
		t.Errorf("forward[1].ToPort = %d, want the port itself", f.Forward[1].ToPort)
	}
}

func TestParseFirewallOff(t *testing.T) {
	c, err := Parse(strings.NewReader(firewallBase + `
firewall:
  mode: "off"
  forward: [{tunnel: fixed, proto: tcp, port: 25, to: 192.168.1.25}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Firewall.On() || len(c.Firewall.Forward) != 1 {
		t.Errorf("firewall = %+v: want off with its port forward kept (NAT)", c.Firewall)
	}
}

// Every bad firewall entry is rejected with an error naming the field.
func TestParseFirewallErrors(t *testing.T) {
	allow := func(entries ...string) string {
		return firewallBase + "firewall:\n  allow:\n    - " + strings.Join(entries, "\n    - ") + "\n"
	}
	forward := func(entries ...string) string {
		return firewallBase + "firewall:\n  forward:\n    - " + strings.Join(entries, "\n    - ") + "\n"
	}
	const static = `
wan: {interface: wan0}
lan: [{interface: lan0, ipv4: 192.168.1.1/24}]
npt: [{interface: wan0, inside: "fd00:1::/64", outside: "2001:db8:9::/64"}]
`
	for _, tc := range []struct{ name, yaml, want string }{
		{"mode", firewallBase + "firewall: {mode: strict}", `firewall.mode: "strict" is not one of default, off`},
		{"unknown key", firewallBase + "firewall: {policy: drop}", "firewall.policy: unknown key"},
		{"unknown allow key", allow("{to: '::10', dport: 22}"), "firewall.allow[0].dport: unknown key"},
		{"allow with mode off", firewallBase + "firewall: {mode: 'off', allow: [{to: '::10'}]}", "firewall.allow: pinholes are rules of the default firewall, and mode is off"},
		{"allow no to", allow("{proto: tcp, port: 22}"), "firewall.allow[0].to: required"},
		{"allow junk to", allow("{to: lanhost}"), `firewall.allow[0].to: "lanhost" is not an address, prefix or interface identifier`},
		{"allow host bits", allow("{to: '2001:db8:1:1::1/64'}"), `firewall.allow[0].to: "2001:db8:1:1::1/64" is not an address`},
		{"allow link-local", allow("{to: 'fe80::1'}"), "firewall.allow[0].to: fe80::1/128 is not a global unicast or ULA address"},
		{"allow multicast", allow("{to: 'ff02::1'}"), "firewall.allow[0].to: ff02::1/128 is not a global unicast"},
		{"allow v4 outside lan", allow("{to: 10.9.9.9}"), "firewall.allow[0].to: 10.9.9.9/32 is not in any lan ipv4 subnet"},
		{"allow v4 wider than lan", allow("{to: 192.168.0.0/16}"), "firewall.allow[0].to: 192.168.0.0/16 is not in any lan ipv4 subnet"},
		{"allow v6 outside static lan", static + "firewall: {allow: [{to: '2001:db8:5::1'}]}", "firewall.allow[0].to: 2001:db8:5::1/128 is not in any LAN prefix (fd00:1::/64)"},
		{"allow iid without lan", "wan: {interface: wan0}\nfirewall: {allow: [{to: '::10'}]}", "firewall.allow[0].to: ::10 is an interface identifier in the LAN /64s, and there is no lan"},
		{"allow proto", allow("{to: '::10', proto: sctp}"), `firewall.allow[0].proto: "sctp" is not one of tcp, udp, icmpv6, icmp, any`},
		{"allow icmpv6 to v4", allow("{to: 192.168.1.5, proto: icmpv6}"), "firewall.allow[0].proto: icmpv6 to the IPv4 address"},
		{"allow icmp to v6", allow("{to: '::10', proto: icmp}"), "firewall.allow[0].proto: icmp is IPv4's"},
		{"allow port without proto", allow("{to: '::10', port: 22}"), "firewall.allow[0].port: a port needs proto tcp or udp (proto is any)"},
		{"allow port and ports", allow("{to: '::10', proto: tcp, port: 22, ports: [23]}"), "firewall.allow[0].ports: give port or ports, not both"},
		{"allow port zero", allow("{to: '::10', proto: tcp, port: 0}"), "firewall.allow[0].port: 0 is out of range 1-65535"},
		{"allow port high", allow("{to: '::10', proto: udp, ports: [53, 70000]}"), "firewall.allow[0].ports[1]: 70000 is out of range 1-65535"},
		{"allow port junk", allow("{to: '::10', proto: udp, ports: [dns]}"), `firewall.allow[0].ports[0]: "dns" is not a port`},
		{"allow range backwards", allow("{to: '::10', proto: udp, ports: ['9-8']}"), `firewall.allow[0].ports[0]: "9-8" ends before it starts`},
		{"allow from junk", allow("{to: '::10', from: anywhere}"), `firewall.allow[0].from: "anywhere" is not an address or prefix`},
		{"allow from family", allow("{to: '::10', from: 10.0.0.0/8}"), "firewall.allow[0].from: 10.0.0.0/8 and to are of different address families"},
		{"allow second entry", allow("{to: '::10'}", "{to: 172.16.0.1}"), "firewall.allow[1].to: 172.16.0.1/32 is not in any lan ipv4 subnet"},
		{"forward no tunnel", forward("{proto: tcp, port: 80, to: 192.168.1.10}"), "firewall.forward[0].tunnel: required"},
		{"forward unknown tunnel", forward("{tunnel: nope, proto: tcp, port: 80, to: 192.168.1.10}"), `firewall.forward[0].tunnel: "nope" is not a configured tunnel`},
		{"forward tunnel without ipv4", forward("{tunnel: dslite, proto: tcp, port: 80, to: 192.168.1.10}"), `firewall.forward[0].tunnel: "dslite" has no ipv4-address`},
		{"forward no proto", forward("{tunnel: fixed, port: 80, to: 192.168.1.10}"), "firewall.forward[0].proto: required"},
		{"forward proto", forward("{tunnel: fixed, proto: icmp, port: 80, to: 192.168.1.10}"), `firewall.forward[0].proto: "icmp" is not one of tcp, udp`},
		{"forward no port", forward("{tunnel: fixed, proto: tcp, to: 192.168.1.10}"), "firewall.forward[0].port: required"},
		{"forward port range", forward("{tunnel: fixed, proto: tcp, port: 65536, to: 192.168.1.10}"), "firewall.forward[0].port: 65536 is out of range 1-65535"},
		{"forward to-port range", forward("{tunnel: fixed, proto: tcp, port: 80, to-port: 0, to: 192.168.1.10}"), "firewall.forward[0].to-port: 0 is out of range"},
		{"forward no to", forward("{tunnel: fixed, proto: tcp, port: 80}"), "firewall.forward[0].to: required"},
		{"forward to v6", forward("{tunnel: fixed, proto: tcp, port: 80, to: '2001:db8::1'}"), `firewall.forward[0].to: "2001:db8::1" is not an IPv4 address`},
		{"forward to outside lan", forward("{tunnel: fixed, proto: tcp, port: 80, to: 192.168.1.10}", "{tunnel: fixed, proto: tcp, port: 81, to: 10.9.9.9}"),
			"firewall.forward[1].to: 10.9.9.9 is not in any lan ipv4 subnet"},
		{"forward to router", forward("{tunnel: fixed, proto: tcp, port: 80, to: 192.168.1.1}"), "firewall.forward[0].to: 192.168.1.1 is the router's own address on lan0"},
		{"forward duplicate", forward("{tunnel: fixed, proto: tcp, port: 80, to: 192.168.1.10}", "{tunnel: fixed, proto: tcp, port: 80, to: 192.168.1.11}"),
			"firewall.forward[1].port: tcp 80 on tunnel fixed is already forwarded by firewall.forward[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// The same (proto, port) on two protocols or two tunnels is no duplicate;
// with delegated LAN prefixes any global IPv6 destination waits for the
// pass to check it against the prefixes in force.
func TestParseFirewallAccepted(t *testing.T) {
	_, err := Parse(strings.NewReader(firewallBase + `
firewall:
  allow: [{to: "2001:db8:77::5", proto: icmpv6}]
  forward:
    - {tunnel: fixed, proto: tcp, port: 53, to: 192.168.1.53}
    - {tunnel: fixed, proto: udp, port: 53, to: 192.168.1.53}
`))
	if err != nil {
		t.Fatal(err)
	}
}
