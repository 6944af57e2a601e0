/* The 6in4 slow path, for what XDP left to the kernel (router-originated
 * IPv6, packets with extension headers, no neighbour yet...): the tunnel
 * netdev's egress program (xdpr_tun_egress, tunnel_tc.h) encapsulates
 * IPv6 routed into a 6in4 netdev exactly as tun6in4_encap does (minus the
 * hop limit decrement, which the kernel's forward path already did), and
 * the WAN's ingress program (xdpr_tun_ingress) decapsulates protocol 41
 * from a configured pair to the tunnel netdev, as does the reassembly
 * device's (xdpr_tun_reasm) for what arrived fragmented in the outer
 * header, once the kernel reassembled it. */
#ifndef XDPR_TUNNEL6IN4_TC_H
#define XDPR_TUNNEL6IN4_TC_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ip.h"
#include "maps.h"
#include "tunnel_maps.h"
#include "tunnel_hdr.h"
#include "compat.h"

/* tc_6in4_encap encapsulates the IPv6 packet the kernel routed into t's
 * netdev and hands it to the WAN. */
static __always_inline int tc_6in4_encap(struct __sk_buff *skb, const struct xdpr_tunnel *t)
{
	__u64 rx_len = skb->len;
	struct bpf_fib_lookup p = {};
	struct iphdr o;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return tc_count(XDPR_TC_DROP_NO_TUNNEL, rx_len, TC_ACT_SHOT);
	bpf_skb_pull_data(skb, sizeof(struct ethhdr) + sizeof(struct ipv6hdr));
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	if ((void *)(ip6 + 1) > data_end)
		return tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT);
	__u16 len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	__u8 tos = ipv6_tclass(ip6);

	p.family = AF_INET;
	p.tos = tos;
	p.l4_protocol = IPPROTO_IPV6;
	p.ipv4_src = t->local.s6_addr32[3];
	p.ipv4_dst = t->remote.s6_addr32[3];
	p.ifindex = skb->ifindex;
	/* The egress is all bpf_redirect_neigh needs. */
	if (!fib_routed(bpf_fib_lookup(skb, &p, sizeof(p), xdpr_fib_skip_neigh)))
		return tc_count(XDPR_TC_DROP_NO_ROUTE, rx_len, TC_ACT_SHOT);
	if (bpf_skb_adjust_room(skb, sizeof(o), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return tc_count(XDPR_TC_DROP_ERROR, rx_len, TC_ACT_SHOT);
	tunnel_write_outer4(&o, t, tos, len);
	__be16 proto = bpf_htons(ETH_P_IP);
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0) ||
	    bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &o, sizeof(o), 0))
		return tc_count(XDPR_TC_DROP_ERROR, rx_len, TC_ACT_SHOT);
	return tc_count(XDPR_TC_ENCAP_6IN4, rx_len, bpf_redirect_neigh(p.ifindex, NULL, 0, 0));
}

/* tc_6in4_decap decapsulates protocol 41 of a configured pair and
 * delivers the inner IPv6 to the tunnel netdev. reasm (a constant at each
 * call site) says where it runs, as for tc_tun_decap: 0 on the WAN's
 * ingress, where anything else is someone else's (TCX_NEXT): the kernel,
 * which has no 6in4, treats it as it would without xdprouter; 1 on the
 * reassembly device (xdpr_tun_reasm), where the daemon writes only the
 * protocol 41 the kernel reassembled and anything that cannot be
 * decapsulated is dropped and counted. */
static __always_inline int tc_6in4_decap(struct __sk_buff *skb, const int reasm)
{
	__u64 rx_len = skb->len;
	struct xdpr_tunnel_ep ep = {};

	if (skb->pkt_type != PACKET_HOST)
		return reasm ? tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT) : TCX_NEXT;
	bpf_skb_pull_data(skb, sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct ipv6hdr));
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct ipv6hdr *ip6 = (void *)(iph + 1);
	if ((void *)(ip6 + 1) > data_end)
		return reasm ? tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT) : TCX_NEXT;
	/* What XDP would decapsulate, and what it passed as such: option-
	 * less, whole (fragments are not reassembled before TC), checksummed.
	 * The relay writes the reassembled packet's header so. */
	if (*(__u8 *)iph != 0x45 || iph->protocol != IPPROTO_IPV6 ||
	    (iph->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET_MASK)) || !ipv4_header_ok(iph))
		return reasm ? tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT) : TCX_NEXT;
	ep.remote.s6_addr32[2] = bpf_htonl(0xffff);
	ep.remote.s6_addr32[3] = iph->saddr;
	ep.local.s6_addr32[2] = bpf_htonl(0xffff);
	ep.local.s6_addr32[3] = iph->daddr;
	struct xdpr_tunnel_decap *dv = bpf_map_lookup_elem(&xdpr_tunnel_eps, &ep);
	if (!dv)
		return reasm ? tc_count(XDPR_TC_DROP_UNKNOWN_ENDPOINT, rx_len, TC_ACT_SHOT) : TCX_NEXT;
	struct xdpr_tunnel *t = bpf_map_lookup_elem(&xdpr_tunnels, &dv->ifindex);
	if (!t || t->mode != XDPR_TUN_6IN4)
		return tc_count(XDPR_TC_DROP_NO_TUNNEL, rx_len, TC_ACT_SHOT);
	if (ip6->version != 6)
		return tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT);
	/* What XDP drops (tun_inner_src6_kind), the slow path drops too. */
	__u32 src = tun_inner_src6_kind(&ip6->saddr);
	if (src)
		return tc_count(src == XDPR_SRC_LAN ? XDPR_TC_DROP_SRC6_LAN : XDPR_TC_DROP_SRC6_LOCAL, rx_len, TC_ACT_SHOT);
	int tc = ecn_decap(iph->tos, ipv6_tclass(ip6));
	if (tc < 0)
		return tc_count(XDPR_TC_DROP_ECN, rx_len, TC_ACT_SHOT);
	if (tc != ipv6_tclass(ip6)) {
		__be32 w = *(__be32 *)ip6;

		w = (w & bpf_htonl(0xf00fffff)) | bpf_htonl((__u32)tc << 20);
		bpf_skb_store_bytes(skb, sizeof(*eth) + sizeof(*iph), &w, sizeof(w), 0);
	}
	if (skb_decap_l3(skb, sizeof(struct iphdr), 1))
		return tc_count(XDPR_TC_DROP_ERROR, rx_len, TC_ACT_SHOT);

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return tc_count(XDPR_TC_DROP_ERROR, rx_len, TC_ACT_SHOT);
	/* Addressed to the tunnel netdev, or the kernel drops it as
	 * PACKET_OTHERHOST. */
	__builtin_memcpy(eth->h_dest, t->dev_mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	/* A redirect to ingress checks no MTU: a reassembled inner packet
	 * larger than the tunnel MTU arrives whole, as from a kernel sit. */
	return tc_count(reasm ? XDPR_TC_DECAP_REASSEMBLED : XDPR_TC_DECAP_6IN4, rx_len,
			bpf_redirect(t->ifindex, BPF_F_INGRESS));
}

#endif
