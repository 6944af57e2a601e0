/* The benchmark frame template and the copy that restores it over a packet,
 * shared by the generator (test runs) and the circulator (live traffic). */
#ifndef BENCH_RESTORE_H
#define BENCH_RESTORE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define GEN_MAX_FRAME 256

/* Read-only data set from Go before load, so the verifier knows frame_len
 * and prunes the copy loop to exactly the words needed. */
const volatile __u32 frame_len = 0;
const volatile __u64 frame[GEN_MAX_FRAME / 8] = {};

/* restore copies the template over the packet; frame_len is a multiple of 8
 * (Go pads the template). A packet of another length (a tunnel's
 * encapsulation grew it at the head, a decapsulation shrank it) first has
 * its head moved so the frame starts where the template's would. */
static __always_inline int restore(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	long cur = end - data;
	__u64 *w;

	if (cur != (long)frame_len) {
		if (bpf_xdp_adjust_head(ctx, (int)(cur - (long)frame_len)))
			return -1;
		/* adjust_head invalidates every packet pointer. */
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
	}
	w = data;

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

#endif
