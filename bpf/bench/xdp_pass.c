//go:build ignore

/* The "kernel forwarding" baseline: with this on the router's interfaces the
 * veths run in XDP mode exactly as in the other scenarios, and every frame
 * goes up to the kernel's own forwarding path. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp.frags")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
