package benchprog

// Benchmark programs (make bench): the circulating generator, the XDP_PASS
// baseline, the wire (the harness's ceiling) and the bare forwarder that
// xdprouter's forward path is measured against. Outputs are committed, as in
// ../generate.go.
//
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel gen ../../bpf/bench/xdp_gen.c
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel -type sink_count sink ../../bpf/bench/xdp_sink.c
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel pass ../../bpf/bench/xdp_pass.c
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel bareFwd ../../bpf/bench/xdp_bare_fwd.c
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel wire ../../bpf/bench/xdp_wire.c
