/* The TC slow path of NPT: what XDP hands to the kernel (first packet to an
 * unresolved neighbour, fragments, hop-by-hop options, hop limit 1, routes
 * XDP does not redirect) is translated here exactly like the fast path
 * would, with the same npt_translate, so no ip6tables rules are needed.
 * TCX ingress on the outside interface does DNPT before the kernel routes;
 * TCX egress does SNPT after it. XDP-redirected frames skip TC egress and
 * XDP-redirected or -translated frames never reach TC ingress, so nothing
 * is translated twice. */
#ifndef XDPR_TC_NPT_H
#define XDPR_TC_NPT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "maps.h"
#include "npt.h"

/* Enough for Ethernet, IPv6, a walked extension header chain and an
 * ICMPv6 error's embedded header; the rest of the packet is not read. */
#define XDPR_TC_PULL_LEN 256

static __always_inline void tc_count_skb(struct __sk_buff *skb, __u32 c)
{
	tc_count(c, skb->len, 0);
}

static __always_inline int tc_npt(struct __sk_buff *skb, int dnpt)
{
	struct xdpr_npt_rule *r;
	struct npt_csum cs;
	struct ipv6hdr *ip6;
	void *data, *end;
	__u32 reason;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return TCX_NEXT;
	/* Direct access reaches only the linear part, and writing needs it
	 * unshared; pulling does both. */
	if (bpf_skb_pull_data(skb, skb->len < XDPR_TC_PULL_LEN ? skb->len : XDPR_TC_PULL_LEN))
		return TCX_NEXT;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	ip6 = data + sizeof(struct ethhdr);
	if ((void *)(ip6 + 1) > end || ip6->version != 6)
		return TCX_NEXT;
	r = lpm6_lookup(dnpt ? (void *)&xdpr_npt_out : (void *)&xdpr_npt_in, skb->ifindex,
			dnpt ? &ip6->daddr : &ip6->saddr);
	if (!r)
		return TCX_NEXT;
	reason = npt_translate(ip6, end, r, dnpt, &cs);
	switch (reason) {
	case 0:
		break;
	case XDPR_CNT_PASS_NPT_EXCLUDED:
		tc_count_skb(skb, XDPR_TC_NPT_EXCLUDED);
		return TCX_NEXT;
	case XDPR_CNT_DROP_NPT_EXCLUDED:
		tc_count_skb(skb, XDPR_TC_DROP_NPT_EXCLUDED);
		return TCX_DROP;
	case XDPR_CNT_DROP_NPT_UNMAPPABLE:
		tc_count_skb(skb, XDPR_TC_DROP_UNMAPPABLE);
		return TCX_DROP;
	default:
		tc_count_skb(skb, XDPR_TC_DROP_MALFORMED);
		return TCX_DROP;
	}
	if (cs.off) {
		__u64 mm0 = cs.udp ? BPF_F_MARK_MANGLED_0 : 0;
		__u32 off = sizeof(struct ethhdr) + cs.off;

		bpf_l4_csum_replace(skb, off, 0, bpf_htons(cs.pseudo), BPF_F_PSEUDO_HDR | mm0);
		if (cs.body)
			bpf_l4_csum_replace(skb, off, 0, bpf_htons(cs.body), mm0);
	}
	tc_count_skb(skb, dnpt ? XDPR_TC_DNPT : XDPR_TC_SNPT);
	return TCX_NEXT;
}

SEC("tcx/ingress")
int xdpr_tc_dnpt(struct __sk_buff *skb)
{
	return tc_npt(skb, 1);
}

SEC("tcx/egress")
int xdpr_tc_snpt(struct __sk_buff *skb)
{
	return tc_npt(skb, 0);
}

#endif
