package loader

// The one place where BPF objects are generated. BPF_CLANG and BPF_CFLAGS
// come from the Makefile (`make generate`); the .go and .o outputs are
// committed so that `go build` needs no clang.
//
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel -type xdpr_counter_val -type xdpr_iface -type xdpr_role -type xdpr_xdp_mode -type xdpr_tunnel -type xdpr_tunnel_ep -type xdpr_tunnel_decap -type xdpr_tun_nexthop -type xdpr_ndp_mode -type xdpr_lpm6_key -type xdpr_npt_rule -type xdpr_npt64_key -type xdpr_ndp_entry -type xdpr_ndp_foreign_entry -type xdpr_ndp_foreign_kind -type xdpr_feature_word -type xdpr_npt_cache_entry -type xdpr_decap_cache_entry -type xdpr_ct_cache_entry -type xdpr_src_filter -type xdpr_src_net -type xdpr_src6_filter -type xdpr_src6_net -type xdpr_ktunnel -type xdpr_vxlan -type xdpr_vxlan_ep router ../bpf/xdp_router.c

// The benchmark programs are generated in benchprog/generate.go.
