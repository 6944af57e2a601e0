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

/* skb_decap_ipip6 removes the outer IPv6 header and outer_len - 40 bytes
 * of extension headers behind the Ethernet header of an ipip6 packet at
 * TC, leaving the inner IPv4 packet; it returns 0 or the helper's error.
 * Told that the L3 left is IPv4, bpf_skb_adjust_room checks the rest
 * against an IPv4 header (and sets skb->protocol); without the flag it
 * holds it against the current IPv6 header and refuses inner packets under
 * 40 bytes (a UDP datagram of under 12 bytes). Where the flag is unknown,
 * bpf_skb_change_proto makes the skb IPv4 first (removing 20 bytes of the
 * outer header), and the rest goes as before, measured against IPv4. */
static __always_inline long skb_decap_ipip6(struct __sk_buff *skb, __u32 outer_len)
{
	long err;

	if (xdpr_adj_room_decap_l3)
		return bpf_skb_adjust_room(skb, -(int)outer_len, BPF_ADJ_ROOM_MAC, XDPR_ADJ_ROOM_DECAP_L3_IPV4);
	err = bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0);
	if (err)
		return err;
	return bpf_skb_adjust_room(skb, -(int)(outer_len - (sizeof(struct ipv6hdr) - sizeof(struct iphdr))),
				   BPF_ADJ_ROOM_MAC, 0);
}

/* fib_routed: the route lookup found an egress (p->ifindex), with or
 * without a resolved neighbour. */
static __always_inline int fib_routed(long rc)
{
	return rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH;
}

#endif
