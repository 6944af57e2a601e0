/* ICMPv4 "fragmentation needed" (type 3 code 4, RFC 1191) built in XDP for
 * a DF packet larger than the tunnel MTU, sent back out of the port it came
 * in on (XDP_REDIRECT to that port, see below), or left to the kernel where
 * XDP cannot transmit. Rate-limited per CPU like the kernel's icmp_ratelimit. */
#ifndef XDPR_ICMP_H
#define XDPR_ICMP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "maps.h"
#include "tunnel_maps.h"
#include "tunnel_hdr.h"

/* linux/icmp.h drags in libc headers; the little needed is here. */
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_REDIRECT 5
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMP_FRAG_NEEDED 4

struct icmp_frag_hdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__be16 unused;
	__be16 mtu; /* next-hop MTU, RFC 1191 */
};

/* Errors per second and burst, per CPU. */
const volatile __u32 icmp_rate_per_sec = 100;
const volatile __u32 icmp_burst = 20;

/* What the error quotes: the offending IP header and the first 8 octets of
 * its payload (RFC 792), enough for the sender to find its socket. */
#define ICMP_QUOTE_LEN (sizeof(struct iphdr) + 8)
#define ICMP_REPLY_LEN (sizeof(struct iphdr) + sizeof(struct icmp_frag_hdr) + ICMP_QUOTE_LEN)

static __always_inline int icmp_allow(void)
{
	__u32 zero = 0;
	struct xdpr_token_bucket *b = bpf_map_lookup_elem(&xdpr_icmp_bucket, &zero);
	__u64 now = bpf_ktime_get_ns(), cost, cap;

	if (!b || !icmp_rate_per_sec)
		return 0;
	cost = 1000000000ull / icmp_rate_per_sec;
	cap = cost * icmp_burst;
	if (!b->last_ns)
		b->credit_ns = cap;
	else
		b->credit_ns += now - b->last_ns;
	if (b->credit_ns > cap)
		b->credit_ns = cap;
	b->last_ns = now;
	if (b->credit_ns < cost)
		return 0;
	b->credit_ns -= cost;
	return 1;
}

/* icmp_is_error: RFC 1122 3.2.2 forbids an ICMP error about an ICMP error. */
static __always_inline int icmp_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH ||
	       type == ICMP_REDIRECT || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB;
}

/* icmp_frag_needed answers the option-less IPv4 packet at data+ETH_HLEN
 * with a "fragmentation needed" carrying mtu. rx_len is the whole frame's
 * length, of every buffer of a multi-buffer one: the frame is cut to the
 * reply's length, which frees the buffers behind the first. It returns
 * the XDP verdict (counted), or -1 when XDP should leave the packet to the
 * kernel, untouched: then the kernel sends the same error from its own
 * forward path. p is the caller's fib lookup, free for reuse. Out of
 * line: the quote and MAC copies take a frame of their own, not a share
 * of xdpr_main's (loader/stack_test.go), and only oversized DF packets
 * pay the call. */
static __noinline int icmp_frag_needed(struct xdp_md *ctx, __u16 mtu, __u64 rx_len,
					    struct bpf_fib_lookup *p)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u8 quote[ICMP_QUOTE_LEN];
	__u8 dmac[ETH_ALEN], smac[ETH_ALEN];
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	__u8 tos;
	long rc;

	if ((void *)iph + ICMP_QUOTE_LEN > data_end)
		return -1;
	if (iph->protocol == IPPROTO_ICMP && icmp_is_error(*((__u8 *)iph + sizeof(*iph))))
		return -1;
	/* The source the kernel would answer from: the preferred source of
	 * the route back to the sender. */
	__builtin_memset(p, 0, sizeof(*p));
	p->family = AF_INET;
	p->ipv4_dst = iph->saddr;
	p->ifindex = ctx->ingress_ifindex;
	rc = bpf_fib_lookup(ctx, p, sizeof(*p),
			    BPF_FIB_LOOKUP_OUTPUT | BPF_FIB_LOOKUP_SKIP_NEIGH | BPF_FIB_LOOKUP_SRC);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS || p->ifindex != ctx->ingress_ifindex)
		return -1;
	/* XDP cannot reach this port's peer (a veth without NAPI): the
	 * kernel answers, as it would without XDP. */
	if (port_tx_path(ctx->ingress_ifindex) == XDPR_TX_KERNEL)
		return tun_count(XDPR_CNT_PASS_ICMP_NO_NAPI, rx_len, XDP_PASS);
	if (!icmp_allow())
		return tun_count(XDPR_CNT_DROP_TUN_ICMP_RATELIMIT, rx_len, XDP_DROP);

	__builtin_memcpy(quote, iph, ICMP_QUOTE_LEN);
	__builtin_memcpy(dmac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(smac, eth->h_dest, ETH_ALEN);
	tos = IPTOS_PREC_INTERNETCONTROL | (iph->tos & IPTOS_TOS_MASK);

	if (bpf_xdp_adjust_tail(ctx, (int)(sizeof(*eth) + ICMP_REPLY_LEN) - (int)rx_len))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_PASS);
	/* Every pointer is stale after adjust_tail. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	iph = data + sizeof(*eth);
	struct icmp_frag_hdr *icmp = (void *)(iph + 1);
	__u8 *q = (void *)(icmp + 1);
	if ((void *)(q + ICMP_QUOTE_LEN) > data_end)
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);

	__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	*(__u16 *)iph = bpf_htons(0x4500 | tos);
	iph->tot_len = bpf_htons(ICMP_REPLY_LEN);
	iph->id = 0;
	iph->frag_off = 0;
	iph->ttl = 64;
	iph->protocol = IPPROTO_ICMP;
	iph->saddr = p->ipv4_src;
	iph->daddr = ((struct iphdr *)quote)->saddr;
	ipv4_csum_full(iph);

	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_FRAG_NEEDED;
	icmp->checksum = 0;
	icmp->unused = 0;
	icmp->mtu = bpf_htons(mtu);
	__builtin_memcpy(q, quote, ICMP_QUOTE_LEN);

	const __u16 *w = (const __u16 *)icmp;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < (int)((sizeof(*icmp) + ICMP_QUOTE_LEN) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	icmp->checksum = (__u16)~sum;
	/* Back out of the ingress port through the devmap rather than with
	 * XDP_TX: a redirect flushes to the peer in every driver, where veth
	 * only delivers an XDP_TX frame once its peer's NAPI next runs for
	 * some other reason (it kicks the peer only if that runs XDP). */
	return tun_count(XDPR_CNT_TUN_ICMP_FRAG_NEEDED, rx_len,
			 bpf_redirect_map(&xdpr_tx_ports, ctx->ingress_ifindex, XDP_TX));
}

#endif
