/* NPTv6 (RFC 6296) on packet memory. The same functions serve the XDP fast
 * path and the TC slow path (tc_npt.h), so both write the same bytes; only
 * how the L4 checksum delta is applied differs (TC must go through
 * bpf_l4_csum_replace, which knows the skb's checksum state). */
#ifndef XDPR_NPT_H
#define XDPR_NPT_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "structs.h"
#include "maps.h"
#include "parsing.h"
#include "compiler.h"

#define ICMPV6_ERROR_MAX_TYPE 127 /* types 0-127 are errors (RFC 4443 2.1) */

/* What the caller still owes the L4 checksum after npt_translate. */
struct npt_csum {
	__u32 off;    /* checksum offset from the IPv6 header; 0: nothing to do */
	__u32 pseudo; /* one's complement delta from the outer addresses (pseudo header) */
	__u32 body;   /* delta from the ICMPv6 error's embedded address */
	__u32 udp;    /* a zero result must be written as 0xffff */
};

static __always_inline int npt_in_prefix(const struct in6_addr *a,
					  const struct xdpr_npt_rule *r)
{
	const __u32 *from = (const __u32 *)r->from, *m = (const __u32 *)r->mask;

	return (((a->s6_addr32[0] ^ from[0]) & m[0]) | ((a->s6_addr32[1] ^ from[1]) & m[1])) == 0;
}

/* npt_is_excluded says whether a is the rule's excluded address (the
 * router's own outside address). */
static __always_inline int npt_is_excluded(const struct in6_addr *a,
					   const struct xdpr_npt_rule *r)
{
	const __u32 *x = (const __u32 *)r->exclude;

	return r->has_exclude &&
	       ((a->s6_addr32[0] ^ x[0]) | (a->s6_addr32[1] ^ x[1]) |
		(a->s6_addr32[2] ^ x[2]) | (a->s6_addr32[3] ^ x[3])) == 0;
}

/* npt_adjust adds adj to a 16-bit word the way ip6t_NPT does: end-around
 * carry, and 0xffff (one's complement -0) written as 0. */
static __always_inline __u16 npt_adjust(__u16 word, __u16 adj)
{
	__u32 s = (__u32)bpf_ntohs(word) + adj;

	s = (s & 0xffff) + (s >> 16);
	if (s == 0xffff)
		s = 0;
	return bpf_htons((__u16)s);
}

/* npt_map rewrites a (a copy, never packet memory, so a failure leaves
 * nothing half done) from r->from to r->to. It is ip6t_npt_map_pfx: the
 * prefix bits are replaced; in rfc6296 mode word 3 (bits 48-63) takes the
 * adjustment for prefixes up to /48, otherwise the first of words 4-7 that
 * is not 0xffff. Returns -1 when all of those are 0xffff (RFC 6296 5.2: such
 * an address cannot be mapped and the packet must be dropped). */
static __always_inline int npt_map(struct in6_addr *a, const struct xdpr_npt_rule *r)
{
	const __u32 *to = (const __u32 *)r->to, *m = (const __u32 *)r->mask;
	__u32 plen = r->prefix_len;
	int w = -1;

	/* to has its host bits zero (the loader masks it). */
	a->s6_addr32[0] = (a->s6_addr32[0] & ~m[0]) | to[0];
	a->s6_addr32[1] = (a->s6_addr32[1] & ~m[1]) | to[1];
	if (r->mode != XDPR_NPT_RFC6296)
		return 0;
	if (plen <= 48) {
		w = 3;
	} else {
#pragma unroll
		for (int i = 7; i >= 4; i--)
			if (a->s6_addr16[i] != 0xffff)
				w = i;
	}
	if (w < 0)
		return -1;
	/* The words are read again where they are adjusted, not held from
	 * the search above: held, they were spilled to the stack (eight
	 * slots in every frame that inlines this). */
	barrier();
#pragma unroll
	for (int i = 3; i < 8; i++)
		if (i == w)
			a->s6_addr16[i] = npt_adjust(a->s6_addr16[i], r->adjustment);
	return 0;
}

/* npt_l4 finds the upper-layer header behind the extension headers. It
 * returns 1 with *nh and *l4 set, 0 when there is none to fix (a non-first
 * fragment, or a chain longer than walked), -1 when the headers are cut. */
static __always_inline int npt_l4(struct ipv6hdr *ip6, void *end, __u8 *nh, void **l4)
{
	void *pos = ip6 + 1;
	__u8 next = ip6->nexthdr;

#pragma unroll
	for (int i = 0; i < XDPR_MAX_EXT_HEADERS; i++) {
		struct ipv6_opt_hdr_min *h = pos;

		if (!ipv6_is_ext_header(next))
			break;
		if ((void *)h + 8 > end)
			return -1;
		if (next == IPPROTO_FRAGMENT) {
			/* Only the first fragment carries the L4 header; the
			 * checksum covers the reassembled packet, so fixing it
			 * there is enough. */
			if (*(__be16 *)(pos + 2) & bpf_htons(0xfff8))
				return 0;
			next = h->nexthdr;
			pos += 8;
			continue;
		}
		next = h->nexthdr;
		pos += (h->hdrlen + 1) * 8;
	}
	if (ipv6_is_ext_header(next))
		return 0;
	*nh = next;
	*l4 = pos;
	return 1;
}

/* npt_translate maps the destination (dnpt) or the source of the IPv6
 * packet at ip6 with rule r, and for ICMPv6 errors also the embedded
 * packet's opposite address (its source for DNPT, its destination for
 * SNPT), so that traceroute and PMTUD work through NPT. It returns 0, or
 * the counter why the packet is not translated; then nothing has been
 * written. XDPR_CNT_PASS_NPT_EXCLUDED (a destination that is the router's
 * own address) means "no rule": the caller hands the packet on untouched;
 * every other reason is a drop. rfc6296 leaves every checksum valid by construction;
 * preserve-host leaves a delta in *cs for the caller to apply. */
static __always_inline __u32 npt_translate(struct ipv6hdr *ip6, void *end,
					   const struct xdpr_npt_rule *r, int dnpt,
					   struct npt_csum *cs)
{
	struct in6_addr outer, inner;
	struct in6_addr *inner_at = NULL;
	void *l4 = NULL, *pend;
	__u8 nh = 0;
	int found;

	/* The ICMPv6 error's embedded address in its stack slot, not in
	 * registers spilled word by word (compiler.h). Not the outer one:
	 * held in memory, the verifier cannot prune the paths npt_map takes
	 * for it, and a WAN port's program exceeded its million
	 * instructions. */
	in_memory(inner);
	cs->off = 0;
	if ((void *)(ip6 + 1) > end)
		return XDPR_CNT_DROP_NPT_MALFORMED;
	pend = (void *)(ip6 + 1) + len16(ip6->payload_len);
	outer = dnpt ? ip6->daddr : ip6->saddr;
	if (dnpt && npt_is_excluded(&outer, r))
		return XDPR_CNT_PASS_NPT_EXCLUDED;
	if (npt_map(&outer, r))
		return XDPR_CNT_DROP_NPT_UNMAPPABLE;
	/* An inside host whose address maps onto the router's own would send
	 * as the router: replies would reach the router's kernel (which
	 * resets the TCP connections it does not know), never the host, and
	 * the packet would spoof the router. Sending it untranslated instead
	 * would leak the inside prefix to the WAN with no way back either.
	 * Nothing useful can come of it, so it is dropped (and counted). */
	if (!dnpt && npt_is_excluded(&outer, r))
		return XDPR_CNT_DROP_NPT_EXCLUDED;

	found = npt_l4(ip6, end, &nh, &l4);
	if (found == 1 && nh == IPPROTO_ICMPV6) {
		__u8 *icmp = l4;
		struct ipv6hdr *e = (void *)(icmp + 8);

		if ((void *)(e + 1) <= end && (void *)(e + 1) <= pend &&
		    icmp[0] <= ICMPV6_ERROR_MAX_TYPE) {
			inner_at = dnpt ? &e->saddr : &e->daddr;
			inner = *inner_at;
			if (!npt_in_prefix(&inner, r))
				inner_at = NULL;
			else if (npt_map(&inner, r))
				return XDPR_CNT_DROP_NPT_UNMAPPABLE;
		}
	}

	if (r->mode == XDPR_NPT_PRESERVE_HOST && found != 0) {
		__u32 off = 0;

		if (found < 0)
			return XDPR_CNT_DROP_NPT_MALFORMED;
		switch (nh) {
		case IPPROTO_TCP:
			off = 16;
			break;
		case IPPROTO_UDP:
			off = 6;
			break;
		case IPPROTO_ICMPV6:
			off = 2;
			break;
		}
		if (off) {
			__be16 *p = l4 + off;

			if ((void *)(p + 1) > end || (void *)(p + 1) > pend)
				return XDPR_CNT_DROP_NPT_MALFORMED;
			/* A UDP checksum of zero means "none" (RFC 6935). */
			if (!(nh == IPPROTO_UDP && *p == 0)) {
				__u32 d = (__u16)~r->adjustment;

				cs->off = (void *)p - (void *)ip6;
				cs->pseudo = d;
				cs->body = inner_at ? d : 0;
				cs->udp = nh == IPPROTO_UDP;
			}
		}
	}

	if (dnpt)
		ip6->daddr = outer;
	else
		ip6->saddr = outer;
	if (inner_at)
		*inner_at = inner;
	return 0;
}

/* csum_add_diff is the kernel's inet_proto_csum_replace_by_diff for a
 * complete checksum (what bpf_l4_csum_replace does on the TC side), in host
 * order: the field is the complement of the sum, so add to its complement. */
static __always_inline __u16 csum_add_diff(__u16 field, __u32 diff)
{
	__u32 s = (__u16)~field + diff;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	/* The kernel complements the field in 32 bits, so its sum is never
	 * +0: a zero result stands for -0 there. */
	if (s == 0)
		s = 0xffff;
	return (__u16)~s;
}

/* npt_csum_apply_xdp writes the preserve-host checksum delta in XDP, where
 * every checksum in the frame is complete. */
static __always_inline void npt_csum_apply_xdp(struct ipv6hdr *ip6, void *end,
					       const struct npt_csum *cs)
{
	__u32 off = cs->off & 0x3fff;
	__be16 *p = (void *)ip6 + off;
	__u16 v;

	if (!off || (void *)(p + 1) > end)
		return;
	v = csum_add_diff(bpf_ntohs(*p), cs->pseudo);
	if (cs->body)
		v = csum_add_diff(v, cs->body);
	if (cs->udp && v == 0)
		v = 0xffff;
	*p = bpf_htons(v);
}

/* npt_needs_l4 says whether translating the packet can involve more than its
 * own address: an ICMPv6 error's embedded packet (the ICMPv6 header may sit
 * behind extension headers) or, in preserve-host mode, the L4 checksum.
 * Almost every packet is TCP or UDP right behind the header under rfc6296,
 * and for those the address is all there is to write. */
static __always_inline int npt_needs_l4(const struct ipv6hdr *ip6, const struct xdpr_npt_rule *r)
{
	return r->mode != XDPR_NPT_RFC6296 ||
	       (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP);
}

/* npt_translate_xdp is npt_translate with the checksum delta applied, for
 * the packets whose translation reaches past their own address
 * (npt_needs_l4). Out of line: the ICMPv6 error's copies and the walk to
 * the transport header take a frame of their own, not a share of the
 * forward path's (every frame of a call chain adds up on 6.1: see
 * loader/stack_test.go). */
static __noinline __u32 npt_translate_xdp(struct ipv6hdr *ip6, void *end,
					  const struct xdpr_npt_rule *r, int dnpt)
{
	struct npt_csum cs;
	__u32 reason = npt_translate(ip6, end, r, dnpt, &cs);

	if (reason)
		return reason;
	npt_csum_apply_xdp(ip6, end, &cs);
	return 0;
}

/* npt_snpt_at is npt_snpt's work, for it and for the tunnels' stages
 * (npt_snpt_frame), each out of line. */
static __always_inline __u32 npt_snpt_at(struct ipv6hdr *ip6, void *end, __u32 egress, __u64 feat, __u32 *fwd)
{
	const struct xdpr_npt_rule *r;
	__u32 reason;

	r = npt_lookup(&xdpr_npt64_in, &xdpr_npt_in, XDPR_NPT_CACHE_SNPT, egress, &ip6->saddr, feat);
	if (!r)
		return 0;
	if (!npt_needs_l4(ip6, r)) {
		struct in6_addr src = ip6->saddr;

		if (npt_map(&src, r))
			return XDPR_CNT_DROP_NPT_UNMAPPABLE;
		/* As npt_translate: an inside host must not send as the router. */
		if (npt_is_excluded(&src, r))
			return XDPR_CNT_DROP_NPT_EXCLUDED;
		ip6->saddr = src;
		*fwd = XDPR_CNT_FWD_NPT_SNPT;
		return 0;
	}
	reason = npt_translate_xdp(ip6, end, r, 0);
	if (reason)
		return reason;
	*fwd = XDPR_CNT_FWD_NPT_SNPT;
	return 0;
}

/* npt_snpt is npt_forward's SNPT for what a LAN port received, out of
 * egress. Out of line, like npt_dnpt_rule: the rule cache's compares and
 * the address mapping would hold their values in xdpr_main's frame, which
 * every call chain of the program adds up on 6.1 (loader/stack_test.go). */
static __noinline __u32 npt_snpt(struct ipv6hdr *ip6, void *end, __u32 egress, __u64 feat, __u32 *fwd)
{
	return npt_snpt_at(ip6, end, egress, feat, fwd);
}

/* npt_snpt_frame is SNPT for what a LAN port received and is about to be
 * encapsulated into the tunnel netdev egress (vxlan.h, tunnel6in4.h): the
 * frame starts with Ethernet and the IPv6 packet, every check of the
 * encapsulation passed, nothing is written yet. It returns
 * XDPR_CNT_FWD_NPT_SNPT when it translated, 0 when no rule is the
 * source's, else the counter to drop with (nothing written). The packet is
 * read from ctx: a caller's packet pointers do not survive its helper
 * calls. */
static __noinline __u32 npt_snpt_frame(struct xdp_md *ctx, __u32 egress, __u64 feat)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u32 fwd = 0, reason;

	if ((void *)(ip6 + 1) > end || ((struct ethhdr *)data)->h_proto != bpf_htons(ETH_P_IPV6))
		return 0;
	reason = npt_snpt_at(ip6, end, egress, feat, &fwd);
	if (reason)
		return reason;
	return fwd == XDPR_CNT_FWD_NPT_SNPT ? fwd : 0;
}

/* npt_forward translates a packet XDP is about to redirect out of egress:
 * DNPT with the rule the ingress lookup found (dst is the destination it
 * mapped to, already checked), else (for what a LAN port received) SNPT
 * when egress is an NPT outside interface for the source. *fwd gets the
 * forward counter. */
static __always_inline __u32 npt_forward(struct ipv6hdr *ip6, void *end,
					 const struct xdpr_npt_rule *dnpt, const struct in6_addr *dst,
					 int from_lan, __u32 egress, __u64 feat, __u32 *fwd)
{
	__u32 reason;

	*fwd = XDPR_CNT_FWD_IPV6;
	if (!dnpt)
		return from_lan ? npt_snpt(ip6, end, egress, feat, fwd) : 0;
	if (!npt_needs_l4(ip6, dnpt)) {
		ip6->daddr = *dst;
		*fwd = XDPR_CNT_FWD_NPT_DNPT;
		return 0;
	}
	reason = npt_translate_xdp(ip6, end, dnpt, 1);
	if (reason)
		return reason;
	*fwd = XDPR_CNT_FWD_NPT_DNPT;
	return 0;
}

/* npt_dnpt_rule returns the DNPT rule for a packet arriving on the port
 * ingress and puts the translated destination into *dst, which the caller
 * copies into its fib lookup, so the route is chosen for the inside
 * address before anything in the packet is written (the lookup overwrites
 * its copy with the gateway's address). *reason is set when there is no
 * translation although a rule matched: the address is unmappable (drop)
 * or the router's own (pass). Out of line, as npt_snpt. */
static __noinline struct xdpr_npt_rule *npt_dnpt_rule(__u32 ingress, struct ipv6hdr *ip6, __u64 feat,
						       struct in6_addr *dst, __u32 *reason)
{
	struct xdpr_npt_rule *r = npt_lookup(&xdpr_npt64_out, &xdpr_npt_out, XDPR_NPT_CACHE_DNPT, ingress,
					     &ip6->daddr, feat);

	*reason = 0;
	if (!r)
		return NULL;
	*dst = ip6->daddr;
	if (npt_is_excluded(dst, r)) {
		*reason = XDPR_CNT_PASS_NPT_EXCLUDED;
		return NULL;
	}
	if (npt_map(dst, r)) {
		*reason = XDPR_CNT_DROP_NPT_UNMAPPABLE;
		return NULL;
	}
	return r;
}

#endif
