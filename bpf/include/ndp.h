/* NDP proxy: answers Neighbor Solicitations for targets in proxied prefixes
 * (the NPT outside prefix, typically) with a Neighbor Advertisement built in
 * place and sent back out of the port: with XDP_TX, on a veth by a redirect
 * to the port, and on a veth whose peer XDP cannot reach by TC (the port's
 * tx_path, enum xdpr_tx_path). Only solicitations that pass RFC 4861 7.1.1
 * are answered, and only for targets not known to be another node's
 * (ndp_elsewhere); everything else goes to the kernel. */
#ifndef XDPR_NDP_H
#define XDPR_NDP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "maps.h"
#include "npt.h"
#include "forward.h"

#define NDP_NS 135
#define NDP_NA 136
#define NDP_OPT_SLLA 1
#define NDP_OPT_TLLA 2
#define NDP_NA_FLAG_SOLICITED 0x40000000
#define NDP_NS_LEN 24
#define NDP_NA_LEN 32 /* header + target link-layer address option */

/* The fixed part of an NS or NA (RFC 4861 4.3, 4.4). */
struct nd_msg {
	__u8 type;
	__u8 code;
	__be16 csum;
	__be32 flags; /* reserved in an NS */
	struct in6_addr target;
};

static __always_inline int ndp_mac_equal(const __u8 *a, const __u8 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) |
		(a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5])) == 0;
}

static __always_inline int ndp_is_unspecified(const struct in6_addr *a)
{
	return (a->s6_addr32[0] | a->s6_addr32[1] | a->s6_addr32[2] | a->s6_addr32[3]) == 0;
}

/* ff02::1:ffXX:XXXX with the target's low 24 bits (RFC 4291 2.7.1). */
static __always_inline int ndp_is_solicited_node(const struct in6_addr *d, const struct in6_addr *t)
{
	return d->s6_addr32[0] == bpf_htonl(0xff020000) && d->s6_addr32[1] == 0 &&
	       d->s6_addr32[2] == bpf_htonl(1) && d->s6_addr[12] == 0xff &&
	       d->s6_addr[13] == t->s6_addr[13] && d->s6_addr[14] == t->s6_addr[14] &&
	       d->s6_addr[15] == t->s6_addr[15];
}

static __always_inline int ndp_addr_equal(const struct in6_addr *a, const struct in6_addr *b)
{
	return ((a->s6_addr32[0] ^ b->s6_addr32[0]) | (a->s6_addr32[1] ^ b->s6_addr32[1]) |
		(a->s6_addr32[2] ^ b->s6_addr32[2]) | (a->s6_addr32[3] ^ b->s6_addr32[3])) == 0;
}

static __always_inline __u32 ndp_sum_addr(const struct in6_addr *a)
{
	__u32 s = 0;

#pragma unroll
	for (int i = 0; i < 8; i++)
		s += a->s6_addr16[i];
	return s;
}

/* ndp_ns_check validates an NS per RFC 4861 7.1.1 (plus the link-layer and
 * IPv6 destinations matching the target). Returns 1 for a valid NS, 2 for
 * a valid DAD probe (source ::), 0 otherwise. Sums are over raw 16-bit
 * words: one's complement addition does not care about byte order. Out
 * of line: what it compares takes a frame of its own, not a share of
 * ndp_proxy's (loader/stack_test.go). */
static __noinline int ndp_ns_check(struct ethhdr *eth, struct ipv6hdr *ip6,
				   struct nd_msg *ns, void *end, const __u8 *mac)
{
	__u32 plen = bpf_ntohs(ip6->payload_len);
	__u32 sum, off = NDP_NS_LEN;
	int dad, snm, sllao = 0;

	if (ip6->version != 6 || ip6->hop_limit != 255 || ns->code != 0)
		return 0;
	if (plen < NDP_NS_LEN || (plen & 7) || plen > NDP_NS_LEN + 8 * XDPR_NDP_MAX_OPT_UNITS)
		return 0;
	if ((void *)(ip6 + 1) + plen > end)
		return 0;
	if (ns->target.s6_addr[0] == 0xff || ip6->saddr.s6_addr[0] == 0xff)
		return 0;
	dad = ndp_is_unspecified(&ip6->saddr);
	snm = ndp_is_solicited_node(&ip6->daddr, &ns->target);
	if (!snm && (dad || !ndp_addr_equal(&ip6->daddr, &ns->target)))
		return 0;
	/* Barriers between the checks: clang would keep every word it read
	 * of the packet for the next check (and spill most of them), where
	 * reading it again costs no more and keeps this frame small. */
	barrier();
	/* To us, or to the multicast MAC of the IPv6 destination. */
	if (!ndp_mac_equal(eth->h_dest, mac) &&
	    !(eth->h_dest[0] == 0x33 && eth->h_dest[1] == 0x33 &&
	      eth->h_dest[2] == ip6->daddr.s6_addr[12] && eth->h_dest[3] == ip6->daddr.s6_addr[13] &&
	      eth->h_dest[4] == ip6->daddr.s6_addr[14] && eth->h_dest[5] == ip6->daddr.s6_addr[15]))
		return 0;

	barrier();
	sum = ndp_sum_addr(&ip6->saddr) + ndp_sum_addr(&ip6->daddr) + ip6->payload_len +
	      bpf_htons(IPPROTO_ICMPV6);
#pragma unroll
	for (int i = 0; i < NDP_NS_LEN / 8 + XDPR_NDP_MAX_OPT_UNITS; i++) {
		__u16 *w = (void *)ns + i * 8;

		if (i * 8 >= plen)
			break;
		if ((void *)(w + 4) > end)
			return 0;
		sum += w[0] + w[1] + w[2] + w[3];
	}
	if (csum_fold(sum) != 0xffff)
		return 0;

	/* Options: each at least 8 octets, together exactly the payload. */
#pragma unroll
	for (int i = 0; i < XDPR_NDP_MAX_OPT_UNITS; i++) {
		__u8 *o;

		if (off >= plen)
			break;
		if (off > NDP_NS_LEN + 8 * XDPR_NDP_MAX_OPT_UNITS)
			return 0;
		o = (void *)ns + off;
		if ((void *)(o + 2) > end)
			return 0;
		if (o[1] == 0)
			return 0;
		if (o[0] == NDP_OPT_SLLA)
			sllao = 1;
		off += o[1] * 8;
	}
	if (off != plen)
		return 0;
	/* A DAD probe carries no source link-layer address (7.1.1). */
	if (dad && sllao)
		return 0;
	return dad ? 2 : 1;
}

/* ndp_target_behind_lan asks the fib where the target lives (after NPT when
 * the target is an outside address): only a resolved neighbour behind a LAN
 * interface counts. lan-neighbor mode (lines whose one /64 is shared by WAN
 * and LAN) asks it for every solicitation, prefix mode for DAD probes. */
static __always_inline int ndp_target_behind_lan(struct xdp_md *ctx, __u32 ifindex,
						 const struct in6_addr *target, struct bpf_fib_lookup *p)
{
	struct xdpr_npt_rule *r;
	struct xdpr_iface *out;
	struct in6_addr t = *target;

	r = lpm6_lookup(&xdpr_npt_out, ifindex, &t);
	if (r && npt_map(&t, r))
		return 0;
	__builtin_memset(p, 0, sizeof(*p));
	p->family = AF_INET6;
	p->ifindex = ifindex;
	__builtin_memcpy(p->ipv6_dst, &t, sizeof(p->ipv6_dst));
	if (bpf_fib_lookup(ctx, p, sizeof(*p), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	if (p->ifindex == ifindex)
		return 0;
	out = bpf_map_lookup_elem(&xdpr_ifaces, &p->ifindex);
	return out && out->role == XDPR_ROLE_LAN;
}

/* ndp_anycast says whether t is an anycast address of its /64 that a
 * router on the link answers for: the subnet-router anycast address
 * (interface identifier zero, RFC 4291 2.6.1) or one of the 128 reserved
 * subnet anycast addresses (RFC 2526 2: with 64-bit interface identifiers,
 * fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff, the u bit clear). On
 * Ethernet every unicast prefix outside ::/3 has 64-bit identifiers (RFC
 * 4291 2.5.1), so whatever length the proxied prefix has, these are the
 * link's routers', never a host's behind the proxy. */
static __always_inline int ndp_anycast(const struct in6_addr *t)
{
	return (t->s6_addr32[2] | t->s6_addr32[3]) == 0 ||
	       (t->s6_addr32[2] == bpf_htonl(0xfdffffff) &&
		(t->s6_addr32[3] & bpf_htonl(0xffffff80)) == bpf_htonl(0xffffff80));
}

/* ndp_elsewhere says why target is known to be another node's on the link
 * of ifindex (whose MAC is mac), as the counter of the refusal, or 0:
 *  - an anycast address of the link's routers (ndp_anycast);
 *  - an address the control plane put in xdpr_ndp_foreign (a WAN router's
 *    global address, from an RA prefix option with the R flag, RFC 6275
 *    7.2: the RA's source is link-local and names no global address);
 *  - an address the router's own neighbour table holds, valid (REACHABLE,
 *    STALE, DELAY, PROBE or PERMANENT: what bpf_fib_lookup resolves), on
 *    this very port, at a MAC not ours: a node on the WAN answered for it
 *    (or solicited from it), so it lives there. The fib decides which
 *    entry counts: only an on-link route out of ifindex whose next hop is
 *    the target itself, so a LAN host's entry, or the gateway's of a
 *    route, never does.
 * An answer for such an address would compete with its owner's (an
 * anycast NA has O clear too, RFC 4861 7.2.7: the first answer would win)
 * and, for a DAD probe, tell its owner that its address is taken. */
static __always_inline __u32 ndp_elsewhere(struct xdp_md *ctx, __u32 ifindex,
					   const struct in6_addr *target, const __u8 *mac,
					   struct bpf_fib_lookup *p)
{
	struct xdpr_lpm6_key k = { .prefixlen = 32 + 128, .ifindex = ifindex };

	if (ndp_anycast(target))
		return XDPR_CNT_PASS_NDP_ANYCAST;
	__builtin_memcpy(k.addr, target, 16);
	if (bpf_map_lookup_elem(&xdpr_ndp_foreign, &k))
		return XDPR_CNT_PASS_NDP_FOREIGN;
	__builtin_memset(p, 0, sizeof(*p));
	p->family = AF_INET6;
	p->ifindex = ifindex;
	__builtin_memcpy(p->ipv6_dst, target, sizeof(p->ipv6_dst));
	if (bpf_fib_lookup(ctx, p, sizeof(*p), 0) == BPF_FIB_LKUP_RET_SUCCESS && p->ifindex == ifindex &&
	    ndp_addr_equal((const struct in6_addr *)p->ipv6_dst, target) && !ndp_mac_equal(p->dmac, mac))
		return XDPR_CNT_PASS_NDP_NEIGH_ELSEWHERE;
	return 0;
}

/* ndp_reply turns the NS in the frame into the NA answering it: source the
 * target (the proxy speaks for it), destination the solicitor or all-nodes
 * for DAD, S set unless DAD, O clear (a proxy must not override the owner,
 * RFC 4861 7.2.8), R clear (the targets are hosts), target link-layer
 * address = the interface MAC. It sends it out of the port ifindex as the
 * port's tx_path says. */
static __always_inline int ndp_reply(struct xdp_md *ctx, __u32 ifindex, const __u8 *mac, int dad)
{
	__u8 tx = port_tx_path(ifindex);
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct nd_msg *na = (void *)(ip6 + 1);
	struct in6_addr target, dst;
	__u8 dmac[ETH_ALEN];
	__u8 *opt;
	__u32 sum;
	int delta;

	/* In their stack slots: as registers they were spilled across the
	 * frame adjustments below, two octet slots per word. */
	in_memory(target);
	in_memory(dst);
	if ((void *)(na + 1) > end)
		return pass(ctx, XDPR_CNT_PASS_NDP_INVALID);
	target = na->target;
	if (dad) {
		__builtin_memset(&dst, 0, sizeof(dst));
		dst.s6_addr[0] = 0xff;
		dst.s6_addr[1] = 0x02;
		dst.s6_addr[15] = 1;
		dmac[0] = 0x33, dmac[1] = 0x33, dmac[2] = 0, dmac[3] = 0, dmac[4] = 0, dmac[5] = 1;
	} else {
		dst = ip6->saddr;
		__builtin_memcpy(dmac, eth->h_source, ETH_ALEN);
	}

	/* Of the whole frame: a multi-buffer one (an NS with kilobytes of
	 * trailing octets) loses its later buffers first, so the NA is one
	 * buffer whatever the port's path (xdpr_tx_ports, XDP_TX or TC). */
	delta = (int)(sizeof(*eth) + sizeof(*ip6) + NDP_NA_LEN) - (int)bpf_xdp_get_buff_len(ctx);
	/* XDP cannot reach this port's peer: the NA leaves through TC, which
	 * knows it by the metadata in front of it (tc_reply.h). Only XDP
	 * writes metadata, so no frame from the wire can ask for that. */
	if (tx == XDPR_TX_KERNEL && bpf_xdp_adjust_meta(ctx, -(int)sizeof(__u32)))
		return pass(ctx, XDPR_CNT_PASS_NDP_NO_ROOM);
	if (delta && bpf_xdp_adjust_tail(ctx, delta)) {
		/* The NS goes to the kernel as it came. */
		if (tx == XDPR_TX_KERNEL)
			bpf_xdp_adjust_meta(ctx, (int)sizeof(__u32));
		return pass(ctx, XDPR_CNT_PASS_NDP_NO_ROOM);
	}
	/* adjust_meta and adjust_tail invalidated every packet pointer. */
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	ip6 = (void *)(eth + 1);
	na = (void *)(ip6 + 1);
	opt = (void *)(na + 1);
	if ((void *)(opt + 8) > end) /* cannot happen: the frame is exactly that long now */
		return count(ctx, XDPR_CNT_PASS_NDP_NO_ROOM, XDP_DROP);

	__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	*(__be32 *)ip6 = bpf_htonl(0x60000000);
	ip6->payload_len = bpf_htons(NDP_NA_LEN);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = 255;
	ip6->saddr = target;
	ip6->daddr = dst;
	na->type = NDP_NA;
	na->code = 0;
	na->csum = 0;
	na->flags = dad ? 0 : bpf_htonl(NDP_NA_FLAG_SOLICITED);
	opt[0] = NDP_OPT_TLLA;
	opt[1] = 1;
	__builtin_memcpy(opt + 2, mac, ETH_ALEN);

	sum = ndp_sum_addr(&ip6->saddr) + ndp_sum_addr(&ip6->daddr) + bpf_htons(NDP_NA_LEN) +
	      bpf_htons(IPPROTO_ICMPV6);
#pragma unroll
	for (int i = 0; i < NDP_NA_LEN / 2; i++)
		sum += ((__u16 *)na)[i];
	na->csum = ~csum_fold(sum);
	switch (tx) {
	case XDPR_TX_KERNEL: {
		__u32 *meta = (void *)(long)ctx->data_meta;

		if ((void *)(meta + 1) > (void *)(long)ctx->data) /* cannot happen: adjusted above */
			return count(ctx, XDPR_CNT_PASS_NDP_NO_ROOM, XDP_DROP);
		*meta = XDPR_META_REPLY;
		return count(ctx, XDPR_CNT_PASS_NDP_NA_TC, XDP_PASS);
	}
	case XDPR_TX_REDIRECT:
		/* A redirect flushes to the peer's NAPI (XDP_XMIT_FLUSH), where
		 * XDP_TX would wait for its next run. The port is in
		 * xdpr_tx_ports with this path; XDP_TX is the fallback. The
		 * verdict is spelled out: the helper's return value is not
		 * known to be one, and the caller goes on for a negative. */
		return count(ctx, XDPR_CNT_TX_NDP_NA_REDIRECT,
			     bpf_redirect_map(&xdpr_tx_ports, ifindex, XDP_TX) == XDP_REDIRECT ? XDP_REDIRECT : XDP_TX);
	}
	return count(ctx, XDPR_CNT_TX_NDP_NA, XDP_TX);
}

/* ndp_proxy handles a frame arriving on the interface ifindex whose MAC is
 * mac.
 * It returns -1 for anything that is not an NS for a proxied target (the
 * main path goes on), else the verdict, counted. It runs before the L2
 * multicast check: solicitations arrive to 33:33:ff:xx:xx:xx. */
static __always_inline int ndp_proxy(struct xdp_md *ctx, __u32 ifindex, const __u8 *mac,
				     struct bpf_fib_lookup *p)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct nd_msg *ns = (void *)(ip6 + 1);
	struct xdpr_ndp_entry *px;
	struct xdpr_npt_rule *r;
	__u32 why;
	int kind;

	if ((void *)(ns + 1) > end || eth->h_proto != bpf_htons(ETH_P_IPV6) ||
	    ip6->nexthdr != IPPROTO_ICMPV6 || ns->type != NDP_NS)
		return -1;
	px = lpm6_lookup(&xdpr_ndp_proxy, ifindex, &ns->target);
	if (!px)
		return -1;
	/* The router's own outside address: the kernel owns it and answers
	 * (with O set); a proxy NA for it would at best be overridden. */
	r = lpm6_lookup(&xdpr_npt_out, ifindex, &ns->target);
	if (r && npt_is_excluded(&ns->target, r))
		return pass(ctx, XDPR_CNT_PASS_NDP_EXCLUDED);
	kind = ndp_ns_check(eth, ip6, ns, end, mac);
	if (!kind)
		return pass(ctx, XDPR_CNT_PASS_NDP_INVALID);
	why = ndp_elsewhere(ctx, ifindex, &ns->target, mac, p);
	if (why)
		return pass(ctx, why);
	/* A DAD probe (source ::) is answered only for a target known behind
	 * a LAN, in either mode. An answer says "taken" (RFC 4862 5.4.4):
	 * right for a LAN host's address, but prefix mode claims the whole
	 * prefix without knowing which addresses are used, and another WAN
	 * node probing one (the ISP router's own after a reboot, a host
	 * beside the router on the ISP's link doing SLAAC) would have its
	 * address refused. ndppd's `iface` and `auto` rules likewise answer,
	 * DAD or not, only once the target answered on the inside; its
	 * `static` rules answer every probe, which is what this avoids. The
	 * kernel sees the probe and defends what is the router's own. */
	if ((kind == 2 || px->mode == XDPR_NDP_LAN_NEIGHBOR) && !ndp_target_behind_lan(ctx, ifindex, &ns->target, p))
		return pass(ctx, px->mode == XDPR_NDP_PREFIX ? XDPR_CNT_PASS_NDP_DAD_UNOWNED : XDPR_CNT_PASS_NDP_NO_NEIGH);
	return ndp_reply(ctx, ifindex, mac, kind == 2);
}

#endif
