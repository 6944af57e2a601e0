package loader

// The one place where BPF objects are generated. BPF_CLANG and BPF_CFLAGS
// come from the Makefile (`make generate`); the .go and .o outputs are
// committed so that `go build` needs no clang.
//
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel -type xdpr_counter_val -type xdpr_iface -type xdpr_role -type xdpr_xdp_mode -type xdpr_tunnel -type xdpr_tunnel_ep -type xdpr_tunnel_decap -type xdpr_tun_nexthop -type xdpr_ndp_mode -type xdpr_lpm6_key -type xdpr_npt_rule -type xdpr_npt64_key -type xdpr_ndp_entry -type xdpr_feature_word -type xdpr_npt_cache_entry -type xdpr_decap_cache_entry router ../bpf/xdp_router.c
//
// Benchmark programs (make bench): generator, sink, XDP_PASS baseline and the
// bare forwarder that xdprouter's forward path is measured against.
//
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel -output-dir benchprog -go-package benchprog gen ../bpf/bench/xdp_gen.c
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel -output-dir benchprog -go-package benchprog -type sink_count sink ../bpf/bench/xdp_sink.c
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel -output-dir benchprog -go-package benchprog pass ../bpf/bench/xdp_pass.c
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel -output-dir benchprog -go-package benchprog bareFwd ../bpf/bench/xdp_bare_fwd.c
