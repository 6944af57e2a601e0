/* ICMPv6 "packet too big" (type 2, RFC 4443 3.2) built in XDP for an IPv6
 * packet larger than a 6in4 tunnel's MTU, sent back out of the port it came
 * in on, or left to the kernel where XDP cannot transmit; rate-limited with
 * icmp_frag_needed's bucket (icmp.h). */
#ifndef XDPR_ICMP6_H
#define XDPR_ICMP6_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "maps.h"
#include "icmp.h"

#define ICMPV6_PKT_TOOBIG 2

/* As much of the offending packet as fits in the minimum MTU (RFC 4443
 * 2.4 c), like the kernel's icmp6_send: the packet is larger than the
 * tunnel MTU, which is at least 1280, so there always is this much. */
#define ICMP6_PTB_QUOTE (1280 - 40 - 8)

struct icmp6_ptb_hdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__be32 mtu;
};

/* icmp6_packet_too_big answers the IPv6 packet at data+ETH_HLEN with a
 * packet-too-big carrying mtu. p is scratch for the route back. rx_len as
 * for icmp_frag_needed. It returns the XDP verdict (counted), or -1 when
 * the kernel should have the packet untouched: then it sends the same
 * error from its forward path (the tunnel netdev's MTU). */
static __always_inline int icmp6_packet_too_big(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u16 mtu, __u64 rx_len)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + sizeof(*eth);
	__u32 ingress = ctx->ingress_ifindex;
	__u8 macs[2 * ETH_ALEN];

	/* The quote in the first buffer of a multi-buffer frame, or none. */
	if ((void *)ip6 + ICMP6_PTB_QUOTE > data_end)
		return -1;
	/* No error about an error (RFC 4443 2.4 e.1). */
	if (ip6->nexthdr == IPPROTO_ICMPV6 && *(__u8 *)(ip6 + 1) < 128)
		return -1;
	/* The source the kernel would answer from: the preferred source of
	 * the route back to the sender. */
	__builtin_memset(p, 0, sizeof(*p));
	p->family = AF_INET6;
	__builtin_memcpy(p->ipv6_dst, &ip6->saddr, sizeof(p->ipv6_dst));
	p->ifindex = ingress;
	if (bpf_fib_lookup(ctx, p, sizeof(*p), BPF_FIB_LOOKUP_OUTPUT | BPF_FIB_LOOKUP_SKIP_NEIGH | BPF_FIB_LOOKUP_SRC) !=
		    BPF_FIB_LKUP_RET_SUCCESS ||
	    p->ifindex != ingress)
		return -1;
	if (port_tx_path(ingress) == XDPR_TX_KERNEL)
		return tun_count(XDPR_CNT_PASS_ICMP_NO_NAPI, rx_len, XDP_PASS);
	if (!icmp_allow())
		return tun_count(XDPR_CNT_DROP_TUN_ICMP_RATELIMIT, rx_len, XDP_DROP);
	__builtin_memcpy(macs, eth->h_source, ETH_ALEN);
	__builtin_memcpy(macs + ETH_ALEN, eth->h_dest, ETH_ALEN);

	/* The offending packet's IPv6 header onward stays where it is, as
	 * the quote: the new headers go in front of it. */
	const int hdrs = sizeof(struct ipv6hdr) + sizeof(struct icmp6_ptb_hdr);
	if (bpf_xdp_adjust_head(ctx, -hdrs))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_PASS);
	if (bpf_xdp_adjust_tail(ctx, (int)(sizeof(*eth) + ICMP6_PTB_QUOTE) - (int)rx_len))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	struct ipv6hdr *o = data + sizeof(*eth);
	struct icmp6_ptb_hdr *icmp = (void *)(o + 1);
	struct ipv6hdr *q = (void *)(icmp + 1);
	if ((void *)q + ICMP6_PTB_QUOTE > data_end)
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);

	__builtin_memcpy(eth->h_dest, macs, ETH_ALEN);
	__builtin_memcpy(eth->h_source, macs + ETH_ALEN, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	*(__be32 *)o = bpf_htonl(0x60000000);
	o->payload_len = bpf_htons(sizeof(*icmp) + ICMP6_PTB_QUOTE);
	o->nexthdr = IPPROTO_ICMPV6;
	o->hop_limit = 64;
	__builtin_memcpy(&o->saddr, p->ipv6_src, sizeof(o->saddr));
	o->daddr = q->saddr;
	icmp->type = ICMPV6_PKT_TOOBIG;
	icmp->code = 0;
	icmp->checksum = 0;
	icmp->mtu = bpf_htonl(mtu);

	/* The pseudo-header's addresses, then its length and next header,
	 * then the message: bpf_csum_diff sums at most 512 octets a call. */
	__be32 rest[2] = { bpf_htonl(sizeof(*icmp) + ICMP6_PTB_QUOTE), bpf_htonl(IPPROTO_ICMPV6) };
	__s64 s = bpf_csum_diff(NULL, 0, (__be32 *)&o->saddr, 32, 0);
	s = bpf_csum_diff(NULL, 0, rest, sizeof(rest), s);
	s = bpf_csum_diff(NULL, 0, (__be32 *)icmp, 512, s);
	s = bpf_csum_diff(NULL, 0, (__be32 *)((__u8 *)icmp + 512), 512, s);
	s = bpf_csum_diff(NULL, 0, (__be32 *)((__u8 *)icmp + 1024), sizeof(*icmp) + ICMP6_PTB_QUOTE - 1024, s);
	__u32 sum = (__u32)s;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	icmp->checksum = (__u16)~sum;
	return tun_count(XDPR_CNT_TUN6IN4_ICMP_PTB, rx_len,
			 bpf_redirect_map(&xdpr_tx_ports, ingress, XDP_TX));
}

#endif
