/* What the data plane uses that not every supported kernel has. Each
 * difference is one constant here, set by the loader from its probes of the
 * running kernel (loader/kernelprobe.go) before the object is loaded: the
 * verifier then drops the code a missing feature would need, so one object
 * loads on every kernel and no program variant is built. The defaults are
 * what a current kernel has. `xdprouter doctor`, attach and apply report
 * each missing feature in one line with what it costs. */
#ifndef XDPR_COMPAT_H
#define XDPR_COMPAT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* BPF_FIB_LOOKUP_SKIP_NEIGH (Linux 6.3, backported to 6.1.57), or 0 where
 * the kernel refuses the flag (-EINVAL). Without it the lookup also reads
 * the neighbour table and answers NO_NEIGH for an unresolved next hop; the
 * egress ifindex is filled in either way (since 5.10), and that is all the
 * callers need (fib_routed). */
const volatile __u32 xdpr_fib_skip_neigh = BPF_FIB_LOOKUP_SKIP_NEIGH;

/* 1 when the conntrack kfuncs the gate calls (bpf_xdp_ct_lookup,
 * bpf_ct_release, bpf_ct_change_timeout) are in the kernel's BTF. 0: the
 * gate's calls are dead code (cilium/ebpf poisons a missing weak kfunc, and
 * the verifier rejects a poisoned call only where it can be reached) and a
 * gated port hands every packet the gate would judge to the kernel, whose
 * netfilter decides: slower, never wrong. Without bpf_ct_change_timeout
 * alone the gate could look flows up but not keep their timeouts alive, and
 * a flow carried in XDP would expire in conntrack and meet the firewall as
 * new mid-stream; so it counts as missing as well. */
const volatile __u32 xdpr_ct_kfuncs = 1;

/* BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (Linux 6.3; not in Debian 12's headers),
 * and whether the kernel takes it (0: it refuses the flag). */
#define XDPR_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
const volatile __u32 xdpr_adj_room_decap_l3 = 1;

/* BPF_F_ADJ_ROOM_DECAP_L3_IPV6, its twin for an inner IPv6 packet (6in4). */
#define XDPR_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)

/* skb_decap_l3 removes outer_len bytes of outer IP header (and, for
 * ipip6, extension headers) behind the Ethernet header at TC, leaving the
 * inner packet, IPv6 when inner_v6 (a constant at each call site: 6in4),
 * else IPv4 (ipip6); it returns 0 or the helper's error. Told the family of
 * the L3 left, bpf_skb_adjust_room checks the rest against that header
 * (and sets skb->protocol); without the flag it holds it against the
 * current outer header and refuses an inner IPv4 packet under 40 bytes (a
 * UDP datagram of under 12 bytes). Where the flags are unknown,
 * bpf_skb_change_proto makes the skb the inner family first (which takes
 * away or adds the 20 bytes the two headers differ by), and the rest goes
 * as before, measured against the inner family. */
static __always_inline long skb_decap_l3(struct __sk_buff *skb, __u32 outer_len, const int inner_v6)
{
	const int d = sizeof(struct ipv6hdr) - sizeof(struct iphdr);
	long err;

	if (xdpr_adj_room_decap_l3)
		return bpf_skb_adjust_room(skb, -(int)outer_len, BPF_ADJ_ROOM_MAC,
					   inner_v6 ? XDPR_ADJ_ROOM_DECAP_L3_IPV6 : XDPR_ADJ_ROOM_DECAP_L3_IPV4);
	err = bpf_skb_change_proto(skb, bpf_htons(inner_v6 ? ETH_P_IPV6 : ETH_P_IP), 0);
	if (err)
		return err;
	return bpf_skb_adjust_room(skb, -((int)outer_len + (inner_v6 ? d : -d)), BPF_ADJ_ROOM_MAC, 0);
}

/* skb_decap_ipip6 leaves the inner IPv4 packet of an ipip6 one. */
static __always_inline long skb_decap_ipip6(struct __sk_buff *skb, __u32 outer_len)
{
	return skb_decap_l3(skb, outer_len, 0);
}

/* fib_routed: the route lookup found an egress (p->ifindex), with or
 * without a resolved neighbour. */
static __always_inline int fib_routed(long rc)
{
	return rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH;
}

#endif
