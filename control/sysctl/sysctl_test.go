package sysctl

import "testing"

func TestName(t *testing.T) {
	for path, want := range map[string]string{
		"net/ipv4/ip_forward":              "net.ipv4.ip_forward",
		"net/ipv6/conf/eth0.100/accept_ra": "net.ipv6.conf.eth0/100.accept_ra",
	} {
		if got := Name(path); got != want {
			t.Errorf("Name(%q) = %q, want %q", path, got, want)
		}
	}
}
