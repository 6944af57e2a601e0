package main

// Feature is one column of the matrix and the tests that decide it.
type Feature struct {
	Key   string    `json:"key"`
	Title string    `json:"title"`
	Tests []TestRef `json:"tests"`
}

// TestRef names a top-level test of a package. Prefix means every test
// whose name begins with Name (TestJumbo*: the column exists before its
// tests do). CI marks the tests the CI subset keeps, so that the matrix fits
// CI's time under emulation (where a loader test takes 30-120 s, 15-25
// times the host's): every feature keeps at least one, labs before tables
// where a lab covers the table's program end to end.
type TestRef struct {
	Pkg    string `json:"pkg"` // package directory, relative to the module root
	Name   string `json:"name"`
	Prefix bool   `json:"prefix,omitempty"`
	CI     bool   `json:"ci,omitempty"`
}

// features is the matrix's columns. A test may decide more than one
// column when it exercises both (a lab through the slow path as well).
// What each test shows is in its doc comment; in short:
//   - prog.Run tables (loader): the verifier accepts the programs and they
//     produce the exact bytes, on this kernel's BPF_PROG_TEST_RUN;
//   - labs (test/lab): attach through the CLI, real traffic in namespaces.
var features = []Feature{
	{"xdp-native", "XDP native on veth", []TestRef{
		{Pkg: "loader", Name: "TestDataplane", CI: true},
		{Pkg: "loader", Name: "TestDataplaneTruncations"},
		{Pkg: "loader", Name: "TestAttachReplacesChangedProgram"},
		{Pkg: "test/lab", Name: "TestAttachDetach"},
		{Pkg: "test/lab", Name: "TestForwarding", CI: true},
	}},
	{"ipip6-fast", "ipip6 fast path", []TestRef{
		{Pkg: "loader", Name: "TestTunnelDataplane"},
		{Pkg: "loader", Name: "TestDecapCache"},
		{Pkg: "test/lab", Name: "TestTunnelKernelPeer", CI: true},
		{Pkg: "test/lab", Name: "TestTunnelSiteToSite"},
	}},
	{"ipip6-slow", "ipip6 slow path", []TestRef{
		{Pkg: "loader", Name: "TestTunnelFastPathEqualsSlowPath", CI: true},
		{Pkg: "loader", Name: "TestTunnelSlowPathDecapShort"},
		{Pkg: "loader", Name: "TestTunnelIngressLeavesOthersToNextProgram"},
		{Pkg: "test/lab", Name: "TestTunnelDSLite"},
	}},
	{"npt-fast", "NPT fast path", []TestRef{
		{Pkg: "loader", Name: "TestNPT"},
		{Pkg: "loader", Name: "TestNPTSlowPathMatchesFastPath", CI: true}, // runs the XDP translation too
		{Pkg: "loader", Name: "TestNPTKernelOracle"},
		{Pkg: "test/lab", Name: "TestSeed000"},
	}},
	{"npt-slow", "NPT slow path", []TestRef{
		{Pkg: "loader", Name: "TestNPTSlowPathMatchesFastPath", CI: true},
		{Pkg: "test/lab", Name: "TestNPTRemovedDetachesSlowPath", CI: true},
	}},
	{"ndp-proxy", "NDP proxy", []TestRef{
		{Pkg: "loader", Name: "TestNDPProxy"},
		{Pkg: "test/lab", Name: "TestNDPProxyLANNeighbor", CI: true},
	}},
	{"ct-gate", "conntrack-gated forwarding", []TestRef{
		{Pkg: "loader", Name: "TestConntrackGate"},
		{Pkg: "loader", Name: "TestConntrackGateCache"},
		{Pkg: "loader", Name: "TestConntrackGateRefresh"},
		{Pkg: "test/lab", Name: "TestConntrackGateStatefulFirewall", CI: true},
	}},
	{"vlan", "802.1Q VLAN", []TestRef{
		{Pkg: "test/lab", Name: "TestVLAN", Prefix: true, CI: true},
	}},
	{"jumbo", "jumbo frames", []TestRef{
		{Pkg: "loader", Name: "TestJumbo", Prefix: true, CI: true},
		{Pkg: "test/lab", Name: "TestJumbo", Prefix: true, CI: true},
	}},
	// Seed 001 and HE.net's tunnel broker (issue 15): in the full matrix.
	{"6in4", "6in4 fast and slow path", []TestRef{
		{Pkg: "loader", Name: "TestTunnel6in4Dataplane"},
		{Pkg: "loader", Name: "TestTunnel6in4FastPathEqualsSlowPath"},
		{Pkg: "loader", Name: "TestTunnel6in4Reassembled", Prefix: true},
		{Pkg: "loader", Name: "TestNPTOn6in4"},
		{Pkg: "test/lab", Name: "TestSixInFourBroker"},
		{Pkg: "test/lab", Name: "TestSixInFourOuterFragments"},
		{Pkg: "test/lab", Name: "TestNPTOver6in4"},
	}},
	{"vxlan", "VXLAN (seed 001)", []TestRef{
		{Pkg: "loader", Name: "TestVXLAN", Prefix: true},
		{Pkg: "loader", Name: "TestNPTOnVXLAN"},
		{Pkg: "test/lab", Name: "TestVXLAN", Prefix: true},
		{Pkg: "test/lab", Name: "TestNPTOverVXLAN"},
	}},
}

// modules are loaded in every guest before the tests: what the tests
// create or need (veth, VLAN, ip6tnl, ifb, vxlan devices; netfilter for
// the gate, the firewall and the NPT oracle; the clsact qdisc and cls_bpf
// for a TC slow path), so that a missing one shows in the guest's log
// rather than as an odd test failure. nf_conntrack before any program
// load: its kfuncs live in its module BTF.
var modules = []string{
	"veth", "8021q", "ip6_tunnel", "ifb", "vxlan", "dummy", "tun",
	"nf_conntrack", "nf_nat", "nf_tables", "nft_ct", "nft_nat", "nft_chain_nat", "nft_masq",
	"nft_fib_inet", "nft_reject_inet", "nft_limit", "nf_conntrack_netlink", "nf_flow_table", "nft_flow_offload",
	"ip_tables", "iptable_filter", "iptable_nat", "ip6_tables", "ip6table_filter", "ip6table_mangle", "ip6table_nat",
	"ip6t_NPT", "xt_conntrack",
	"sch_ingress", "cls_bpf", "act_bpf",
}
