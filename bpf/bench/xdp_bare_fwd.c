//go:build ignore

/* The benchmark's yardstick: the least an XDP fib-lookup forwarder has to do
 * (in the manner of the kernel's samples/bpf/xdp_fwd), with no counters and
 * no checks beyond TTL. xdprouter's forward path is measured against it, so
 * the difference is the price of xdprouter's safety checks and counting. It
 * shares nothing with bpf/include on purpose: a change there must not move the
 * yardstick. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10

/* Egress ports by ifindex, filled from Go. A hash devmap, as xdprouter's
 * xdpr_tx_ports, so both pay the same redirect lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} bare_tx_ports SEC(".maps");

/* RFC 1624 incremental update for TTL - 1, as the kernel's ip_decrease_ttl. */
static __always_inline void ip_decrease_ttl(struct iphdr *iph)
{
	__u32 check = iph->check;

	check += bpf_htons(0x0100);
	iph->check = (__u16)(check + (check >= 0xffff));
	iph->ttl--;
}

/* redirect looks the route up and, on success, rewrites the MACs and arms the
 * redirect; it returns XDP_PASS with the frame untouched otherwise. */
static __always_inline int redirect(struct xdp_md *ctx, struct ethhdr *eth,
				    struct bpf_fib_lookup *p)
{
	if (bpf_fib_lookup(ctx, p, sizeof(*p), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;
	if (bpf_redirect_map(&bare_tx_ports, p->ifindex, XDP_PASS) != XDP_REDIRECT)
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, p->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, p->smac, ETH_ALEN);
	return XDP_REDIRECT;
}

static __always_inline int fwd_ipv4(struct xdp_md *ctx, struct ethhdr *eth, void *end)
{
	struct iphdr *iph = (void *)(eth + 1);
	struct bpf_fib_lookup p = {};
	int act;

	if ((void *)(iph + 1) > end)
		return XDP_PASS;
	if (iph->ttl <= 1)
		return XDP_PASS;

	p.family = AF_INET;
	p.tos = iph->tos;
	p.l4_protocol = iph->protocol;
	p.tot_len = bpf_ntohs(iph->tot_len);
	p.ipv4_src = iph->saddr;
	p.ipv4_dst = iph->daddr;
	p.ifindex = ctx->ingress_ifindex;

	act = redirect(ctx, eth, &p);
	if (act == XDP_REDIRECT)
		ip_decrease_ttl(iph);
	return act;
}

static __always_inline int fwd_ipv6(struct xdp_md *ctx, struct ethhdr *eth, void *end)
{
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct bpf_fib_lookup p = {};
	int act;

	if ((void *)(ip6 + 1) > end)
		return XDP_PASS;
	if (ip6->hop_limit <= 1)
		return XDP_PASS;

	p.family = AF_INET6;
	p.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
	p.l4_protocol = ip6->nexthdr;
	p.tot_len = bpf_ntohs(ip6->payload_len);
	__builtin_memcpy(p.ipv6_src, &ip6->saddr, sizeof(p.ipv6_src));
	__builtin_memcpy(p.ipv6_dst, &ip6->daddr, sizeof(p.ipv6_dst));
	p.ifindex = ctx->ingress_ifindex;

	act = redirect(ctx, eth, &p);
	if (act == XDP_REDIRECT)
		ip6->hop_limit--;
	return act;
}

SEC("xdp.frags")
int xdp_bare_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	switch (eth->h_proto) {
	case bpf_htons(ETH_P_IP):
		return fwd_ipv4(ctx, eth, end);
	case bpf_htons(ETH_P_IPV6):
		return fwd_ipv6(ctx, eth, end);
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
