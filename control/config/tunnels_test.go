package config

import (
	"net/netip"
	"strings"
	"testing"
)

const tunnelBase = `
wan: {interface: wan0, token: "::feed"}
lan: [{interface: lan0, ipv4: 192.168.1.1/24}]
`

func TestParseTunnels(t *testing.T) {
	c, err := Parse(strings.NewReader(tunnelBase + `
tunnels:
  - name: transix
    mode: ipip6
    remote: 2404:8e00::feed:140
    local: 2001:db8:1::feed
    ipv4-address: 203.0.113.7
    nat44: true
    routes: [0.0.0.0/0]
  - name: site-b
    remote: 2001:db8:b::1
    local: auto
    routes: [10.20.0.0/16, 10.21.0.0/16]
    mtu: 1452
    hop-limit: 32
  - name: aftr
    remote: gw.transix.jp
    local: 2001:db8:1::2
    provisioning: {url: "http://update.transix.jp/request", username: user1, password-file: /etc/xdprouter/transix.pw}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tunnels) != 3 {
		t.Fatalf("%d tunnels", len(c.Tunnels))
	}
	tr, sb, dn := c.Tunnels[0], c.Tunnels[1], c.Tunnels[2]
	if tr.Name != "transix" || tr.Mode != "ipip6" || tr.Remote != netip.MustParseAddr("2404:8e00::feed:140") ||
		tr.Local != netip.MustParseAddr("2001:db8:1::feed") || tr.MTU != 1460 || tr.HopLimit != 64 ||
		tr.IPv4Address != netip.MustParseAddr("203.0.113.7") || !tr.NAT44 ||
		len(tr.Routes) != 1 || tr.Routes[0] != netip.MustParsePrefix("0.0.0.0/0") {
		t.Errorf("transix = %+v", tr)
	}
	if !sb.LocalAuto || sb.Local.IsValid() || sb.MTU != 1452 || sb.HopLimit != 32 || sb.NAT44 || sb.IPv4Address.IsValid() || len(sb.Routes) != 2 {
		t.Errorf("site-b = %+v", sb)
	}
	if p := dn.Provisioning; p == nil || p.URL != "http://update.transix.jp/request" || p.Username != "user1" || p.PasswordFile != "/etc/xdprouter/transix.pw" {
		t.Errorf("aftr provisioning = %+v", p)
	}
	if dn.RemoteName != "gw.transix.jp" || dn.Remote.IsValid() {
		t.Errorf("aftr = %+v", dn)
	}
}

// Each bad tunnel must be rejected with an error naming the field.
func TestParseTunnelErrors(t *testing.T) {
	one := func(fields string) string {
		return tunnelBase + "tunnels:\n  - {" + fields + "}\n"
	}
	ok := "name: t0, remote: '2001:db8:f::1', local: '2001:db8:1::feed'"
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", one(ok + ", mtuu: 1"), "tunnels[0].mtuu: unknown key"},
		{"no name", one("remote: '2001:db8:f::1', local: '2001:db8:1::2'"), "tunnels[0].name: required"},
		{"long name", one("name: abcdefghijklmnop, remote: '2001:db8:f::1', local: '2001:db8:1::2'"), "tunnels[0].name: \"abcdefghijklmnop\" is longer than 15"},
		{"mode", one(ok + ", mode: gre"), "tunnels[0].mode: \"gre\" is not supported"},
		{"no remote", one("name: t0, local: '2001:db8:1::2'"), "tunnels[0].remote: required"},
		{"remote v4", one("name: t0, remote: 192.0.2.1, local: '2001:db8:1::2'"), "tunnels[0].remote: \"192.0.2.1\" is an IPv4 address"},
		{"remote link-local", one("name: t0, remote: 'fe80::1', local: '2001:db8:1::2'"), "tunnels[0].remote: \"fe80::1\" is not a global unicast"},
		{"remote junk", one("name: t0, remote: 'not an address', local: '2001:db8:1::2'"), "tunnels[0].remote: \"not an address\" is not an IPv6 address"},
		{"no local", one("name: t0, remote: '2001:db8:f::1'"), "tunnels[0].local: required"},
		{"local multicast", one("name: t0, remote: '2001:db8:f::1', local: 'ff02::1'"), "tunnels[0].local: \"ff02::1\" is not a global unicast"},
		{"local is remote", one("name: t0, remote: '2001:db8:f::1', local: '2001:db8:f::1'"), "tunnels[0].local: 2001:db8:f::1 is also the remote"},
		{"auto without token", "wan: {interface: wan0}\ntunnels: [{name: t0, remote: '2001:db8:f::1', local: auto}]", "tunnels[0].local: auto is the WAN prefix plus wan.token"},
		{"no wan", "lan: [{interface: lan0}]\ntunnels: [{name: t0, remote: '2001:db8:f::1', local: '2001:db8:1::2'}]", "tunnels[0]: a tunnel leaves by the WAN"},
		{"route v6", one(ok + ", routes: ['2001:db8::/32']"), "tunnels[0].routes[0]: \"2001:db8::/32\" is not an IPv4 prefix"},
		{"route host bits", one(ok + ", routes: [10.20.1.0/16]"), "tunnels[0].routes[0]: 10.20.1.0/16 has host bits set; did you mean 10.20.0.0/16"},
		{"route twice", one(ok + ", routes: [10.0.0.0/8, 10.0.0.0/8]"), "tunnels[0].routes[1]: 10.0.0.0/8 is listed twice"},
		{"route inside lan", one(ok + ", routes: [192.168.1.128/25]"), "tunnels[0].routes[0]: 192.168.1.128/25 lies inside the LAN subnet 192.168.1.0/24"},
		{"provisioning no url", one(ok + ", provisioning: {username: u, password-file: /etc/p}"), "tunnels[0].provisioning.url: required"},
		{"provisioning ftp", one(ok + ", provisioning: {url: 'ftp://x/r', username: u, password-file: /etc/p}"), "tunnels[0].provisioning.url: \"ftp://x/r\": the scheme must be http or https"},
		{"provisioning creds in url", one(ok + ", provisioning: {url: 'http://u:p@x/r', username: u, password-file: /etc/p}"), "tunnels[0].provisioning.url: has credentials in it"},
		{"provisioning password in query", one(ok + ", provisioning: {url: 'http://x/r?password=p', username: u, password-file: /etc/p}"), "tunnels[0].provisioning.url: has a username or password parameter"},
		{"provisioning no username", one(ok + ", provisioning: {url: 'http://x/r', password-file: /etc/p}"), "tunnels[0].provisioning.username: required"},
		{"provisioning relative file", one(ok + ", provisioning: {url: 'http://x/r', username: u, password-file: p}"), "tunnels[0].provisioning.password-file: \"p\" is not an absolute"},
		{"provisioning unknown key", one(ok + ", provisioning: {url: 'http://x/r', username: u, password: p}"), "tunnels[0].provisioning.password: unknown key"},
		{"mtu low", one(ok + ", mtu: 500"), "tunnels[0].mtu: 500 is out of range 576-8960"},
		{"mtu high", one(ok + ", mtu: 9000"), "tunnels[0].mtu: 9000 is out of range"},
		{"hop limit", one(ok + ", hop-limit: 0"), "tunnels[0].hop-limit: 0 is out of range 1-255"},
		{"ipv4-address prefix", one(ok + ", ipv4-address: 203.0.113.7/32"), "tunnels[0].ipv4-address: \"203.0.113.7/32\" is not an IPv4 address"},
		{"ipv4-address multicast", one(ok + ", ipv4-address: 224.0.0.1"), "tunnels[0].ipv4-address: 224.0.0.1 is not a unicast"},
		{"nat44 without address", one(ok + ", nat44: true"), "tunnels[0].nat44: needs ipv4-address"},
		{"name is an interface", one("name: lan0, remote: '2001:db8:f::1', local: '2001:db8:1::2'"), "tunnels[0].name: \"lan0\" is already an interface of wan/lan"},
		{"same name twice", tunnelBase + "tunnels:\n  - {" + ok + "}\n  - {name: t0, remote: '2001:db8:f::2', local: '2001:db8:1::feed'}\n",
			"tunnels[1].name: \"t0\" is already used by tunnels[0].name"},
		{"same pair twice", tunnelBase + "tunnels:\n  - {" + ok + "}\n  - {name: t1, remote: '2001:db8:f::1', local: '2001:db8:1::feed'}\n",
			"tunnels[1]: remote 2001:db8:f::1 and local 2001:db8:1::feed are already tunnels[0]'s"},
		{"same route in two tunnels", tunnelBase + "tunnels:\n  - {" + ok + ", routes: [0.0.0.0/0]}\n  - {name: t1, remote: '2001:db8:f::2', local: '2001:db8:1::feed', routes: [0.0.0.0/0]}\n",
			"tunnels[1].routes[0]: 0.0.0.0/0 is already routed into tunnels[0]"},
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

// Overlapping prefixes of different lengths in different tunnels are the
// point of longest-prefix routing and are accepted.
func TestParseTunnelsLongestPrefix(t *testing.T) {
	_, err := Parse(strings.NewReader(tunnelBase + `
tunnels:
  - {name: aftr, remote: '2001:db8:f::1', local: '2001:db8:1::feed', routes: [0.0.0.0/0]}
  - {name: site, remote: '2001:db8:b::1', local: '2001:db8:1::feed', routes: [10.20.0.0/16]}
`))
	if err != nil {
		t.Fatal(err)
	}
}
