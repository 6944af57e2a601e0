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
#include "npt.h"

/* What a first stage returns to go on to the next (beside -1, not a 6in4
 * tunnel's packet, and the XDP verdicts it counted). */
#define TUN6IN4_MORE 16
/* ... from tun6in4_decap_check with DNPT to write (p->ipv6_dst is the
 * translated destination). */
#define TUN6IN4_MORE_DNPT 17

/* tun6in4_encap_check is the first stage of tun6in4_encap (below): every
 * check, the outer next hop and the redirect armed, nothing written. On
 * TUN6IN4_MORE, p->ifindex is the tunnel netdev and p->dmac, p->smac
 * the outer next hop's MACs. */
static __noinline int tun6in4_encap_check(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u32 reason, __u32 mb_len)
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
	 * as the kernel's forward path sends for the netdev's MTU (about
	 * the packet as it came, before any SNPT, as the kernel's). */
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
	p->ifindex = ifindex;
	__builtin_memcpy(p->dmac, nh->dmac, ETH_ALEN);
	__builtin_memcpy(p->smac, nh->smac, ETH_ALEN);
	return TUN6IN4_MORE;
}

/* tun6in4_encap_write is the second stage: the outer header in front and
 * the count. snpt is npt_snpt_frame's answer (0 when none was asked): a
 * counter to drop with, or XDPR_CNT_FWD_NPT_SNPT when the source was
 * translated. */
static __noinline int tun6in4_encap_write(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u32 mb_len, __u32 snpt)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u64 rx_len = mb_len ? mb_len : data_end - data;

	if (snpt && snpt != XDPR_CNT_FWD_NPT_SNPT)
		return tun_count(snpt, rx_len, XDP_DROP);
	struct xdpr_tunnel *t = tunnel_by_dev(p->ifindex);
	if (!t || (void *)(ip6 + 1) > data_end)
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);
	__u16 len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	__u8 tos = ipv6_tclass(ip6);
	/* Ethernet padding stays outside the tunnel (tunnel_encap). */
	int excess = (int)rx_len - (int)(sizeof(struct ethhdr) + len);
	if (excess > 0 && bpf_xdp_adjust_tail(ctx, -excess))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *o = data + sizeof(*eth);
	struct ipv6hdr *in = (void *)(o + 1);
	if ((void *)(in + 1) > data_end)
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);
	eth_set_macs(eth, p->dmac, p->smac);
	eth->h_proto = bpf_htons(ETH_P_IP);
	tunnel_write_outer4(o, t, tos, len);
	in->hop_limit--;
	return tun_count(snpt ? XDPR_CNT_TUN6IN4_ENCAP_SNPT : XDPR_CNT_TUN6IN4_ENCAP, rx_len, XDP_REDIRECT);
}

/* tun6in4_encap is the hook in forward_ipv6 for a packet whose route
 * lookup (p, the caller's) did not end in a plain redirect (reason). The
 * IPv6 header is at the frame's start, its payload within the frame (or,
 * mb_len != 0, the frame's later buffers), the hop limit above 1. npt is
 * the features word when SNPT on the tunnel netdev may apply (a LAN
 * port's packet), else 0. It returns the counted verdict, or -1 when the
 * route is no 6in4 tunnel's. In stages, each out of line with SNPT's
 * between them: nested in the first, SNPT's frames took a call chain
 * past what a 6.1 verifier allows (loader/stack_test.go). */
static __always_inline int tun6in4_encap(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u32 reason, __u32 mb_len,
					 __u64 npt)
{
	int act = tun6in4_encap_check(ctx, p, reason, mb_len);
	__u32 snpt = 0;

	if (act != TUN6IN4_MORE)
		return act;
	/* Every check passed: SNPT of an npt entry on the tunnel netdev,
	 * before the packet moves behind the outer header (what NPT
	 * refuses is dropped, as forward_ipv6 drops it). */
	if (npt)
		snpt = npt_snpt_frame(ctx, p->ifindex, npt);
	return tun6in4_encap_write(ctx, p, mb_len, snpt);
}


/* tun6in4_decap_check is the first stage of tun6in4_decap: the pair, the
 * inner packet's checks and the gate, nothing written to the packet. On
 * TUN6IN4_MORE, p holds the route lookup as the slow path would make it,
 * as if the packet arrived on the tunnel netdev. Across the gate's call
 * only ctx, p and t are held: everything else is read again from the
 * packet after it (a frame of its own over the gate's: loader/stack_test.go). */
static __noinline int tun6in4_decap_check(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u64 feat, int gate,
					  __u32 mb_len)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	struct ipv6hdr *ip6 = (void *)(iph + 1);
	__u64 rx_len = mb_len ? mb_len : data_end - data;
	__u32 reason;

	if ((void *)(iph + 1) > data_end)
		return -1;
	struct xdpr_tunnel_decap *t = tunnel_ep4_lookup(iph->saddr, iph->daddr, feat >> 32);
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
	/* DNPT of an npt entry on the tunnel netdev, as if the packet
	 * arrived there (the slow path translates at its TC ingress): the
	 * inside address into p->ipv6_dst, for the gate and the route;
	 * the packet is written by tun6in4_decap_fwd. */
	__builtin_memset(p, 0, sizeof(*p));
	int dnpt = 0;
	if (feat & XDPR_F_NPT) {
		dnpt = npt_dnpt_rule(t->ifindex, ip6, feat, (struct in6_addr *)(void *)p->ipv6_dst, &reason) != NULL;
		if (reason)
			return tun_count(reason, rx_len, reason == XDPR_CNT_PASS_NPT_EXCLUDED ? XDP_PASS : XDP_DROP);
	}
	/* Conntrack sees the inner packet only (conntrack.h), with the
	 * inside address. */
	if (gate) {
		reason = ct_gate_ipv6(ctx, ip6, dnpt ? (struct in6_addr *)(void *)p->ipv6_dst : &ip6->daddr,
				      (void *)ip6 + len, data_end);
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

	/* As if it arrived on the tunnel netdev, like the slow path's (p
	 * was zeroed above). */
	p->family = AF_INET6;
	p->flowinfo = (*(__be32 *)ip6 & bpf_htonl(0x000fffff)) |
		      bpf_htonl((__u32)ecn_decap(iph->tos, ipv6_tclass(ip6)) << 20);
	p->l4_protocol = ip6->nexthdr;
	p->tot_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	__builtin_memcpy(p->ipv6_src, &ip6->saddr, sizeof(p->ipv6_src));
	if (!dnpt)
		__builtin_memcpy(p->ipv6_dst, &ip6->daddr, sizeof(p->ipv6_dst));
	p->ifindex = t->ifindex;
	return dnpt ? TUN6IN4_MORE_DNPT : TUN6IN4_MORE;
}

/* tun6in4_decap_fwd is the second stage: the inner route (p, as the first
 * stage left it), then the outer header off and the redirect. */
static __noinline int tun6in4_decap_fwd(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u32 mb_len, __u64 dnpt)
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
	if (!dnpt)
		return tun_count(XDPR_CNT_TUN6IN4_DECAP, rx_len, XDP_REDIRECT);
	/* The rule again, from this CPU's cache (the first stage's lookup
	 * filled it), for the outside address still in the packet. */
	const struct xdpr_npt_rule *r = npt_lookup(&xdpr_npt64_out, &xdpr_npt_out, XDPR_NPT_CACHE_DNPT, tun_ifindex,
						   &in->daddr, dnpt);
	reason = r ? npt_translate_xdp(in, data_end, r, 1) : XDPR_CNT_DROP_NPT_MALFORMED;
	if (reason)
		return tun_count(reason, rx_len, XDP_DROP);
	return tun_count(XDPR_CNT_TUN6IN4_DECAP_DNPT, rx_len, XDP_REDIRECT);
}

/* tun6in4_decap is the hook in forward_ipv4 for protocol 41 on a WAN
 * port. The outer header (at the frame's start) is option-less,
 * checksummed, unfragmented and within the frame (mb_len as for
 * tun6in4_encap); feat is the features word (its upper half the tunnel
 * generation), gate whether the
 * conntrack gate judges the inner packet. p is the caller's, unused yet.
 * It returns the counted verdict, or -1 for protocol 41 in transit. In
 * two stages, each out of line: the gate's frame is below the first,
 * and the second's helper calls hold what the first no longer needs. */
static __always_inline int tun6in4_decap(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u64 feat, int gate,
					 __u32 mb_len)
{
	int act = tun6in4_decap_check(ctx, p, feat, gate, mb_len);

	if (act == TUN6IN4_MORE)
		return tun6in4_decap_fwd(ctx, p, mb_len, 0);
	if (act == TUN6IN4_MORE_DNPT)
		return tun6in4_decap_fwd(ctx, p, mb_len, feat);
	return act;
}

#endif
