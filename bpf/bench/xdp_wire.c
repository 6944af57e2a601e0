//go:build ignore

/* The harness's ceiling: a "router" that does nothing but decrement the
 * TTL / hop limit (so the sink counts its frames as forwarded) and redirect
 * every frame to the one port in wire_out. Whatever rate the circulating
 * generator reaches through it is what the harness itself can carry; the
 * routers measured must stay well below it for their figures to be theirs. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} wire_out SEC(".maps");

SEC("xdp.frags")
int xdp_wire(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > end)
			return XDP_DROP;
		iph->ttl--; /* the sink does not check the header checksum */
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return XDP_DROP;
		ip6->hop_limit--;
	}
	return bpf_redirect_map(&wire_out, 0, XDP_DROP);
}

char _license[] SEC("license") = "GPL";
