/* Maps shared by all attached interfaces. Pinned by name under the bpffs
 * directory chosen by the loader, so every program instance and every
 * xdprouter command sees the same state. */
#ifndef XDPR_MAPS_H
#define XDPR_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "structs.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPR_CNT__MAX);
	__type(key, __u32); /* enum xdpr_counter */
	__type(value, struct xdpr_counter_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPR_MAX_IFACES);
	__type(key, __u32); /* ifindex */
	__type(value, struct xdpr_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_ifaces SEC(".maps");

/* Egress ports for bpf_redirect_map: only attached interfaces are here, so a
 * route out of an interface xdprouter does not manage falls back to the
 * kernel. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, XDPR_MAX_IFACES);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* ifindex */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_tx_ports SEC(".maps");

/* count records one packet under reason c and returns action, so call sites
 * read as `return count(ctx, REASON, XDP_PASS);`. */
static __always_inline int count(struct xdp_md *ctx, __u32 c, int action)
{
	struct xdpr_counter_val *v = bpf_map_lookup_elem(&xdpr_counters, &c);

	if (v) {
		v->packets++;
		v->bytes += ctx->data_end - ctx->data;
	}
	return action;
}

/* pass hands the packet to the kernel under reason. One out-of-line copy
 * serves all ~30 pass sites: inlined, they made the program five times the
 * size of a bare forwarder and crowded the forward path out of the I-cache. */
static __noinline int pass(struct xdp_md *ctx, __u32 reason)
{
	return count(ctx, reason, XDP_PASS);
}

#endif
