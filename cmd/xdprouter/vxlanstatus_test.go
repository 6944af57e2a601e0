package main

import (
	"testing"

	"github.com/xdprouter/xdprouter/loader"
)

func TestVXLANCounterLine(t *testing.T) {
	for _, c := range []struct {
		in   []loader.Counter
		want string
	}{
		{nil, ""},
		{[]loader.Counter{{Name: "pass_tunnel_dev"}, {Name: "vxlan_encap", Packets: 5}, {Name: "vxlan_decap"}, {Name: "pass_vxlan_no_neigh", Packets: 2}},
			"vxlan in XDP: vxlan_encap 5, vxlan_decap 0; to the kernel: pass_vxlan_no_neigh 2"},
		{[]loader.Counter{{Name: "vxlan_encap", Packets: 1}, {Name: "vxlan_decap", Packets: 3}, {Name: "pass_vxlan_csum"}},
			"vxlan in XDP: vxlan_encap 1, vxlan_decap 3"},
	} {
		if got := vxlanCounterLine(c.in); got != c.want {
			t.Errorf("vxlanCounterLine(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
