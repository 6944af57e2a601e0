/* What an ipip6 encapsulation writes and a decapsulation combines, shared by
 * the XDP fast path (tunnel.h) and the TC slow path (tunnel_tc.h) so both
 * produce the same bytes. No packet access here beyond what callers bound. */
#ifndef XDPR_TUNNEL_HDR_H
#define XDPR_TUNNEL_HDR_H

#include <linux/types.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include "tunnel_maps.h"

#define ECN_MASK 0x03
#define ECN_NOT_ECT 0x00
#define ECN_ECT_1 0x01
#define ECN_ECT_0 0x02
#define ECN_CE 0x03

/* tunnel_flow_label is the outer flow label for an inner IPv4 packet (RFC
 * 6438): a hash of source, destination, protocol and ports. ports is the
 * first 4 octets of the transport header (host order) for TCP, UDP, SCTP
 * and UDP-Lite packets that are not fragments, else 0. Two 64-bit
 * multiply-xorshift rounds (the multiplier of the first is 2^64 / golden
 * ratio, of the second splitmix64's), taking the top 20 bits, which depend
 * on every input bit: two multiplies where octet-wise FNV-1a chained
 * thirteen, each waiting for the last. Reproduced in the Go reference model
 * (loader/tunnelmodel_test.go). Never 0, which would mean "no flow". */
#define FLOW_K1 0x9e3779b97f4a7c15ULL
#define FLOW_K2 0xbf58476d1ce4e5b9ULL

static __always_inline __u32 flow_label4(__be32 saddr, __be32 daddr, __u8 proto, __u32 ports)
{
	__u64 x = ((__u64)bpf_ntohl(saddr) << 32) | bpf_ntohl(daddr);
	__u32 l;

	x *= FLOW_K1;
	x ^= ((__u64)proto << 32) | ports;
	x ^= x >> 31;
	x *= FLOW_K2;
	l = x >> 44;
	return l ? l : 1;
}

static __always_inline __u32 tunnel_flow_label(const struct iphdr *iph, __u32 ports)
{
	return flow_label4(iph->saddr, iph->daddr, iph->protocol, ports);
}

static __always_inline int proto_has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
	       proto == IPPROTO_SCTP || proto == IPPROTO_UDPLITE;
}

/* What a Linux ip6tnl peer puts before the inner packet by default: a
 * destination options header holding only the tunnel encapsulation limit
 * (RFC 2473 4.1.1) and a PadN, next header 4. Decapsulation accepts it so
 * that such peers work; anything else in that position is left to the
 * kernel. Returns the octets to skip after the IPv6 header (0 or 8), or -1. */
static __always_inline int ipip6_ext_len(const struct ipv6hdr *ip6, const __u8 *ext, const void *data_end)
{
	if (ip6->nexthdr == IPPROTO_IPIP)
		return 0;
	if (ip6->nexthdr != IPPROTO_DSTOPTS || (const void *)(ext + 8) > data_end)
		return -1;
	if (ext[0] != IPPROTO_IPIP || ext[1] != 0 || ext[2] != 4 || ext[3] != 1 ||
	    ext[5] != 1 || ext[6] != 1 || ext[7] != 0)
		return -1;
	return 8;
}

/* ipv4_ports reads the ports of an option-less, unfragmented IPv4 packet
 * for the flow label; 0 when the protocol has none or the packet (pkt_end)
 * or frame (data_end) is too short. */
static __always_inline __u32 ipv4_ports(struct iphdr *iph, void *data_end, void *pkt_end)
{
	__u8 *l4 = (__u8 *)(iph + 1);

	if (!proto_has_ports(iph->protocol) || (void *)(l4 + 4) > data_end || (void *)(l4 + 4) > pkt_end)
		return 0;
	return bpf_ntohl(*(__be32 *)l4);
}

/* tunnel_write_outer fills the outer IPv6 header: traffic class copied from
 * the inner TOS (DSCP and ECN, RFC 6040 normal mode), the flow label, the
 * configured hop limit and no extension header at all (no encapsulation
 * limit option, which some AFTRs reject). */
static __always_inline void tunnel_write_outer(struct ipv6hdr *o, const struct xdpr_tunnel *t,
					       __u8 tos, __u16 inner_len, __u32 label)
{
	*(__be32 *)o = bpf_htonl(0x60000000 | ((__u32)tos << 20) | label);
	o->payload_len = bpf_htons(inner_len);
	o->nexthdr = IPPROTO_IPIP;
	o->hop_limit = t->hop_limit;
	o->saddr = t->local;
	o->daddr = t->remote;
}

/* ecn_decap combines the outer ECN field into the inner TOS (RFC 6040
 * section 4.2, normal mode). It returns the new TOS, or -1 when the packet
 * must be dropped (CE on the outside of a not-ECT packet). */
static __always_inline int ecn_decap(__u8 outer_tc, __u8 inner_tos)
{
	__u8 o = outer_tc & ECN_MASK, i = inner_tos & ECN_MASK;

	if (i == ECN_NOT_ECT)
		return o == ECN_CE ? -1 : inner_tos;
	if (o == ECN_CE)
		return inner_tos | ECN_CE;
	if (o == ECN_ECT_1 && i == ECN_ECT_0)
		return (inner_tos & ~ECN_MASK) | ECN_ECT_1;
	return inner_tos;
}

static __always_inline __u8 ipv6_tclass(const struct ipv6hdr *ip6)
{
	return (bpf_ntohl(*(const __be32 *)ip6) >> 20) & 0xff;
}

/* ipv4_csum_full recomputes an option-less IPv4 header checksum from
 * scratch: the header was validated on the way in, and a fresh sum gives
 * the same bytes as the kernel's and the test model's. */
static __always_inline void ipv4_csum_full(struct iphdr *iph)
{
	const __u16 *w = (const __u16 *)iph;
	__u32 sum = 0;

	iph->check = 0;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(*iph) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	iph->check = (__u16)~sum;
}

/* tunnel_write_outer4 fills the outer IPv4 header of 6in4 (RFC 4213 3.5):
 * TOS from the inner traffic class (DSCP and ECN, as tunnel_write_outer
 * does for ipip6), DF set as Linux's sit sets it by default (pmtudisc: an
 * oversized packet gets a packet-too-big, never fragmented outside), so
 * ID 0 (RFC 6864: an atomic datagram's ID means nothing; both paths write
 * the same bytes), the configured TTL, protocol 41 and the endpoints
 * (IPv4-mapped in the tunnel entry). */
static __always_inline void tunnel_write_outer4(struct iphdr *o, const struct xdpr_tunnel *t,
						__u8 tos, __u16 inner_len)
{
	*(__be16 *)o = bpf_htons(0x4500 | tos);
	o->tot_len = bpf_htons(inner_len + sizeof(*o));
	o->id = 0;
	o->frag_off = bpf_htons(0x4000);
	o->ttl = t->hop_limit;
	o->protocol = IPPROTO_IPV6;
	o->saddr = t->local.s6_addr32[3];
	o->daddr = t->remote.s6_addr32[3];
	ipv4_csum_full(o);
}

/* ipv6_set_tclass rewrites an IPv6 header's traffic class (no checksum
 * covers it). */
static __always_inline void ipv6_set_tclass(struct ipv6hdr *ip6, __u8 tc)
{
	*(__be32 *)ip6 = (*(__be32 *)ip6 & bpf_htonl(0xf00fffff)) | bpf_htonl((__u32)tc << 20);
}

/* tunnel_outer_len is the octets a tunnel's encapsulation adds. */
static __always_inline int tunnel_outer_len(const struct xdpr_tunnel *t)
{
	return t->mode == XDPR_TUN_6IN4 ? (int)sizeof(struct iphdr) : (int)sizeof(struct ipv6hdr);
}

#endif
