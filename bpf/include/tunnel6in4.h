/* 6in4 (IPv6 in IPv4, protocol 41, RFC 4213: HE.net's tunnel broker) in
 * XDP, by the rules of ipip6 (tunnel.h): IPv6 routed into a 6in4 tunnel
 * netdev is encapsulated, protocol 41 from a configured (remote, local)
 * IPv4 pair is decapsulated, and whatever this cannot finish goes to the
 * kernel unmodified, where the netdev and the TC programs
 * (tunnel6in4_tc.h) produce the same packet.
 *
 * Out of line, in frames of their own (the caller's route lookup struct is
 * their scratch): inlined, their locals made xdpr_main's frame larger by
 * 56 octets, and every call chain from it adds up (loader/stack_test.go). */
#ifndef XDPR_TUNNEL6IN4_H
#define XDPR_TUNNEL6IN4_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "maps.h"
#include "ip.h"
#include "forward.h"
#include "tunnel_maps.h"
#include "tunnel_hdr.h"
#include "tunnel.h"
#include "icmp6.h"
#include "conntrack.h"
#include "compat.h"

/* tun6in4_encap is the hook in forward_ipv6 for a packet whose route
 * lookup (p, the caller's) did not end in a plain redirect (reason). The
 * IPv6 header is at the frame's start, its payload within the frame (or,
 * mb_len != 0, the frame's later buffers), the hop limit above 1. It
 * returns the counted verdict, or -1 when the route is no 6in4 tunnel's. */
static __noinline int tun6in4_encap(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u32 reason, __u32 mb_len)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u32 ifindex = p->ifindex;

	if ((void *)(ip6 + 1) > data_end)
		return -1;
	if (reason == XDPR_CNT_PASS_FRAG_NEEDED) {
		/* That answer names no egress: again, without the length. */
		__builtin_memset(p, 0, sizeof(*p));
		p->family = AF_INET6;
		p->l4_protocol = ip6->nexthdr;
		__builtin_memcpy(p->ipv6_src, &ip6->saddr, sizeof(p->ipv6_src));
		__builtin_memcpy(p->ipv6_dst, &ip6->daddr, sizeof(p->ipv6_dst));
		p->ifindex = ctx->ingress_ifindex;
		if (!fib_routed(bpf_fib_lookup(ctx, p, sizeof(*p), xdpr_fib_skip_neigh)))
			return -1;
		ifindex = p->ifindex;
	} else if (reason != XDPR_CNT_PASS_EGRESS_NOT_ATTACHED && reason != XDPR_CNT_PASS_NO_NEIGH) {
		return -1;
	}
	struct xdpr_tunnel *t = tunnel_by_dev(ifindex);
	if (!t || t->mode != XDPR_TUN_6IN4)
		return -1;

	__u64 rx_len = mb_len ? mb_len : data_end - data;
	__u16 len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	/* IPv6 is never fragmented on the way: too big is an ICMPv6 error,
	 * as the kernel's forward path sends for the netdev's MTU. */
	if (len > t->mtu) {
		int act = icmp6_packet_too_big(ctx, p, t->mtu, rx_len);

		if (act >= 0)
			return act;
		return tun_count(XDPR_CNT_PASS_FRAG_NEEDED, rx_len, XDP_PASS);
	}
	__u8 tos = ipv6_tclass(ip6);
	__u32 why = 0;
	struct xdpr_tun_nexthop *nh = tunnel_nexthop(ctx, t, p, tos, 0, len, &why);
	if (!nh)
		return tun_count(why, rx_len, XDP_PASS);
	why = redirect_port(nh->ifindex, mb_len != 0);
	if (why)
		return tun_count(why, rx_len, XDP_PASS);
	/* Ethernet padding stays outside the tunnel (tunnel_encap). */
	int excess = (int)rx_len - (int)(sizeof(struct ethhdr) + len);
	if (excess > 0 && bpf_xdp_adjust_tail(ctx, -excess))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_PASS);
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_PASS);

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *o = data + sizeof(*eth);
	struct ipv6hdr *in = (void *)(o + 1);
	if ((void *)(in + 1) > data_end)
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);
	eth_set_macs(eth, nh->dmac, nh->smac);
	eth->h_proto = bpf_htons(ETH_P_IP);
	tunnel_write_outer4(o, t, tos, len);
	in->hop_limit--;
	return tun_count(XDPR_CNT_TUN6IN4_ENCAP, rx_len, XDP_REDIRECT);
}

/* What tun6in4_decap_check returns to go on to tun6in4_decap_fwd (beside
 * -1, protocol 41 in transit, and the XDP verdicts it counted). */
#define TUN6IN4_MORE 16

/* tun6in4_decap_check is the first stage of tun6in4_decap: the pair, the
 * inner packet's checks and the gate, nothing written to the packet. On
 * TUN6IN4_MORE, p holds the route lookup as the slow path would make it,
 * as if the packet arrived on the tunnel netdev. Across the gate's call
 * only ctx, p and t are held: everything else is read again from the
 * packet after it (a frame of its own over the gate's: loader/stack_test.go). */
static __noinline int tun6in4_decap_check(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u32 gen, int gate,
					  __u32 mb_len)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	struct ipv6hdr *ip6 = (void *)(iph + 1);
	__u64 rx_len = mb_len ? mb_len : data_end - data;
	__u32 reason;

	if ((void *)(iph + 1) > data_end)
		return -1;
	struct xdpr_tunnel_decap *t = tunnel_ep4_lookup(iph->saddr, iph->daddr, gen);
	if (!t) {
		/* Not a pair of ours: for this host, the kernel's (it has no
		 * 6in4 and answers as it does); in transit, forwarded. */
		p->family = AF_INET;
		p->ipv4_src = iph->saddr;
		p->ipv4_dst = iph->daddr;
		p->ifindex = ctx->ingress_ifindex;
		if (bpf_fib_lookup(ctx, p, sizeof(*p), xdpr_fib_skip_neigh) == BPF_FIB_LKUP_RET_NOT_FWDED)
			return tun_count(XDPR_CNT_PASS_TUN6IN4_UNKNOWN_ENDPOINT, rx_len, XDP_PASS);
		__builtin_memset(p, 0, sizeof(*p));
		return -1;
	}
	/* The inner packet, checked as forward_ipv6 checks one; anything odd
	 * goes to the kernel whole, where TC decapsulates it. */
	__u16 olen = bpf_ntohs(iph->tot_len);
	if ((void *)(ip6 + 1) > data_end || olen < sizeof(*iph) + sizeof(*ip6))
		return tun_count(XDPR_CNT_PASS_TRUNCATED, rx_len, XDP_PASS);
	if (ip6->version != 6)
		return tun_count(XDPR_CNT_PASS_MALFORMED, rx_len, XDP_PASS);
	__u16 len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (len != olen - sizeof(*iph))
		return tun_count(len > olen - sizeof(*iph) ? XDPR_CNT_PASS_TRUNCATED : XDPR_CNT_PASS_MALFORMED,
				 rx_len, XDP_PASS);
	reason = tun_inner_src6_kind(&ip6->saddr);
	if (unlikely(reason))
		return tun_count(reason == XDPR_SRC_LAN ? XDPR_CNT_DROP_TUN6IN4_SRC_LAN : XDPR_CNT_DROP_TUN6IN4_SRC_LOCAL,
				 rx_len, XDP_DROP);
	reason = ipv6_addr_reason(&ip6->saddr, &ip6->daddr);
	if (reason)
		return tun_count(reason, rx_len, XDP_PASS);
	/* Extension headers are the slow path's: the kernel walks them. */
	if (ipv6_is_ext_header(ip6->nexthdr))
		return tun_count(ip6->nexthdr == IPPROTO_HOPOPTS ? XDPR_CNT_PASS_IPV6_HOP_BY_HOP
				 : ip6->nexthdr == IPPROTO_FRAGMENT ? XDPR_CNT_PASS_FRAGMENT
								    : XDPR_CNT_PASS_IPV6_EXT_LIMIT,
				 rx_len, XDP_PASS);
	if (ip6->hop_limit <= 1)
		return tun_count(XDPR_CNT_PASS_TTL_EXPIRED, rx_len, XDP_PASS);
	if (ecn_decap(iph->tos, ipv6_tclass(ip6)) < 0)
		return tun_count(XDPR_CNT_DROP_TUN_ECN, rx_len, XDP_DROP);
	/* Conntrack sees the inner packet only (conntrack.h). */
	if (gate) {
		reason = ct_gate_ipv6(ctx, ip6, &ip6->daddr, (void *)ip6 + len, data_end);
		if (reason) {
			data = (void *)(long)ctx->data;
			data_end = (void *)(long)ctx->data_end;
			return tun_count(reason, mb_len ? mb_len : data_end - data, XDP_PASS);
		}
		/* Read again: see above. */
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		iph = data + sizeof(struct ethhdr);
		ip6 = (void *)(iph + 1);
		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
	}

	/* As if it arrived on the tunnel netdev, like the slow path's. */
	__builtin_memset(p, 0, sizeof(*p));
	p->family = AF_INET6;
	p->flowinfo = (*(__be32 *)ip6 & bpf_htonl(0x000fffff)) |
		      bpf_htonl((__u32)ecn_decap(iph->tos, ipv6_tclass(ip6)) << 20);
	p->l4_protocol = ip6->nexthdr;
	p->tot_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	__builtin_memcpy(p->ipv6_src, &ip6->saddr, sizeof(p->ipv6_src));
	__builtin_memcpy(p->ipv6_dst, &ip6->daddr, sizeof(p->ipv6_dst));
	p->ifindex = t->ifindex;
	return TUN6IN4_MORE;
}

/* tun6in4_decap_fwd is the second stage: the inner route (p, as the first
 * stage left it), then the outer header off and the redirect. */
static __noinline int tun6in4_decap_fwd(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u32 mb_len)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u64 rx_len = mb_len ? mb_len : data_end - data;
	__u32 tun_ifindex = p->ifindex;
	/* The tclass and the inner length, before the lookup overwrites
	 * flowinfo's neighbours and tot_len (mtu_result). */
	__u8 tc = bpf_ntohl(p->flowinfo) >> 20;
	__u16 len = p->tot_len;
	__u32 reason;

	long rc = bpf_fib_lookup(ctx, p, sizeof(*p), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return tun_count(fib_pass_reason(rc), rx_len, XDP_PASS);
	if (p->ifindex == tun_ifindex)
		return tun_count(XDPR_CNT_PASS_HAIRPIN, rx_len, XDP_PASS);
	reason = redirect_port(p->ifindex, mb_len != 0);
	if (reason)
		return tun_count(reason, rx_len, XDP_PASS);

	int excess = (int)rx_len - (int)(sizeof(struct ethhdr) + sizeof(struct iphdr) + len);
	if (excess > 0 && bpf_xdp_adjust_tail(ctx, -excess))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_PASS);
	if (bpf_xdp_adjust_head(ctx, sizeof(struct iphdr)))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_PASS);

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *in = data + sizeof(*eth);
	if ((void *)(in + 1) > data_end)
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);
	eth_set_macs(eth, p->dmac, p->smac);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	ipv6_set_tclass(in, tc);
	in->hop_limit--;
	return tun_count(XDPR_CNT_TUN6IN4_DECAP, rx_len, XDP_REDIRECT);
}

/* tun6in4_decap is the hook in forward_ipv4 for protocol 41 on a WAN
 * port. The outer header (at the frame's start) is option-less,
 * checksummed, unfragmented and within the frame (mb_len as for
 * tun6in4_encap); gen is the tunnel generation, gate whether the
 * conntrack gate judges the inner packet. p is the caller's, unused yet.
 * It returns the counted verdict, or -1 for protocol 41 in transit. In
 * two stages, each out of line: the gate's frame is below the first,
 * and the second's helper calls hold what the first no longer needs. */
static __always_inline int tun6in4_decap(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u32 gen, int gate,
					 __u32 mb_len)
{
	int act = tun6in4_decap_check(ctx, p, gen, gate, mb_len);

	if (act != TUN6IN4_MORE)
		return act;
	return tun6in4_decap_fwd(ctx, p, mb_len);
}

#endif
