/* The ipip6 slow path, for what XDP left to the kernel: router-originated
 * IPv4, packets the kernel fragmented, NAT44 after conntrack, anything XDP
 * passed (no neighbour yet, options, fragments...). The kernel routes such
 * IPv4 into the tunnel netdev, whose TCX egress program encapsulates it
 * exactly as tunnel_encap does (minus the TTL decrement, which the kernel's
 * forward path already did) and hands it to the WAN with bpf_redirect_neigh.
 * In the other direction the WAN's TCX ingress program decapsulates ipip6
 * from a configured pair and delivers the inner packet to the tunnel
 * netdev, so conntrack and sockets see it arrive there. */
#ifndef XDPR_TUNNEL_TC_H
#define XDPR_TUNNEL_TC_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ip.h"
#include "tunnel_maps.h"
#include "tunnel_hdr.h"
#include "mss.h"
#include "compat.h"
#include "tunnel6in4_tc.h"

/* Headers the programs read: Ethernet, outer IPv6, IPv4 and TCP with
 * options. */
#define TC_PULL_LEN (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + 60 + 60)

/* tc_mss_clamp clamps the MSS of the TCP SYN whose IPv4 header starts at
 * ip_off. bpf_l4_csum_replace leaves a CHECKSUM_PARTIAL sum alone (the
 * stack completes it later over the new bytes). */
static __always_inline void tc_mss_clamp(struct __sk_buff *skb, __u32 ip_off, __u16 max_mss)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = data + ip_off;
	struct tcphdr *tcp;
	__u32 off, tcp_off;
	__u16 mss, old, new;
	__u8 *p;

	if ((void *)(iph + 1) > data_end || iph->protocol != IPPROTO_TCP ||
	    (iph->frag_off & bpf_htons(IPV4_OFFSET_MASK)) || iph->ihl < 5)
		return;
	tcp_off = ip_off + iph->ihl * 4;
	if (tcp_off > ip_off + 60)
		return;
	tcp = data + tcp_off;
	if ((void *)(tcp + 1) > data_end || !tcp->syn)
		return;
	off = tcp_mss_offset(tcp, data_end);
	if (!off || off > 60)
		return;
	p = (__u8 *)tcp + off;
	if ((void *)(p + 2) > data_end)
		return;
	mss = ((__u16)p[0] << 8) | p[1];
	if (mss <= max_mss)
		return;
	old = bpf_htons(mss);
	new = bpf_htons(max_mss);
	if (off & 1) {
		old = (old >> 8) | (old << 8);
		new = (new >> 8) | (new << 8);
	}
	p[0] = max_mss >> 8;
	p[1] = max_mss & 0xff;
	bpf_l4_csum_replace(skb, tcp_off + offsetof(struct tcphdr, check), old, new, 2);
}

SEC("tcx/egress")
int xdpr_tun_egress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct xdpr_tunnel *t = bpf_map_lookup_elem(&xdpr_tunnels, &ifindex);
	struct bpf_fib_lookup p = {};
	struct ipv6hdr o;
	__u32 label, ports = 0;
	__u16 len;
	__u8 tos;

	/* Only IPv4 is routed into a tunnel netdev; anything else (there is
	 * no IPv6 on it) has nowhere to go. */
	__u64 rx_len = skb->len;
	if (t && t->mode == XDPR_TUN_6IN4)
		return tc_6in4_encap(skb, t);
	if (!t || skb->protocol != bpf_htons(ETH_P_IP))
		return tc_count(XDPR_TC_DROP_NO_TUNNEL, rx_len, TC_ACT_SHOT);
	bpf_skb_pull_data(skb, TC_PULL_LEN);
	tc_mss_clamp(skb, sizeof(struct ethhdr), t->mtu - 40);

	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	if ((void *)(iph + 1) > data_end)
		return tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT);
	len = len16(iph->tot_len);
	tos = iph->tos;
	if (iph->ihl == 5 && !(iph->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET_MASK)))
		ports = ipv4_ports(iph, data_end, (void *)iph + len);
	label = tunnel_flow_label(iph, ports);

	p.family = AF_INET6;
	p.l4_protocol = IPPROTO_IPIP;
	__builtin_memcpy(p.ipv6_src, &t->local, sizeof(p.ipv6_src));
	__builtin_memcpy(p.ipv6_dst, &t->remote, sizeof(p.ipv6_dst));
	p.ifindex = ifindex;
	/* The egress is all bpf_redirect_neigh needs: it resolves the
	 * neighbour itself. */
	if (!fib_routed(bpf_fib_lookup(skb, &p, sizeof(p), xdpr_fib_skip_neigh)))
		return tc_count(XDPR_TC_DROP_NO_ROUTE, rx_len, TC_ACT_SHOT);

	if (bpf_skb_adjust_room(skb, sizeof(o), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return tc_count(XDPR_TC_DROP_ERROR, rx_len, TC_ACT_SHOT);
	tunnel_write_outer(&o, t, tos, len, label);
	__be16 proto = bpf_htons(ETH_P_IPV6);
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0) ||
	    bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &o, sizeof(o), 0))
		return tc_count(XDPR_TC_DROP_ERROR, rx_len, TC_ACT_SHOT);
	return tc_count(XDPR_TC_ENCAP, rx_len, bpf_redirect_neigh(p.ifindex, NULL, 0, 0));
}

/* tc_tun_decap decapsulates ipip6 of a configured pair and delivers the
 * inner packet to the tunnel netdev. reasm (a constant at each call site)
 * says where it runs: 0 on the WAN's ingress, where anything else is
 * someone else's (TCX_NEXT); 1 on the reassembly device, where the daemon
 * writes only the ipip6 packets the kernel reassembled and anything that
 * cannot be decapsulated is dropped and counted. */
static __always_inline int tc_tun_decap(struct __sk_buff *skb, const int reasm)
{
	struct xdpr_tunnel_ep ep;
	struct xdpr_tunnel_decap *dv;
	struct xdpr_tunnel *t;
	__u64 rx_len = skb->len;
	int tos;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return reasm ? tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT) : TCX_NEXT;
	/* Only frames for this host, as XDP's for_this_port: the kernel
	 * drops other hosts' (promiscuous mode) and leaves broadcast and
	 * multicast ipip6 alone, so must the slow path. */
	if (skb->pkt_type != PACKET_HOST)
		return reasm ? tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT) : TCX_NEXT;
	bpf_skb_pull_data(skb, TC_PULL_LEN);
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > data_end)
		return reasm ? tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT) : TCX_NEXT;
	int ext = ipip6_ext_len(ip6, (const __u8 *)(ip6 + 1), data_end);
	if (ext < 0)
		return reasm ? tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT) : TCX_NEXT;
	struct iphdr *iph = ext ? (void *)(ip6 + 1) + 8 : (void *)(ip6 + 1);
	if ((void *)(iph + 1) > data_end)
		return reasm ? tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT) : TCX_NEXT;
	ep.remote = ip6->saddr;
	ep.local = ip6->daddr;
	dv = bpf_map_lookup_elem(&xdpr_tunnel_eps, &ep);
	if (!dv)
		return reasm ? tc_count(XDPR_TC_DROP_UNKNOWN_ENDPOINT, rx_len, TC_ACT_SHOT) : TCX_NEXT;
	t = bpf_map_lookup_elem(&xdpr_tunnels, &dv->ifindex);
	if (!t)
		return tc_count(XDPR_TC_DROP_NO_TUNNEL, rx_len, TC_ACT_SHOT);
	if (iph->version != 4)
		return tc_count(XDPR_TC_DROP_MALFORMED, rx_len, TC_ACT_SHOT);
	/* What XDP drops (tun_inner_src_kind), the slow path drops too. */
	__u32 src = tun_inner_src_kind(iph->saddr);
	if (src)
		return tc_count(src == XDPR_SRC_LAN ? XDPR_TC_DROP_SRC_LAN : XDPR_TC_DROP_SRC_LOCAL, rx_len, TC_ACT_SHOT);
	tos = ecn_decap(ipv6_tclass(ip6), iph->tos);
	if (tos < 0)
		return tc_count(XDPR_TC_DROP_ECN, rx_len, TC_ACT_SHOT);
	if (tos != iph->tos) {
		__u32 ip_off = sizeof(*eth) + sizeof(*ip6) + ext;
		__u16 old = *(__u16 *)iph;
		__u16 new = bpf_htons((bpf_ntohs(old) & 0xff00) | (__u8)tos);
		bpf_skb_store_bytes(skb, ip_off, &new, sizeof(new), 0);
		bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), old, new, 2);
	}
	if (skb_decap_ipip6(skb, sizeof(struct ipv6hdr) + ext))
		return tc_count(XDPR_TC_DROP_ERROR, rx_len, TC_ACT_SHOT);
	tc_mss_clamp(skb, sizeof(struct ethhdr), t->mtu - 40);

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return tc_count(XDPR_TC_DROP_ERROR, rx_len, TC_ACT_SHOT);
	/* Addressed to the tunnel netdev, or the kernel drops it as
	 * PACKET_OTHERHOST. */
	__builtin_memcpy(eth->h_dest, t->dev_mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	/* A redirect to ingress checks no MTU (since Linux 5.12): a
	 * reassembled inner packet larger than the tunnel MTU arrives whole,
	 * as from a kernel ip6_tnl. */
	return tc_count(reasm ? XDPR_TC_DECAP_REASSEMBLED : XDPR_TC_DECAP, rx_len,
			bpf_redirect(t->ifindex, BPF_F_INGRESS));
}

SEC("tcx/ingress")
int xdpr_tun_ingress(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return tc_6in4_decap(skb, 0);
	return tc_tun_decap(skb, 0);
}

/* The ipip6 or 6in4 that arrived fragmented in the outer header: XDP and
 * the WAN's TC program leave fragments to the kernel (pass_tun_fragment),
 * which reassembles them (nf_defrag_ipv6/ipv4, or on local delivery) and,
 * having no ipip6 or sit handler, delivers the whole packet only to raw
 * sockets. The daemon's raw sockets read it (control/reasm) and write it,
 * with its outer header rebuilt, to a tap device of its own whose ingress
 * runs this program: the same checks and the same decapsulation as the
 * WAN's, RFC 6333 5.3's "reassemble, then decapsulate". */
SEC("tcx/ingress")
int xdpr_tun_reasm(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return tc_6in4_decap(skb, 1);
	return tc_tun_decap(skb, 1);
}

#endif
