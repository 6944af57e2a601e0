//go:build ignore

/* Packet generator for BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES.
 *
 * Live frames are recycled from a page pool without being reset, and the
 * forwarder downstream rewrites them in place (MACs, TTL, checksum). So every
 * run writes the whole frame back from the template before sending it;
 * otherwise the router would see TTL 63, 62, ... and stop forwarding after
 * 64 rounds.
 *
 * The template is read-only data set from Go before load, so the verifier
 * knows frame_len and prunes the copy loop to exactly the words needed. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define GEN_MAX_FRAME 256

const volatile __u32 frame_len = 0;
const volatile __u64 frame[GEN_MAX_FRAME / 8] = {};

/* restore copies the template over the packet; frame_len is a multiple of 8
 * (Go pads the template) and equals the length of the run's data_in. */
static __always_inline int restore(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 *w = data;

#pragma unroll
	for (int i = 0; i < GEN_MAX_FRAME / 8; i++) {
		if (i * 8 >= frame_len)
			break;
		if ((void *)(w + i + 1) > end)
			return -1;
		w[i] = frame[i];
	}
	return 0;
}

/* xdp_gen sends the template out of the interface the run is bound to
 * (ctx ingress_ifindex): in live mode the kernel turns XDP_TX into a
 * redirect to that device, so the frame crosses the veth to the router. */
SEC("xdp")
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

SEC("xdp")
int xdp_gen_call(struct xdp_md *ctx)
{
	if (restore(ctx))
		return XDP_ABORTED;
	bpf_tail_call(ctx, &gen_target, 0);
	return XDP_ABORTED; /* empty slot: make the mistake visible */
}

char _license[] SEC("license") = "GPL";
