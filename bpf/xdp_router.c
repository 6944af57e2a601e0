//go:build ignore

/* xdprouter's XDP program: forwards IPv4 and IPv6 by fib lookup and hands
 * everything it does not finish to the kernel unmodified, counting why. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "include/consts.h"
#include "include/structs.h"
#include "include/maps.h"
#include "include/parsing.h"
#include "include/csum.h"
#include "include/ip.h"
#include "include/forward.h"
#include "include/tunnel.h"
#include "include/tunnel_tc.h"
#include "include/tunnel6in4.h"
#include "include/npt.h"
#include "include/ndp.h"
#include "include/tc_npt.h"
#include "include/tc_reply.h"
#include "include/conntrack.h"
#include "include/vxlan.h"

/* Per-attachment identity. The loader loads one program instance per
 * interface and sets these before loading, so the per-packet path needs no
 * map lookup for it (a hash lookup cost ~30 ns per packet, a fifth of the
 * whole forward path). The xdpr_ifaces map keeps the same facts for status
 * and bpftool. Read through volatile so clang cannot fold the zero
 * initialisers; the verifier turns the reads into constants. */
const volatile __u32 xdpr_port_ifindex = 0;
const volatile __u32 xdpr_port_role = XDPR_ROLE_NONE;
const volatile __u8 xdpr_port_mac[6] __attribute__((aligned(4))) = {};

/* Gives the counter enum a place in BTF, from where bpf2go emits it for Go
 * and `xdprouter stats` reads the counter names. */
const enum xdpr_counter xdpr_counter_names __attribute__((unused));
const enum xdpr_tc_counter xdpr_tc_counter_names __attribute__((unused));
const enum xdpr_npt_mode xdpr_npt_mode_names __attribute__((unused));
const enum xdpr_feature_bit xdpr_feature_names __attribute__((unused));
const enum xdpr_event xdpr_event_names __attribute__((unused));
const enum xdpr_ct_gate xdpr_ct_gate_names __attribute__((unused));
const enum xdpr_tx_path xdpr_tx_path_names __attribute__((unused));
const enum xdpr_counter_layout xdpr_counter_layout_names __attribute__((unused));
const enum xdpr_meta xdpr_meta_names __attribute__((unused));
const enum xdpr_src_kind xdpr_src_kind_names __attribute__((unused));

/* mb_frame_len is asked when an IP packet reaches past the frame's first
 * buffer (end): either the frame is cut short, or it has more than one
 * buffer (a jumbo frame; the program is xdp.frags), whose later buffers
 * XDP does not read directly. It returns the whole frame's length when it
 * has need octets and its first buffer holds every header the data plane
 * reads (XDPR_MB_LINEAR_MIN), else 0 with the counter in *reason. Lengths
 * checked against the MTUs come from the IP headers, never from the first
 * buffer's size. */
static __always_inline __u32 mb_frame_len(struct xdp_md *ctx, void *eth, void *end, __u32 need,
					  __u32 *reason)
{
	__u32 len = bpf_xdp_get_buff_len(ctx);

	if (len < need) {
		*reason = XDPR_CNT_PASS_TRUNCATED;
		return 0;
	}
	if (end - eth < XDPR_MB_LINEAR_MIN) {
		*reason = XDPR_CNT_PASS_MB_HEADERS;
		return 0;
	}
	return len;
}

/* forward_ipv4 is compiled once with the conntrack gate and once without
 * (gate is a constant at each call site); see xdpr_main. */
static __always_inline int forward_ipv4(struct xdp_md *ctx, struct ethhdr *eth,
					struct cursor *c, int gate, struct bpf_fib_lookup *p)
{
	struct iphdr *iph = parse_ipv4(c);
	struct xdpr_ct_nat nat = {};
	struct xdpr_ct_nat *np = NULL;
	__u32 reason, mb_len = 0;

	if (unlikely(!iph))
		return pass(ctx, XDPR_CNT_PASS_TRUNCATED);
	/* Version 4, no options: one octet to compare. */
	if (unlikely(*(__u8 *)iph != 0x45))
		return pass(ctx, iph->version != 4 || iph->ihl < 5 ? XDPR_CNT_PASS_MALFORMED
								 : XDPR_CNT_PASS_IPV4_OPTIONS);

	__u16 tot_len = len16(iph->tot_len);
	if (unlikely(tot_len < sizeof(*iph)))
		return pass(ctx, XDPR_CNT_PASS_MALFORMED);
	if (unlikely((void *)iph + tot_len > c->end)) {
		mb_len = mb_frame_len(ctx, eth, c->end, sizeof(*eth) + tot_len, &reason);
		if (!mb_len)
			return pass(ctx, reason);
	}
	if (unlikely(!ipv4_header_ok(iph)))
		return pass(ctx, XDPR_CNT_PASS_BAD_CHECKSUM);
	if (unlikely(iph->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET_MASK))) {
		/* 6in4 fragmented in the outer header (tunnel.h). */
		if (xdpr_port_role == XDPR_ROLE_WAN && iph->protocol == IPPROTO_IPV6) {
			int act = tun6in4_outer_fragment(ctx, iph->saddr, iph->daddr, features() >> 32);

			if (act >= 0)
				return act;
		}
		return pass(ctx, XDPR_CNT_PASS_FRAGMENT);
	}
	/* 6in4 on a WAN port (xdpr_port_role is a load-time constant: other
	 * ports have no such test), before the gate, which judges the inner
	 * packet. */
	if (xdpr_port_role == XDPR_ROLE_WAN && unlikely(iph->protocol == IPPROTO_IPV6)) {
		int act = tun6in4_decap(ctx, p, features(), gate, mb_len);

		if (act >= 0)
			return act;
	}
	reason = ipv4_addr_reason(iph->saddr, iph->daddr);
	if (unlikely(reason))
		return pass(ctx, reason);
	/* VXLAN to this router (vxlan.h): before the TTL, which an outer
	 * header at its destination need not have. */
	if (iph->protocol == IPPROTO_UDP) {
		int act = vxlan_decap(ctx, 0, gate);

		if (act >= 0)
			return act;
	}
	if (unlikely(iph->ttl <= 1))
		return pass(ctx, XDPR_CNT_PASS_TTL_EXPIRED);
	/* Before anything is written, and before the route: the same tuple
	 * serves the plain forward and the encapsulation into a tunnel. */
	if (gate) {
		reason = ct_gate_ipv4(ctx, iph, (void *)iph + tot_len, c->end, &nat);
		if (unlikely(reason))
			return pass(ctx, reason);
		/* NAT44 in XDP (nat44.h): on this path only a source
		 * translation into a nat44 tunnel; a destination one arrives
		 * by a tunnel (tunnel_decap). */
		if (unlikely(nat.kind)) {
			if (nat.kind != XDPR_CT_NAT_SRC)
				return pass(ctx, XDPR_CNT_PASS_CT_NAT);
			np = &nat;
		}
	}

	__builtin_memset(p, 0, sizeof(*p));
	p->family = AF_INET;
	p->tos = iph->tos;
	p->l4_protocol = iph->protocol;
	p->tot_len = tot_len;
	p->ipv4_src = iph->saddr;
	p->ipv4_dst = iph->daddr;
	p->ifindex = xdpr_port_ifindex;

	/* A translated packet may only leave by a tunnel: its route is
	 * looked up without arming a redirect or writing a MAC. */
	reason = np ? fib_route(ctx, p) : fib_redirect(ctx, eth, p, mb_len != 0);
	if (unlikely(reason)) {
		/* tunnel_encap may reuse the lookup. */
		__u32 egress = p->ifindex;
		/* A route into a tunnel netdev never ends in a plain redirect:
		 * a port of neither map, EGRESS_NOT_ATTACHED as yet. */
		int act = tunnel_encap(ctx, iph, p, reason, np, mb_len);

		if (act >= 0)
			return act;
		/* Into a vxlan netdev (vxlan.h); never with a translation,
		 * which only a nat44 tunnel applies. */
		if (!np) {
			act = vxlan_encap(ctx, p, reason, mb_len != 0, 0);
			if (act >= 0)
				return act;
		}
		/* NAT out of a port that is no tunnel's: the kernel's. */
		if (np && reason == XDPR_CNT_PASS_EGRESS_NOT_ATTACHED)
			return pass(ctx, XDPR_CNT_PASS_CT_NAT);
		return pass(ctx, egress_reason(reason, egress));
	}
	ipv4_decrement_ttl(iph);
	return count_len(XDPR_CNT_FWD_IPV4, mb_len ? mb_len : c->end - (void *)eth, XDP_REDIRECT);
}

/* ipv6_walk_ext follows the extension header chain only to find what the
 * forward path cannot finish: hop-by-hop options (every router must process
 * them), fragments, and chains that are truncated or too long. It returns 0
 * when the packet can be forwarded. */
static __always_inline __u32 ipv6_walk_ext(struct cursor *c, __u8 nh, void *payload_end)
{
#pragma unroll
	for (int i = 0; i < XDPR_MAX_EXT_HEADERS; i++) {
		struct ipv6_opt_hdr_min *h;

		if (likely(!ipv6_is_ext_header(nh)))
			return 0;
		if (nh == IPPROTO_HOPOPTS)
			return XDPR_CNT_PASS_IPV6_HOP_BY_HOP;
		if (nh == IPPROTO_FRAGMENT)
			return XDPR_CNT_PASS_FRAGMENT;
		h = cursor_pull(c, 8);
		if (!h)
			return XDPR_CNT_PASS_TRUNCATED;
		nh = h->nexthdr;
		if (h->hdrlen && !cursor_pull(c, h->hdrlen * 8))
			return XDPR_CNT_PASS_TRUNCATED;
		/* Within the frame but beyond the payload length. */
		if (c->pos > payload_end)
			return XDPR_CNT_PASS_TRUNCATED;
	}
	return ipv6_is_ext_header(nh) ? XDPR_CNT_PASS_IPV6_EXT_LIMIT : 0;
}

/* forward_ipv6 is compiled once per role and gate (both constants at each
 * call site), so each copy holds only what its role does; see xdpr_main. */
static __always_inline int forward_ipv6(struct xdp_md *ctx, struct ethhdr *eth,
					struct cursor *c, __u32 role, int gate,
					struct bpf_fib_lookup *p)
{
	struct ipv6hdr *ip6 = parse_ipv6(c);
	struct xdpr_npt_rule *dnpt;
	struct in6_addr dst;
	__u32 reason, fwd, mb_len = 0;
	__u64 feat;

	if (unlikely(!ip6))
		return pass(ctx, XDPR_CNT_PASS_TRUNCATED);
	if (unlikely(ip6->version != 6))
		return pass(ctx, XDPR_CNT_PASS_MALFORMED);

	__u16 plen = len16(ip6->payload_len);
	void *payload_end = (void *)(ip6 + 1) + plen;
	if (unlikely(payload_end > c->end)) {
		mb_len = mb_frame_len(ctx, eth, c->end, sizeof(*eth) + sizeof(*ip6) + plen, &reason);
		if (!mb_len)
			return pass(ctx, reason);
	}
	/* NPT and decapsulation happen on WAN and LAN ports only: a port
	 * without a role has no lookup here. After the length check: one
	 * value fewer held across its helper call. */
	feat = role != XDPR_ROLE_NONE ? features() : 0;
	if (role == XDPR_ROLE_WAN &&
	    (ip6->nexthdr == IPPROTO_IPIP || ip6->nexthdr == IPPROTO_DSTOPTS)) {
		int act = tunnel_decap(ctx, ip6, feat >> 32, mb_len, p);

		if (act >= 0)
			return act;
	}
	if (role == XDPR_ROLE_WAN && unlikely(ip6->nexthdr == IPPROTO_FRAGMENT)) {
		int act = tunnel_outer_fragment(ctx, ip6, feat >> 32);

		if (act >= 0)
			return act;
	}
	reason = ipv6_addr_reason(&ip6->saddr, &ip6->daddr);
	if (unlikely(reason))
		return pass(ctx, reason);
	/* VXLAN to this router (vxlan.h). */
	if (ip6->nexthdr == IPPROTO_UDP) {
		int act = vxlan_decap(ctx, 1, gate);

		if (act >= 0)
			return act;
	}
	/* TCP and UDP right behind the header, nearly all traffic: two
	 * compares instead of the walk's switch over extension headers. */
	if (unlikely(ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP)) {
		reason = ipv6_walk_ext(c, ip6->nexthdr, payload_end);
		if (unlikely(reason))
			return pass(ctx, mb_len && reason == XDPR_CNT_PASS_TRUNCATED ? XDPR_CNT_PASS_MB_HEADERS
										    : reason);
		/* The gate and NPT read the transport header (and an ICMPv6
		 * error's embedded header): of a multi-buffer frame, in the
		 * first buffer. Right behind the IPv6 header it always is. */
		if (unlikely(mb_len) && c->pos + XDPR_MB_L4_MIN > c->end)
			return pass(ctx, XDPR_CNT_PASS_MB_HEADERS);
	}
	if (unlikely(ip6->hop_limit <= 1))
		return pass(ctx, XDPR_CNT_PASS_TTL_EXPIRED);

	__builtin_memset(p, 0, sizeof(*p));
	p->family = AF_INET6;
	p->flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
	p->l4_protocol = ip6->nexthdr;
	p->tot_len = sizeof(*ip6) + plen;
	__builtin_memcpy(p->ipv6_src, &ip6->saddr, sizeof(p->ipv6_src));
	__builtin_memcpy(p->ipv6_dst, &ip6->daddr, sizeof(p->ipv6_dst));
	p->ifindex = xdpr_port_ifindex;
	/* NPT's outside interface is the WAN: DNPT only on WAN ports, SNPT
	 * only for what LAN ports send; other ports pay for no lookup. */
	dnpt = NULL;
	if (role == XDPR_ROLE_WAN && (feat & XDPR_F_NPT)) {
		dnpt = npt_dnpt_rule(xdpr_port_ifindex, ip6, feat, &dst, &reason);
		/* The router's own address is the kernel's: no need to ask
		 * the fib what it would say. */
		if (reason == XDPR_CNT_PASS_NPT_EXCLUDED)
			return pass(ctx, reason);
		if (reason)
			return count(ctx, reason, XDP_DROP);
		if (dnpt)
			__builtin_memcpy(p->ipv6_dst, &dst, sizeof(p->ipv6_dst));
	}
	/* The tuple conntrack holds: after DNPT, before SNPT (conntrack.h). */
	if (gate) {
		reason = ct_gate_ipv6(ctx, ip6, dnpt ? &dst : &ip6->daddr, payload_end, c->end);
		if (unlikely(reason))
			return pass(ctx, reason);
	}

	reason = fib_redirect(ctx, eth, p, mb_len != 0);
	if (unlikely(reason)) {
		/* The hooks may reuse the lookup. */
		__u32 egress = p->ifindex;

		/* Into a vxlan netdev (vxlan.h) or a 6in4 tunnel's netdev
		 * (tunnel6in4.h), with SNPT when an npt entry on the netdev
		 * is the source's (a LAN port's packet, as on the WAN). Not
		 * what DNPT translated for the WAN: the kernel's. In this
		 * order: a "too big" answer is looked up again by the first
		 * from what the lookup left in p, by the second from the
		 * packet. */
		if (!dnpt) {
			__u64 npt = role == XDPR_ROLE_LAN && (feat & XDPR_F_NPT) ? feat : 0;
			int act = vxlan_encap(ctx, p, reason, mb_len != 0, npt);

			if (act < 0)
				act = tun6in4_encap(ctx, p, reason, mb_len, npt);

			if (act >= 0)
				return act;
		}
		return pass(ctx, egress_reason(reason, egress));
	}
	/* Past this point a failure drops: the MACs are already rewritten. */
	reason = npt_forward(ip6, c->end, dnpt, &dst,
			     role == XDPR_ROLE_LAN && (feat & XDPR_F_NPT), p->ifindex, feat, &fwd);
	if (unlikely(reason))
		return count(ctx, reason, XDP_DROP);
	ip6->hop_limit--;
	return count_len(fwd, mb_len ? mb_len : c->end - (void *)eth, XDP_REDIRECT);
}

/* for_this_port says whether a frame is addressed to the port's own MAC.
 * Only those are forwarded: the kernel drops frames for other hosts (seen in
 * promiscuous mode), so forwarding them would make XDP disagree with it, and
 * multicast and broadcast are the kernel's. The port's MAC is unicast, so
 * one comparison settles both; which of the two a mismatch is only decides
 * the counter (l2_reason). Two loads and two compares, not six of each: the
 * frame starts 4-aligned (XDP headroom) and xdpr_port_mac is declared so. */
static __always_inline int for_this_port(struct ethhdr *eth)
{
	return ((__u32 *)(void *)eth)[0] == *(const volatile __u32 *)&xdpr_port_mac[0] &&
	       ((__u16 *)(void *)eth)[2] == *(const volatile __u16 *)&xdpr_port_mac[4];
}

static __always_inline __u32 l2_reason(struct ethhdr *eth)
{
	return eth->h_dest[0] & 1 ? XDPR_CNT_PASS_L2_MULTICAST : XDPR_CNT_PASS_OTHERHOST;
}

/* ndp_proxy_if_enabled answers a Neighbor Solicitation for a proxied
 * address when the NDP proxy has entries; it returns the action, or -1 for
 * a packet it leaves alone. Out of line: the proxy's lookup keys and its
 * answer take a frame of their own, not a share of xdpr_main's, which
 * every call chain adds up on 6.1 (loader/stack_test.go); p is
 * xdpr_main's fib lookup, not yet used. */
static __noinline int ndp_proxy_if_enabled(struct xdp_md *ctx, struct bpf_fib_lookup *p)
{
	if (!(features() & XDPR_F_NDP_PROXY))
		return -1;
	/* Volatile reads, one by one: through a plain pointer clang would
	 * fold the zero initialiser. */
	__u8 mac[ETH_ALEN] = { xdpr_port_mac[0], xdpr_port_mac[1], xdpr_port_mac[2],
			       xdpr_port_mac[3], xdpr_port_mac[4], xdpr_port_mac[5] };

	return ndp_proxy(ctx, xdpr_port_ifindex, mac, p);
}

/* forward_ipv6_port runs the copy of the IPv6 path for the port's role. */
static __always_inline int forward_ipv6_port(struct xdp_md *ctx, struct ethhdr *eth,
					     struct cursor *c, int gate, struct bpf_fib_lookup *p)
{
	switch (xdpr_port_role) {
	case XDPR_ROLE_WAN:
		return forward_ipv6(ctx, eth, c, XDPR_ROLE_WAN, gate, p);
	case XDPR_ROLE_LAN:
		return forward_ipv6(ctx, eth, c, XDPR_ROLE_LAN, gate, p);
	}
	return forward_ipv6(ctx, eth, c, XDPR_ROLE_NONE, gate, p);
}

/* xdp.frags (BPF_F_XDP_HAS_FRAGS): the program takes multi-buffer frames,
 * so it attaches at any MTU (a single-buffer program is refused above
 * some 3.5 KiB, with ERANGE on a veth) and sees a jumbo frame whole, its
 * headers in the first buffer (mb_frame_len). */
SEC("xdp.frags")
int xdpr_main(struct xdp_md *ctx)
{
	struct cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	/* The one fib lookup of the program: every path that looks a route
	 * up fills it in turn, the subprograms through a pointer, so no
	 * frame of a call chain holds a second one (64 octets). */
	struct bpf_fib_lookup fib;
	struct ethhdr *eth;
	__u16 proto;
	int action;

	eth = parse_eth(&c);
	if (unlikely(!eth))
		return pass(ctx, XDPR_CNT_PASS_TRUNCATED);
	/* From here on the port's ifindex is xdpr_port_ifindex, one load,
	 * where ctx->ingress_ifindex is three dependent ones (xdp_buff ->
	 * rxq -> dev -> ifindex). */
	if (unlikely(ctx->ingress_ifindex != xdpr_port_ifindex))
		return pass(ctx, XDPR_CNT_PASS_IFACE_UNKNOWN);
	/* struct ethhdr is packed: through it clang loads byte by byte. */
	proto = ((__u16 *)(void *)eth)[6];
	if (proto == bpf_htons(ETH_P_IPV6)) {
		/* Before the L2 check: solicitations go to multicast MACs.
		 * Only ICMPv6 right behind the header can be one (ndp_proxy
		 * asks for no more), so other traffic skips the features
		 * lookup, which is a call as far as clang knows (inlined by
		 * the verifier): r1-r5 would be spilled around it. */
		if (unlikely((void *)eth + sizeof(*eth) + sizeof(struct ipv6hdr) <= c.end &&
			     ((struct ipv6hdr *)(void *)(eth + 1))->nexthdr == IPPROTO_ICMPV6)) {
			action = ndp_proxy_if_enabled(ctx, &fib);
			if (action >= 0)
				return action;
		}
		if (unlikely(!for_this_port(eth)))
			return pass(ctx, l2_reason(eth));
		/* One copy of the IPv6 path per role and gate, each
		 * specialised by the compiler. Role and gate are per-port
		 * constants: the verifier follows only the copy for this
		 * port and drops the others at load time, so no test of
		 * either is left in the per-packet path but these. */
		if (xdpr_port_ct_gate)
			return forward_ipv6_port(ctx, eth, &c, 1, &fib);
		return forward_ipv6_port(ctx, eth, &c, 0, &fib);
	}
	if (unlikely(!for_this_port(eth)))
		return pass(ctx, l2_reason(eth));
	switch (proto) {
	case bpf_htons(ETH_P_IP):
		if (xdpr_port_ct_gate)
			return forward_ipv4(ctx, eth, &c, 1, &fib);
		return forward_ipv4(ctx, eth, &c, 0, &fib);
	case bpf_htons(ETH_P_8021Q):
	case bpf_htons(ETH_P_8021AD):
		return pass(ctx, XDPR_CNT_PASS_VLAN);
	}
	return pass(ctx, XDPR_CNT_PASS_NOT_IP);
}

char _license[] SEC("license") = "GPL";
