//go:build ignore

/* The benchmark's far end, and its generator when frames circulate.
 *
 * It counts every frame per CPU, and separately those whose TTL / hop limit
 * is the one a single forwarding hop leaves, so the benchmark can tell
 * forwarded frames from anything else arriving (and a forwarder that did
 * not decrement). With an entry in sink_relay it also sends every such frame
 * on again as a fresh copy of the template (restore.h) through that devmap
 * entry, which holds the generator's port, so a few hundred frames injected
 * once keep going round through the router: the circulating generator for
 * kernels that refuse BPF_F_TEST_XDP_LIVE_FRAMES. A devmap holds its device
 * by reference, so the entry may name a port in another namespace (gen's),
 * and the whole loop runs in softirq on the CPU the frames were injected
 * from (a veth schedules its peer's NAPI on the sending CPU). Deleting the
 * entry stops the circulation: the frames are dropped where they arrive. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "restore.h"

struct sink_count {
	__u64 packets;
	__u64 hop_ok;  /* IPv4 TTL or IPv6 hop limit == expect_hops */
	__u64 relayed; /* of those, sent on again as the template */
};

const volatile __u8 expect_hops = 63;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_count);
} sink_counts SEC(".maps");

/* Slot 0: where relayed frames go; empty, they are dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sink_relay SEC(".maps");

SEC("xdp.frags")
int xdp_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct sink_count *c;
	__u32 key = 0;
	__u8 hops = 0;

	c = bpf_map_lookup_elem(&sink_counts, &key);
	if (!c)
		return XDP_DROP;
	c->packets++;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > end)
			return XDP_DROP;
		hops = iph->ttl;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return XDP_DROP;
		hops = ip6->hop_limit;
	}
	if (!hops || hops != expect_hops)
		return XDP_DROP;
	c->hop_ok++;
	if (!frame_len || restore(ctx))
		return XDP_DROP;
	if (bpf_redirect_map(&sink_relay, 0, XDP_DROP) != XDP_REDIRECT)
		return XDP_DROP;
	c->relayed++;
	return XDP_REDIRECT;
}

char _license[] SEC("license") = "GPL";
