/* ipip6 in XDP: encapsulation of IPv4 routed into a tunnel netdev, and
 * decapsulation of ipip6 from a configured (remote, local) pair. Whatever
 * this cannot finish goes to the kernel unmodified, where the tunnel netdev
 * and the TC programs in tunnel_tc.h produce the same packet. */
#ifndef XDPR_TUNNEL_H
#define XDPR_TUNNEL_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "maps.h"
#include "ip.h"
#include "forward.h"
#include "tunnel_maps.h"
#include "tunnel_hdr.h"
#include "mss.h"
#include "icmp.h"
#include "npt.h"
#include "conntrack.h"
#include "nat44.h"
#include "compat.h"

#define IPV4_DF 0x4000
#define TUN_OUTER_LEN ((int)sizeof(struct ipv6hdr))

/* tunnel_for_egress returns the tunnel whose netdev the inner route points
 * at. After a successful route to an unattached port or an unresolved
 * neighbour the lookup (p) already names the egress; after FRAG_NEEDED it
 * does not, so the route is looked up again, in p, without the length. */
static __always_inline struct xdpr_tunnel *tunnel_for_egress(struct xdp_md *ctx, struct iphdr *iph,
							     struct bpf_fib_lookup *p, __u32 reason)
{
	__u32 ifindex = p->ifindex;

	if (reason == XDPR_CNT_PASS_FRAG_NEEDED) {
		__builtin_memset(p, 0, sizeof(*p));
		p->family = AF_INET;
		p->tos = iph->tos;
		p->l4_protocol = iph->protocol;
		p->ipv4_src = iph->saddr;
		p->ipv4_dst = iph->daddr;
		p->ifindex = ctx->ingress_ifindex;
		if (!fib_routed(bpf_fib_lookup(ctx, p, sizeof(*p), xdpr_fib_skip_neigh)))
			return NULL;
		ifindex = p->ifindex;
	} else if (reason != XDPR_CNT_PASS_EGRESS_NOT_ATTACHED && reason != XDPR_CNT_PASS_NO_NEIGH) {
		return NULL;
	}
	return tunnel_by_dev(ifindex);
}

/* How long an outer next hop is trusted before it is looked up again: a
 * neighbour or route change reaches the fast path within this time. */
const volatile __u64 tun_nexthop_ttl_ns = 100000000; /* 100 ms */

/* tunnel_outer_route looks up the outer route to t's remote (IPv6 for
 * ipip6, IPv4 for 6in4) in p, which it overwrites, and fills nh; it
 * returns 0, or the counter explaining why the kernel gets the packet. */
static __always_inline __u32 tunnel_outer_route(struct xdp_md *ctx, struct xdpr_tunnel *t, struct bpf_fib_lookup *p,
						struct xdpr_tun_nexthop *nh, __u8 tos, __u32 label, __u16 len)
{
	long rc;

	__builtin_memset(p, 0, sizeof(*p));
	if (t->mode == XDPR_TUN_6IN4) {
		p->family = AF_INET;
		p->tos = tos;
		p->l4_protocol = IPPROTO_IPV6;
		p->tot_len = len + sizeof(struct iphdr);
		p->ipv4_src = t->local.s6_addr32[3];
		p->ipv4_dst = t->remote.s6_addr32[3];
	} else {
		p->family = AF_INET6;
		p->flowinfo = bpf_htonl(((__u32)tos << 20) | label);
		p->l4_protocol = IPPROTO_IPIP;
		p->tot_len = len + TUN_OUTER_LEN;
		__builtin_memcpy(p->ipv6_src, &t->local, sizeof(p->ipv6_src));
		__builtin_memcpy(p->ipv6_dst, &t->remote, sizeof(p->ipv6_dst));
	}
	p->ifindex = ctx->ingress_ifindex;
	rc = bpf_fib_lookup(ctx, p, sizeof(*p), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return fib_pass_reason(rc);
	if (p->ifindex == ctx->ingress_ifindex)
		return XDPR_CNT_PASS_HAIRPIN;
	nh->ifindex = p->ifindex;
	nh->mtu = p->mtu_result;
	__builtin_memcpy(nh->dmac, p->dmac, ETH_ALEN);
	__builtin_memcpy(nh->smac, p->smac, ETH_ALEN);
	return 0;
}

/* tunnel_nexthop returns t's outer next hop, from the cache of its slot
 * while that is fresh, else looked up again (p is the lookup's scratch);
 * or NULL with the counter why the kernel gets the packet in *why. The
 * same for both modes: a tunnel's outer route is the same for every
 * packet. */
static __always_inline struct xdpr_tun_nexthop *tunnel_nexthop(struct xdp_md *ctx, struct xdpr_tunnel *t,
							       struct bpf_fib_lookup *p, __u8 tos, __u32 label,
							       __u16 len, __u32 *why)
{
	__u32 slot = t->slot;
	struct xdpr_tun_nexthop *nh = bpf_map_lookup_elem(&xdpr_tun_nexthops, &slot);

	if (!nh) {
		*why = XDPR_CNT_PASS_FIB_OTHER;
		return NULL;
	}
	/* Within the jiffy of the last check the entry is still good: a jiffy
	 * (at most 10 ms) is well below the entry's lifetime, so a next hop
	 * is trusted at most one jiffy longer than tun_nexthop_ttl_ns. The
	 * loader invalidates an entry by zeroing it (expires_ns 0). */
	__u64 jiffies = bpf_jiffies64();
	if (nh->checked_jiffies != jiffies || !nh->expires_ns) {
		__u64 now = bpf_ktime_get_ns();

		nh->checked_jiffies = jiffies;
		if (nh->expires_ns <= now) {
			__u32 w = tunnel_outer_route(ctx, t, p, nh, tos, label, len);

			if (w) {
				nh->expires_ns = 0;
				*why = w;
				return NULL;
			}
			nh->expires_ns = now + tun_nexthop_ttl_ns;
		}
	}
	if (len + tunnel_outer_len(t) > nh->mtu) {
		*why = XDPR_CNT_PASS_FRAG_NEEDED;
		return NULL;
	}
	return nh;
}

/* tunnel_encap is the hook in forward_ipv4 for a packet whose route lookup
 * did not end in a plain redirect (reason). The IPv4 header is option-less,
 * unfragmented, checksummed and wholly in the frame (checked by the
 * caller). nat, when not NULL, is the source translation conntrack chose
 * for the packet's flow (XDPR_CT_NAT_SRC): applied only into a nat44
 * tunnel whose fixed IPv4 it translates to. mb_len is the whole frame's
 * length when it has more than one buffer (mb_frame_len), else 0: the
 * headers are in the first buffer, the rest of the packet behind it. ip4
 * is the caller's route lookup; tunnel_encap reuses it for its own. It
 * returns the counted verdict, or -1 when the route is no tunnel's.
 *
 * Inline: what it holds shares xdpr_main's frame with the other paths'
 * without making it larger, where a call of its own cost each packet some
 * 10 ns (BenchmarkForwardCost, encap/ipv4); its rare branches with stack
 * of their own (icmp_frag_needed, xdp_mss_clamp_syn) are out of line. */
static __always_inline int tunnel_encap(struct xdp_md *ctx, struct iphdr *iph,
					struct bpf_fib_lookup *ip4, __u32 reason,
					const struct xdpr_ct_nat *nat, __u32 mb_len)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u64 rx_len = mb_len ? mb_len : data_end - data;
	struct xdpr_tunnel *t = tunnel_for_egress(ctx, iph, ip4, reason);
	__u16 len = len16(iph->tot_len);
	__u32 label;
	__u8 tos;

	if (!t || t->mode != XDPR_TUN_IPIP6)
		return -1;
	if (nat) {
		/* A translation to another address (a plain IPv4 WAN's
		 * masquerade, a tunnel without NAT44) is the kernel's. */
		if (!(t->flags & XDPR_TUN_F_NAT44) || t->nat44_addr != nat->saddr)
			return tun_count(XDPR_CNT_PASS_CT_NAT, rx_len, XDP_PASS);
	} else if (t->flags & XDPR_TUN_F_NAT44) {
		/* Without the conntrack gate (or without a NAT binding):
		 * conntrack in the kernel must see it. */
		return tun_count(XDPR_CNT_PASS_TUN_NAT44, rx_len, XDP_PASS);
	}
	if (len > t->mtu) {
		if (iph->frag_off & bpf_htons(IPV4_DF)) {
			int act = icmp_frag_needed(ctx, t->mtu, rx_len, ip4);

			if (act >= 0)
				return act;
			return tun_count(XDPR_CNT_PASS_FRAG_NEEDED, rx_len, XDP_PASS);
		}
		return tun_count(XDPR_CNT_PASS_TUN_OVERSIZE, rx_len, XDP_PASS);
	}

	/* The outer route, before anything is written. */
	/* Of the packet as it leaves, translated: what the slow path, which
	 * encapsulates after the kernel's SNAT, hashes. */
	if (nat)
		label = flow_label4(nat->saddr, nat->daddr, iph->protocol, bpf_ntohl(nat->ports));
	else
		label = tunnel_flow_label(iph, ipv4_ports(iph, data_end, (void *)iph + len));
	tos = iph->tos;
	__u32 why = 0;
	/* ip4 is spent (tunnel_for_egress read it): the outer lookup's. */
	struct xdpr_tun_nexthop *nh = tunnel_nexthop(ctx, t, ip4, tos, label, len, &why);
	if (!nh)
		return tun_count(why, rx_len, XDP_PASS);
	why = redirect_port(nh->ifindex, mb_len != 0);
	if (why)
		return tun_count(why, rx_len, XDP_PASS);
	/* Ethernet padding after a short packet must not travel inside the
	 * tunnel: the kernel would have trimmed it. (Of a multi-buffer frame
	 * the tail is trimmed from its last buffer.) */
	int excess = (int)rx_len - (int)(sizeof(struct ethhdr) + len);
	if (excess > 0 && bpf_xdp_adjust_tail(ctx, -excess))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_PASS);
	if (bpf_xdp_adjust_head(ctx, -TUN_OUTER_LEN))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_PASS);

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *o = data + sizeof(*eth);
	struct iphdr *in = (void *)(o + 1);
	if ((void *)(in + 1) > data_end)
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);

	/* nh is map memory: still valid after the head moved (packet
	 * pointers are not), so the MACs need no copy on the stack. */
	eth_set_macs(eth, nh->dmac, nh->smac);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	tunnel_write_outer(o, t, tos, len, label);

	/* The transport header was within the frame before the head moved
	 * (the gate checked it), and the frame only grew in front: this
	 * cannot fail, but the verifier wants the bounds again. */
	if (nat && nat44_rewrite(in, data_end, nat))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);
	/* Incrementally, as the kernel's ip_decrease_ttl: for the validated
	 * header this gives the bytes a fresh sum would (both results are the
	 * same one's complement value, and neither form yields 0xffff). */
	ipv4_decrement_ttl(in);
	if (in->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(in + 1);

		if ((void *)(tcp + 1) <= data_end)
			xdp_mss_clamp(tcp, data_end, t->mtu - 40);
	}
	return tun_count(nat ? XDPR_CNT_FWD_NAT44_SNAT : XDPR_CNT_TUN_ENCAP, rx_len, XDP_REDIRECT);
}

/* tunnel_outer_fragment is the hook in forward_ipv6 for a fragment header
 * right behind the IPv6 header on a WAN port. A fragment of ipip6 from a
 * configured pair goes to the kernel, which reassembles the packet
 * (RFC 6333 5.3: reassemble, then decapsulate); the daemon decapsulates it
 * then (xdpr_tun_reasm in tunnel_tc.h). Counted apart from other
 * fragments, so that they are seen where no daemon runs. It returns the
 * counted verdict, or -1 for any other fragment. Out of line: the
 * endpoint key (tunnel_ep_lookup) takes 32 octets, of a frame of its own,
 * not of xdpr_main's (loader/stack_test.go). */
static __noinline int tunnel_outer_fragment(struct xdp_md *ctx, struct ipv6hdr *ip6, __u32 gen)
{
	void *data_end = (void *)(long)ctx->data_end;
	const __u8 *fh = (const __u8 *)(ip6 + 1);

	if ((void *)(fh + 8) > data_end)
		return -1;
	/* Every fragment's header names the first header of the fragmentable
	 * part: the inner IPv4, or a Linux ip6tnl peer's destination options
	 * (tunnel_hdr.h). */
	if (fh[0] != IPPROTO_IPIP && fh[0] != IPPROTO_DSTOPTS)
		return -1;
	if (!tunnel_ep_lookup(&ip6->saddr, &ip6->daddr, gen))
		return -1;
	/* pass counts the whole frame: data_end - data is only the first
	 * buffer of a multi-buffer one. */
	return pass(ctx, XDPR_CNT_PASS_TUN_FRAGMENT);
}

/* tun6in4_outer_fragment is tunnel_outer_fragment for 6in4: the hook in
 * forward_ipv4 for an IPv4 fragment of protocol 41 (every fragment says
 * so) on a WAN port, from remote to local. A configured pair's goes to the
 * kernel, which reassembles the packet; the daemon decapsulates it then
 * (xdpr_tun_reasm). It returns the counted verdict, or -1 for any other
 * pair. Out of line for the same reason: a cache miss builds the
 * endpoint key (tunnel_ep4_lookup) in a frame of its own. */
static __noinline int tun6in4_outer_fragment(struct xdp_md *ctx, __be32 remote, __be32 local, __u32 gen)
{
	if (!tunnel_ep4_lookup(remote, local, gen))
		return -1;
	return pass(ctx, XDPR_CNT_PASS_TUN_FRAGMENT);
}

/* tunnel_decap is the hook in forward_ipv6 for next header 4 on a WAN port.
 * It returns the counted verdict, or -1 to let the packet take the normal
 * IPv6 forward path (ipip6 in transit to someone else). The caller checked
 * that the outer payload lies within the frame; mb_len as for
 * tunnel_encap; p is the caller's fib lookup, not yet used. Out of line:
 * inline, it made xdpr_main's frame 216 octets (of the 384 every call
 * chain may take, loader/stack_test.go), at the price of a call per
 * decapsulated packet. The conntrack gate is the port's
 * (xdpr_port_ct_gate, a constant to the verifier). */
static __noinline int tunnel_decap(struct xdp_md *ctx, struct ipv6hdr *ip6, __u32 gen, __u32 mb_len,
				   struct bpf_fib_lookup *p)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u64 rx_len = mb_len ? mb_len : data_end - data;
	struct iphdr *iph;
	struct xdpr_tunnel_decap *t;
	__u32 reason;
	int ext = ipip6_ext_len(ip6, (const __u8 *)(ip6 + 1), data_end);
	long rc;

	if (ext < 0)
		return -1;
	/* A constant offset either way: the verifier tracks it exactly. */
	iph = ext ? (void *)(ip6 + 1) + 8 : (void *)(ip6 + 1);
	__u16 plen = bpf_ntohs(ip6->payload_len) - ext;
	int outer = TUN_OUTER_LEN + ext;

	t = tunnel_ep_lookup(&ip6->saddr, &ip6->daddr, gen);
	if (!t) {
		struct xdpr_npt_rule *r;

		/* Not a tunnel of ours. Addressed to this host it would reach a
		 * kernel without ipip6 support: drop. In transit: forward. An
		 * NPT outside address is an inside host's (its own tunnel
		 * behind NPT), whatever the fib says of the untranslated
		 * address; only the excluded one is the router's. */
		r = lpm6_lookup(&xdpr_npt_out, ctx->ingress_ifindex, &ip6->daddr);
		if (r && !npt_is_excluded(&ip6->daddr, r))
			return -1;
		__builtin_memset(p, 0, sizeof(*p));
		p->family = AF_INET6;
		__builtin_memcpy(p->ipv6_src, &ip6->saddr, sizeof(p->ipv6_src));
		__builtin_memcpy(p->ipv6_dst, &ip6->daddr, sizeof(p->ipv6_dst));
		p->ifindex = ctx->ingress_ifindex;
		if (bpf_fib_lookup(ctx, p, sizeof(*p), xdpr_fib_skip_neigh) == BPF_FIB_LKUP_RET_NOT_FWDED)
			return tun_count(XDPR_CNT_DROP_TUN_UNKNOWN_ENDPOINT, rx_len, XDP_DROP);
		return -1;
	}

	/* The inner packet, checked as forward_ipv4 checks one; anything odd
	 * goes to the kernel whole, where TC decapsulates it. */
	/* The payload length as a number: clang merges two pointer bounds
	 * into one the verifier cannot use. */
	if ((void *)(iph + 1) > data_end || bpf_ntohs(ip6->payload_len) < ext + sizeof(*iph))
		return tun_count(XDPR_CNT_PASS_TRUNCATED, rx_len, XDP_PASS);
	if (iph->version != 4 || iph->ihl < 5)
		return tun_count(XDPR_CNT_PASS_MALFORMED, rx_len, XDP_PASS);
	if (iph->ihl != 5)
		return tun_count(XDPR_CNT_PASS_IPV4_OPTIONS, rx_len, XDP_PASS);
	__u16 len = bpf_ntohs(iph->tot_len);
	if (len != plen)
		return tun_count(len > plen ? XDPR_CNT_PASS_TRUNCATED : XDPR_CNT_PASS_MALFORMED,
				 rx_len, XDP_PASS);
	if (len < sizeof(*iph))
		return tun_count(XDPR_CNT_PASS_MALFORMED, rx_len, XDP_PASS);
	if (!ipv4_header_ok(iph))
		return tun_count(XDPR_CNT_PASS_BAD_CHECKSUM, rx_len, XDP_PASS);
	/* A source no tunnel may bring (the router's own, a LAN host's, a
	 * martian): the kernel would drop it, and so does the slow path. */
	reason = tun_inner_src_kind(iph->saddr);
	if (unlikely(reason))
		return tun_count(reason == XDPR_SRC_LAN ? XDPR_CNT_DROP_TUN_SRC_LAN : XDPR_CNT_DROP_TUN_SRC_LOCAL,
				 rx_len, XDP_DROP);
	if (iph->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET_MASK))
		return tun_count(XDPR_CNT_PASS_FRAGMENT, rx_len, XDP_PASS);
	reason = ipv4_addr_reason(iph->saddr, iph->daddr);
	if (reason)
		return tun_count(reason, rx_len, XDP_PASS);
	if (iph->ttl <= 1)
		return tun_count(XDPR_CNT_PASS_TTL_EXPIRED, rx_len, XDP_PASS);
	int tos = ecn_decap(ipv6_tclass(ip6), iph->tos);
	if (tos < 0)
		return tun_count(XDPR_CNT_DROP_TUN_ECN, rx_len, XDP_DROP);
	/* Conntrack sees the inner packet only (conntrack.h). */
	struct xdpr_ct_nat nat = {};
	if (xdpr_port_ct_gate) {
		reason = ct_gate_ipv4(ctx, iph, (void *)iph + len, data_end, &nat);
		if (reason)
			return tun_count(reason, rx_len, XDP_PASS);
		/* A translation back from this tunnel's fixed IPv4 (the reply
		 * of a masqueraded flow, or a port forward to a LAN host) is
		 * applied here; any other is the kernel's. */
		if (nat.kind && (nat.kind != XDPR_CT_NAT_DST || !t->nat44_addr || t->nat44_addr != iph->daddr))
			return tun_count(XDPR_CNT_PASS_CT_NAT, rx_len, XDP_PASS);
	}

	/* As if it arrived on the tunnel netdev, like the slow path's. */
	__builtin_memset(p, 0, sizeof(*p));
	p->family = AF_INET;
	p->tos = tos;
	p->l4_protocol = iph->protocol;
	p->tot_len = len;
	p->ipv4_src = iph->saddr;
	/* Routed after the translation, as the kernel routes after
	 * conntrack's PREROUTING NAT. */
	p->ipv4_dst = nat.kind ? nat.daddr : iph->daddr;
	p->ifindex = t->ifindex;
	rc = bpf_fib_lookup(ctx, p, sizeof(*p), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return tun_count(fib_pass_reason(rc), rx_len, XDP_PASS);
	if (p->ifindex == t->ifindex)
		return tun_count(XDPR_CNT_PASS_HAIRPIN, rx_len, XDP_PASS);
	reason = redirect_port(p->ifindex, mb_len != 0);
	if (reason)
		return tun_count(reason, rx_len, XDP_PASS);

	__u16 mss = t->mtu - 40;
	int excess = (int)rx_len - (int)(sizeof(struct ethhdr) + outer + len);
	if (excess > 0 && bpf_xdp_adjust_tail(ctx, -excess))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_PASS);
	if (bpf_xdp_adjust_head(ctx, outer))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_PASS);

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *in = data + sizeof(*eth);
	if ((void *)(in + 1) > data_end)
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);

	eth_set_macs(eth, p->dmac, p->smac);
	eth->h_proto = bpf_htons(ETH_P_IP);
	/* As in tunnel_encap: cannot fail, bounds again for the verifier. */
	if (nat.kind && nat44_rewrite(in, data_end, &nat))
		return tun_count(XDPR_CNT_TUN_NO_ROOM, rx_len, XDP_DROP);
	in->tos = tos;
	in->ttl--;
	ipv4_csum_full(in);
	if (in->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(in + 1);

		if ((void *)(tcp + 1) <= data_end)
			xdp_mss_clamp(tcp, data_end, mss);
	}
	return tun_count(nat.kind ? XDPR_CNT_FWD_NAT44_DNAT : XDPR_CNT_TUN_DECAP, rx_len, XDP_REDIRECT);
}

#endif
