//go:build ignore

/* Packet generator for BPF_PROG_TEST_RUN, live (BPF_F_TEST_XDP_LIVE_FRAMES,
 * where the kernel permits it) and not (ns/packet of another program).
 *
 * Live frames are recycled from a page pool without being reset, and the
 * forwarder downstream rewrites them in place (MACs, TTL, checksum). So every
 * run writes the whole frame back from the template before sending it;
 * otherwise the router would see TTL 63, 62, ... and stop forwarding after
 * 64 rounds. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "restore.h"

/* xdp_gen sends the template out of the interface the run is bound to
 * (ctx ingress_ifindex): in live mode the kernel turns XDP_TX into a
 * redirect to that device, so the frame crosses the veth to the router. */
SEC("xdp.frags")
int xdp_gen(struct xdp_md *ctx)
{
	if (restore(ctx))
		return XDP_ABORTED;
	return XDP_TX;
}

/* For ns/packet figures without live frames: a plain repeated test run
 * reuses one buffer, so a forwarder under test would see its own output
 * again. xdp_gen_call restores the frame and tail-calls the program in slot 0;
 * the cost of that harness is measured with XDP_PASS in the slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} gen_target SEC(".maps");

/* xdp.frags like every program here: gen_target takes xdprouter's
 * xdpr_main (xdp.frags), and a program array holds programs of one kind
 * only, that of the program that uses it. */
SEC("xdp.frags")
int xdp_gen_call(struct xdp_md *ctx)
{
	if (restore(ctx))
		return XDP_ABORTED;
	bpf_tail_call(ctx, &gen_target, 0);
	return XDP_ABORTED; /* empty slot: make the mistake visible */
}

char _license[] SEC("license") = "GPL";
