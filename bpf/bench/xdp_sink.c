//go:build ignore

/* Counting sink at the far end of the benchmark topology: counts every frame
 * per CPU and drops it. It also counts frames whose TTL / hop limit is the one
 * a single forwarding hop leaves, so the benchmark can tell forwarded frames
 * from anything else arriving (and a forwarder that did not decrement). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct sink_count {
	__u64 packets;
	__u64 hop_ok; /* IPv4 TTL or IPv6 hop limit == expect_hops */
};

const volatile __u8 expect_hops = 63;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_count);
} sink_counts SEC(".maps");

SEC("xdp")
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
	if (hops && hops == expect_hops)
		c->hop_ok++;
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
