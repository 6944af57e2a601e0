/* The benchmark frame template and the copy that restores it over a packet,
 * shared by the generator (test runs) and the circulator (live traffic). */
#ifndef BENCH_RESTORE_H
#define BENCH_RESTORE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define GEN_MAX_FRAME 256

/* Read-only data set from Go before load, so the verifier knows frame_len
 * and prunes the copy loops to exactly the words and bytes needed. */
const volatile __u32 frame_len = 0;
const volatile __u64 frame[GEN_MAX_FRAME / 8] = {};

/* restore copies the template over the packet: whole words, then the last
 * frame_len % 8 bytes one by one. A packet of another length (a tunnel's
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
		if (i * 8 + 8 > frame_len)
			break;
		if ((void *)(w + i + 1) > end)
			return -1;
		w[i] = frame[i];
	}
	/* The tail: a frame whose length the router keeps exact (an NS the
	 * NDP proxy answers in place) must be restored to that length, or
	 * every round would move its head and use up the headroom. */
	__u8 *b = data;
	const volatile __u8 *t = (const volatile __u8 *)frame;
	__u32 base = frame_len & ~7U;

#pragma unroll
	for (int j = 0; j < 7; j++) {
		if (base + j >= frame_len)
			break;
		if ((void *)(b + base + j + 1) > end)
			return -1;
		b[base + j] = t[base + j];
	}
	return 0;
}

#endif
