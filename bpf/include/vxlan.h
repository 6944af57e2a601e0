/* VXLAN (RFC 7348) in XDP for the kernel vxlan netdevs xdprouter owns
 * (seed 001). The netdev stays the control plane and the slow path: its
 * routes, neighbours and FDB decide where a packet goes, and whatever XDP
 * does not finish reaches it untouched. XDP produces the bytes the netdev
 * would (loader/vxlan_slowpath_test.go compares them), with two fields
 * that cannot match: the UDP source port, which the kernel takes from
 * skb_get_hash (keyed by a secret drawn at boot), is a hash of the inner
 * flow into the same range; and an IPv4 outer header's identification,
 * which the kernel draws from its own per-destination counters.
 *
 * The work is done in out-of-line stages with small frames, called one
 * after the other from the entry points (inlined into xdpr_main), so that
 * no stage's frame adds to another's in a call chain (each within the 384
 * octets of loader/stack_test.go); what would sit on the stack (route
 * lookups, the decapsulation key, the conntrack tuple, the checksum's
 * copy, values kept across helper calls) is in the per-CPU
 * xdpr_vxlan_scratch. */
#ifndef XDPR_VXLAN_H
#define XDPR_VXLAN_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "maps.h"
#include "parsing.h"
#include "csum.h"
#include "ip.h"
#include "forward.h"
#include "compat.h"
#include "tunnel_hdr.h"
#include "tunnel_maps.h"
#include "conntrack.h"
#include "vxlan_maps.h"
#include "npt.h"

#define VXLAN_HDR_LEN 8
/* UDP and VXLAN headers. */
#define VXLAN_UDP_LEN (8 + VXLAN_HDR_LEN)
/* Everything before the inner Ethernet header, by outer family. */
#define VXLAN_OUTER4 (ETH_HLEN + 20 + VXLAN_UDP_LEN)
#define VXLAN_OUTER6 (ETH_HLEN + 40 + VXLAN_UDP_LEN)
/* The first word of a VXLAN header: only the I flag (a valid VNI). */
#define VXLAN_FLAGS_I 0x08000000
/* At most this many chunks are summed: a 9 KiB jumbo frame and more. */
#define XDPR_VXLAN_MAX_CHUNKS 40

/* The key of one-entry maps, read from .rodata: a key on the stack would
 * take a slot of the few the stages have. */
const volatile __u32 xdpr_vxlan_zero = 0;

/* How long (jiffies) a CPU reuses its last outer route and "to this
 * router" answer: the loader sets 100 ms, so a route or neighbour change
 * reaches the fast path within it (as ipip6's next hop cache). 0: no
 * reuse. */
const volatile __u32 xdpr_vxlan_cache_jiffies = 25;

static __always_inline struct xdpr_vxlan_scratch *vxlan_scratch(void)
{
	return bpf_map_lookup_elem(&xdpr_vxlan_scratch, (const void *)&xdpr_vxlan_zero);
}

static __always_inline struct bpf_fib_lookup *vxlan_fib(struct xdpr_vxlan_scratch *s)
{
	return (struct bpf_fib_lookup *)(void *)s->fib;
}

_Static_assert(sizeof(struct bpf_fib_lookup) == sizeof(((struct xdpr_vxlan_scratch *)0)->fib),
	       "xdpr_vxlan_scratch.fib holds a struct bpf_fib_lookup");
_Static_assert(sizeof(struct xdpr_ct_work) <= sizeof(((struct xdpr_vxlan_scratch *)0)->ct),
	       "xdpr_vxlan_scratch.ct holds a struct xdpr_ct_work");

static __always_inline struct xdpr_ct_work *vxlan_ct(struct xdpr_vxlan_scratch *s)
{
	return (struct xdpr_ct_work *)(void *)s->ct;
}

/* What decapsulation keeps of a DNPT rule on the netdev from the stage
 * that finds it to the one that writes it (s->npt): the inner destination
 * translated, for the gate and the route, and a copy of the rule. In
 * s->buf, which only the checksum uses, and decapsulation's checksum is
 * done before. */
struct vxlan_npt {
	struct in6_addr dst;
	struct xdpr_npt_rule rule;
};

_Static_assert(sizeof(struct vxlan_npt) <= sizeof(((struct xdpr_vxlan_scratch *)0)->buf),
	       "xdpr_vxlan_scratch.buf holds a struct vxlan_npt");

static __always_inline struct vxlan_npt *vxlan_npt(struct xdpr_vxlan_scratch *s)
{
	return (struct vxlan_npt *)(void *)s->buf;
}

/* vxlan_count records the packet (the frame's length as it arrived, kept
 * in s) under c: inline, where pass() would be a call, and the chain of
 * calls from xdpr_main has no room for another frame. */
static __always_inline int vxlan_count(struct xdpr_vxlan_scratch *s, __u32 c, int action)
{
	struct xdpr_counter_val *cv;

	s->ckey = c;
	cv = bpf_map_lookup_elem(&xdpr_counters, &s->ckey);
	if (cv) {
		cv->packets++;
		cv->bytes += s->rx_len;
	}
	return action;
}

/* vxlan_frame_sum adds len octets of the frame from off to sum as RFC 1071
 * sums them (an odd last octet padded with a zero), unfolded. The octets
 * are copied to s->buf by bpf_xdp_load_bytes, which takes any offset and
 * length (a multi-buffer frame's later buffers too): summed in place, a
 * length known only at run time would have the verifier walk every one.
 * Chunks are even, so every 16-bit word lies in one. -1: the frame is
 * shorter. */
static __always_inline __s64 vxlan_frame_sum(struct xdp_md *ctx, struct xdpr_vxlan_scratch *s, __u32 off,
					     __u32 len, __u64 sum)
{
	/* The loop's state lives in s: in registers it would be spilled
	 * around the two helper calls. */
	s->sum = sum;
	s->off = off;
	s->left = len;
	for (int i = 0; i < XDPR_VXLAN_MAX_CHUNKS; i++) {
		__u32 n = s->left;
		long r;

		if (!n)
			return s->sum;
		if (n > XDPR_VXLAN_CHUNK)
			n = XDPR_VXLAN_CHUNK;
		/* 1 to CHUNK in a form the verifier can bound (it follows
		 * the mask, not clang's knowledge of n). */
		n -= 1;
		barrier_var(n);
		n = (n & (XDPR_VXLAN_CHUNK - 1)) + 1;
		if (bpf_xdp_load_bytes(ctx, s->off, s->buf, n))
			return -1;
		s->buf[n] = 0;
		s->buf[n + 1] = 0;
		s->buf[n + 2] = 0;
		s->off += n;
		s->left -= n;
		r = bpf_csum_diff(NULL, 0, (__be32 *)(void *)s->buf, (n + 3) & ~3U, 0);
		if (r < 0)
			return -1;
		s->sum += (__u32)r;
	}
	return s->left ? -1 : (__s64)s->sum;
}

/* vxlan_fold folds an unfolded sum to 16 bits (never 0 for a non-zero
 * sum: end-around carry). */
static __always_inline __u16 vxlan_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return csum_fold((__u32)sum);
}

/* vxlan_pseudo is the sum of a UDP pseudo header (RFC 768, RFC 8200 8.1)
 * over the outer addresses, as they lie in memory. */
static __always_inline __u64 vxlan_pseudo(const __u32 *src, const __u32 *dst, int v4, __u32 udp_len)
{
	__u64 sum = bpf_htons(IPPROTO_UDP) + bpf_htons(udp_len);

	if (v4)
		return sum + src[0] + dst[0];
	return sum + src[0] + src[1] + src[2] + src[3] + dst[0] + dst[1] + dst[2] + dst[3];
}

/* vxlan_sport is the UDP source port for an inner flow (RFC 7348 5: a hash
 * of the inner headers, so that the underlay spreads flows): the flow hash
 * of tunnel_hdr.h, then what the kernel's udp_flow_src_port does with
 * skb_get_hash, into the netdev's range [sport_min, sport_max). */
static __always_inline __u16 vxlan_sport(const struct xdpr_vxlan *v, __u32 a, __u32 b, __u8 proto, __u32 ports)
{
	__u64 x = ((__u64)a << 32) | b;
	__u32 h;

	x *= FLOW_K1;
	x ^= ((__u64)proto << 32) | ports;
	x ^= x >> 31;
	x *= FLOW_K2;
	h = x >> 32;
	h ^= h << 16;
	return v->sport_min + (((__u64)h * (__u16)(v->sport_max - v->sport_min)) >> 32);
}

/* vxlan_ecn_encap is the outer TOS: the netdev's (or the inner one's, for
 * tos inherit), with the inner ECN field copied but CE, which becomes
 * ECT(0) (the kernel's ip_tunnel_ecn_encap, RFC 6040 normal mode). */
static __always_inline __u8 vxlan_outer_tos(const struct xdpr_vxlan *v, __u8 inner)
{
	__u8 tos = v->tos == 1 ? inner : v->tos;
	__u8 ecn = inner & ECN_MASK;

	return (tos & ~ECN_MASK) | (ecn == ECN_CE ? ECN_ECT_0 : ecn);
}

/* vxlan_write writes the outer headers in front of the inner frame
 * (already moved there: the head was moved by the outer length) and gives
 * the inner frame its overlay MACs (from the inner route) and one hop
 * less. s holds the netdev's entry, the outer route, the inner length,
 * the outer TOS and source port. The UDP checksum is vxlan_udp_csum's. It returns -1 when
 * the frame is too short (cannot be: the verifier wants the bounds). */
static __always_inline int vxlan_write(struct xdp_md *ctx, struct xdpr_vxlan_scratch *s, const int v4)
{
	const struct xdpr_vxlan *v = &s->vx;
	const struct bpf_fib_lookup *o = vxlan_fib(s);
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	const int ol = v4 ? 20 : 40;
	struct ethhdr *eth = data;
	struct udphdr *uh = data + ETH_HLEN + ol;
	__be32 *vx = (void *)(uh + 1);
	struct ethhdr *ieth = (void *)(vx + 2);
	struct iphdr *in = (void *)(ieth + 1);
	__u32 udp_len = VXLAN_UDP_LEN + ETH_HLEN + s->len;

	if ((void *)(in + 1) > end)
		return -1;
	eth_set_macs(eth, o->dmac, o->smac);
	if (v4) {
		struct iphdr *ip = data + ETH_HLEN;

		eth->h_proto = bpf_htons(ETH_P_IP);
		*(__u16 *)(void *)ip = bpf_htons(0x4500 | s->tos);
		ip->tot_len = bpf_htons(20 + udp_len);
		/* The netdev sends without DF (df unset); the identification
		 * is any, as the kernel's ip_select_ident is to a receiver. */
		ip->id = (__u16)bpf_get_prandom_u32();
		ip->frag_off = 0;
		ip->ttl = v->ttl;
		ip->protocol = IPPROTO_UDP;
		ip->saddr = o->ipv4_src;
		ip->daddr = v->remote.s6_addr32[3];
		ipv4_csum_full(ip);
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		eth->h_proto = bpf_htons(ETH_P_IPV6);
		/* Flow label 0: the netdev's (label policy fixed, label 0). */
		*(__be32 *)(void *)ip6 = bpf_htonl(0x60000000 | ((__u32)s->tos << 20));
		ip6->payload_len = bpf_htons(udp_len);
		ip6->nexthdr = IPPROTO_UDP;
		ip6->hop_limit = v->ttl;
		__builtin_memcpy(&ip6->saddr, o->ipv6_src, 16);
		ip6->daddr = v->remote;
	}
	uh->source = bpf_htons(s->sport);
	uh->dest = bpf_htons(v->port);
	uh->len = bpf_htons(udp_len);
	uh->check = 0;
	vx[0] = bpf_htonl(VXLAN_FLAGS_I);
	vx[1] = bpf_htonl(v->vni << 8);
	eth_set_macs(ieth, &s->imac[0], &s->imac[6]);
	if (ieth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *in6 = (void *)(ieth + 1);

		if ((void *)(in6 + 1) > end)
			return -1;
		in6->hop_limit--;
	} else {
		ipv4_decrement_ttl(in);
	}
	return 0;
}

/* vxlan_udp_csum fills the outer UDP checksum of the frame just built: a
 * sum over the whole datagram, as the kernel's checksum (in software or
 * offloaded) comes out. */
static __always_inline int vxlan_udp_csum(struct xdp_md *ctx, struct xdpr_vxlan_scratch *s, const int v4)
{
	const int ol = v4 ? 20 : 40;
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct udphdr *uh = data + ETH_HLEN + ol;
	__u32 *src = data + ETH_HLEN + (v4 ? 12 : 8);
	__s64 sum;
	__u16 c;

	if ((void *)(uh + 1) > end)
		return -1;
	s->udp_len = VXLAN_UDP_LEN + ETH_HLEN + s->len;
	sum = vxlan_pseudo(src, src + (v4 ? 1 : 4), v4, s->udp_len);
	sum = vxlan_frame_sum(ctx, s, ETH_HLEN + ol, s->udp_len, sum);
	if (sum < 0)
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	uh = data + ETH_HLEN + ol;
	if ((void *)(uh + 1) > end)
		return -1;
	c = ~vxlan_fold(sum);
	uh->check = c ? c : 0xffff;
	return 0;
}

/* vxlan_encap_flow reads what the outer headers take from the inner
 * packet into s: its length, the outer TOS and the source port. It
 * returns 0, or the counter when the frame is shorter than the caller
 * checked (cannot be). */
static __always_inline __u32 vxlan_encap_flow(struct xdp_md *ctx, struct xdpr_vxlan_scratch *s)
{
	const struct xdpr_vxlan *v = &s->vx;
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 a, b, ports = 0;
	void *l4p;
	__u8 l4;

	if (data + ETH_HLEN + sizeof(struct ipv6hdr) <= end &&
	    ((struct ethhdr *)data)->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		s->len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		a = ip6->saddr.s6_addr32[0] ^ ip6->saddr.s6_addr32[1] ^ ip6->saddr.s6_addr32[2] ^ ip6->saddr.s6_addr32[3];
		b = ip6->daddr.s6_addr32[0] ^ ip6->daddr.s6_addr32[1] ^ ip6->daddr.s6_addr32[2] ^ ip6->daddr.s6_addr32[3];
		l4 = ip6->nexthdr;
		s->tos = vxlan_outer_tos(v, ipv6_tclass(ip6));
		l4p = ip6 + 1;
	} else if (data + ETH_HLEN + sizeof(struct iphdr) <= end) {
		struct iphdr *iph = data + ETH_HLEN;

		s->len = bpf_ntohs(iph->tot_len);
		a = iph->saddr;
		b = iph->daddr;
		l4 = iph->protocol;
		if (iph->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET_MASK))
			l4 = 0;
		s->tos = vxlan_outer_tos(v, iph->tos);
		l4p = iph + 1;
	} else {
		return XDPR_CNT_PASS_TRUNCATED;
	}
	if (proto_has_ports(l4) && l4p + 4 <= end)
		ports = bpf_ntohl(*(__be32 *)l4p);
	s->sport = vxlan_sport(v, a, b, l4, ports);
	return 0;
}

/* vxlan_outer_route looks up the outer route as the netdev does (out of
 * its `dev`, from its local address or the one the route gives) into
 * vxlan_fib(s). It returns 0, or the counter for the kernel. */
static __always_inline __u32 vxlan_outer_route(struct xdp_md *ctx, struct xdpr_vxlan_scratch *s)
{
	const struct xdpr_vxlan *v = &s->vx;
	struct bpf_fib_lookup *o = vxlan_fib(s);
	__u32 flags = 0, olen;
	__u64 now = bpf_jiffies64();
	long rc;

	olen = ((v->flags & XDPR_VXLAN_F_IPV4) ? 20 : 40) + VXLAN_UDP_LEN + ETH_HLEN + s->len;
	if (s->nh_dev == v->ifindex && s->nh_tos == s->tos && now < s->nh_expires && olen <= s->nh_maxlen) {
		/* What vxlan_write reads of the lookup. */
		o->ifindex = s->nh_egress;
		__builtin_memcpy(o->dmac, s->nh_dmac, ETH_ALEN);
		__builtin_memcpy(o->smac, s->nh_smac, ETH_ALEN);
		__builtin_memcpy(o->ipv6_src, s->nh_src, 16);
		return redirect_port(s->nh_egress, 0);
	}
	__builtin_memset(o, 0, sizeof(*o));
	o->l4_protocol = IPPROTO_UDP;
	o->sport = bpf_htons(s->sport);
	o->dport = bpf_htons(v->port);
	o->tot_len = olen;
	if (v->flags & XDPR_VXLAN_F_IPV4) {
		o->family = AF_INET;
		o->tos = s->tos;
		o->ipv4_src = v->local.s6_addr32[3];
		o->ipv4_dst = v->remote.s6_addr32[3];
		if (!o->ipv4_src)
			flags |= BPF_FIB_LOOKUP_SRC;
	} else {
		o->family = AF_INET6;
		o->flowinfo = bpf_htonl((__u32)s->tos << 20);
		__builtin_memcpy(o->ipv6_src, &v->local, 16);
		__builtin_memcpy(o->ipv6_dst, &v->remote, 16);
		if (!(o->ipv6_src[0] | o->ipv6_src[1] | o->ipv6_src[2] | o->ipv6_src[3]))
			flags |= BPF_FIB_LOOKUP_SRC;
	}
	/* As the netdev routes: out of its `dev` when it has one. */
	if (v->underlay) {
		o->ifindex = v->underlay;
		flags |= BPF_FIB_LOOKUP_OUTPUT;
	} else {
		o->ifindex = ctx->ingress_ifindex;
	}
	/* A kernel without BPF_FIB_LOOKUP_SRC (before 6.7) refuses the
	 * lookup (-EINVAL) for a netdev without a local address: fib_other,
	 * and the kernel encapsulates. */
	rc = bpf_fib_lookup(ctx, o, sizeof(*o), flags);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		s->nh_dev = 0;
		return rc < 0 ? XDPR_CNT_PASS_FIB_OTHER : fib_pass_reason(rc);
	}
	if (s->nh_dev != v->ifindex || s->nh_tos != s->tos || now >= s->nh_expires) {
		s->nh_maxlen = 0;
		s->nh_expires = now + xdpr_vxlan_cache_jiffies;
	}
	s->nh_dev = v->ifindex;
	s->nh_tos = s->tos;
	s->nh_egress = o->ifindex;
	if (olen > s->nh_maxlen)
		s->nh_maxlen = olen;
	__builtin_memcpy(s->nh_dmac, o->dmac, ETH_ALEN);
	__builtin_memcpy(s->nh_smac, o->smac, ETH_ALEN);
	__builtin_memcpy(s->nh_src, o->ipv6_src, 16);
	return redirect_port(o->ifindex, 0);
}

/* What a stage of the split paths below returns to go on (beside -1, the
 * packet is none of VXLAN's, and the XDP verdicts it counted). */
#define VXLAN_MORE 16
/* ... or to go on by forgetting the flow's cached gate verdicts. */
#define VXLAN_FORGET 17

/* vxlan_encap_check is the first stage of vxlan_encap: everything that may
 * leave the packet to the kernel, nothing written. */
static __noinline int vxlan_encap_check(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u32 reason, __u32 mb)
{
	struct xdpr_vxlan_scratch *s;
	struct xdpr_vxlan *v;

	if (reason == XDPR_CNT_PASS_FRAG_NEEDED) {
		/* The lookup stopped at the MTU before it named the egress:
		 * once more without the length (tot_len is mtu_result). */
		p->tot_len = 0;
		if (!fib_routed(bpf_fib_lookup(ctx, p, sizeof(*p), xdpr_fib_skip_neigh)))
			return -1;
	}
	s = vxlan_scratch();
	if (!s)
		return -1;
	v = bpf_map_lookup_elem(&xdpr_vxlans, &p->ifindex);
	if (!v)
		return -1;
	/* Copies, so that only ctx and s live across the helper calls. */
	s->vx = *v;
	__builtin_memcpy(s->imac, p->dmac, 6);
	__builtin_memcpy(&s->imac[6], p->smac, 6);
	s->rx_len = bpf_xdp_get_buff_len(ctx);
	s->npt = 0;
	if (reason == XDPR_CNT_PASS_FRAG_NEEDED)
		return vxlan_count(s, XDPR_CNT_PASS_VXLAN_TOO_BIG, XDP_PASS);
	if (reason == XDPR_CNT_PASS_NO_NEIGH)
		return vxlan_count(s, XDPR_CNT_PASS_VXLAN_NO_NEIGH, XDP_PASS);
	/* The checksum covers the whole frame, which a multi-buffer one
	 * within a vxlan MTU hardly ever is. */
	if (mb)
		return vxlan_count(s, XDPR_CNT_PASS_VXLAN_MB, XDP_PASS);
	reason = vxlan_encap_flow(ctx, s);
	if (!reason)
		reason = vxlan_outer_route(ctx, s);
	if (reason)
		return vxlan_count(s, reason, XDP_PASS);
	return VXLAN_MORE;
}

/* vxlan_encap_build is the second stage: the frame grows by the outer
 * headers (of family v4), which are written. */
static __always_inline int vxlan_encap_build_at(struct xdp_md *ctx, struct xdpr_vxlan_scratch *s, const int v4)
{
	/* Ethernet padding after a short packet must not travel inside the
	 * tunnel. */
	int excess = (int)s->rx_len - (int)(ETH_HLEN + s->len);
	/* Untouched, the kernel may have it; with its source translated
	 * (vxlan_encap_snpt) not: conntrack would see the outside address. */
	int miss = s->npt ? XDP_DROP : XDP_PASS;

	if (excess > 0 && bpf_xdp_adjust_tail(ctx, -excess))
		return vxlan_count(s, XDPR_CNT_TUN_NO_ROOM, miss);
	if (bpf_xdp_adjust_head(ctx, -(int)(v4 ? VXLAN_OUTER4 : VXLAN_OUTER6)))
		return vxlan_count(s, XDPR_CNT_TUN_NO_ROOM, miss);
	if (vxlan_write(ctx, s, v4))
		return vxlan_count(s, XDPR_CNT_TUN_NO_ROOM, XDP_DROP);
	return VXLAN_MORE;
}

static __noinline int vxlan_encap_build(struct xdp_md *ctx)
{
	struct xdpr_vxlan_scratch *s = vxlan_scratch();

	if (!s)
		return XDP_PASS;
	if (s->vx.flags & XDPR_VXLAN_F_IPV4)
		return vxlan_encap_build_at(ctx, s, 1);
	return vxlan_encap_build_at(ctx, s, 0);
}

/* vxlan_encap_csum is the last stage: the UDP checksum where the netdev
 * sends one, and the count. */
static __noinline int vxlan_encap_csum(struct xdp_md *ctx)
{
	struct xdpr_vxlan_scratch *s = vxlan_scratch();
	int err = 0;

	if (!s)
		return XDP_DROP;
	if (s->vx.flags & XDPR_VXLAN_F_CSUM)
		err = s->vx.flags & XDPR_VXLAN_F_IPV4 ? vxlan_udp_csum(ctx, s, 1) : vxlan_udp_csum(ctx, s, 0);
	if (err)
		return vxlan_count(s, XDPR_CNT_TUN_NO_ROOM, XDP_DROP);
	return vxlan_count(s, s->npt ? XDPR_CNT_VXLAN_ENCAP_SNPT : XDPR_CNT_VXLAN_ENCAP, XDP_REDIRECT);
}

/* vxlan_encap_snpt is the stage between the checks and the build when
 * SNPT may apply (a LAN port's packet, NPT rules loaded): the inner
 * source translated when a rule on the netdev egress is its, before the
 * frame moves into the outer headers and the UDP checksum sums it. A
 * packet NPT refuses is dropped, as forward_ipv6 drops it. */
static __noinline int vxlan_encap_snpt(struct xdp_md *ctx, __u32 egress, __u64 feat)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct xdpr_vxlan_scratch *s;
	__u32 fwd = 0, reason = 0;

	if ((void *)(ip6 + 1) <= end && ((struct ethhdr *)data)->h_proto == bpf_htons(ETH_P_IPV6))
		reason = npt_snpt_at(ip6, end, egress, feat, &fwd);
	s = vxlan_scratch();
	if (!s)
		return XDP_DROP;
	if (reason)
		return vxlan_count(s, reason, XDP_DROP);
	s->npt = fwd == XDPR_CNT_FWD_NPT_SNPT;
	return VXLAN_MORE;
}

/* vxlan_encap is the hook of the forward paths for a packet whose route
 * lookup (p, with the result reason) did not end in a plain redirect. A
 * route into a vxlan netdev the loader recorded is encapsulated here: the
 * inner frame to the overlay neighbour's MAC from the netdev's (the
 * lookup's dmac and smac), in outer headers as the netdev writes them, to
 * the outer next hop over the underlay. The inner packet was checked by
 * the caller (forwardable, TTL > 1, wholly in the frame, through the
 * conntrack gate). mb: the frame has more than one buffer. It returns the
 * counted verdict, or -1 when the egress is no vxlan netdev of ours (the
 * caller passes with its reason). In stages, each a function of its own
 * with a small frame, called from here, which is inlined into xdpr_main
 * (loader/stack_test.go; on 6.1 a frame counts at least 32). */
static __always_inline int vxlan_encap(struct xdp_md *ctx, struct bpf_fib_lookup *p, __u32 reason, __u32 mb,
				       __u64 npt)
{
	int act;

	/* EGRESS_NOT_ATTACHED as redirect_port_try says it, before
	 * egress_reason names the vxlan netdev a TUNNEL_DEV. */
	if (reason != XDPR_CNT_PASS_EGRESS_NOT_ATTACHED && reason != XDPR_CNT_PASS_NO_NEIGH &&
	    reason != XDPR_CNT_PASS_FRAG_NEEDED)
		return -1;
	act = vxlan_encap_check(ctx, p, reason, mb);
	if (act != VXLAN_MORE)
		return act;
	/* p->ifindex is the netdev's (the check looked no route up but
	 * for a too big packet, which it passed). */
	if (npt) {
		act = vxlan_encap_snpt(ctx, p->ifindex, npt);
		if (act != VXLAN_MORE)
			return act;
	}
	act = vxlan_encap_build(ctx);
	if (act != VXLAN_MORE)
		return act;
	return vxlan_encap_csum(ctx);
}

/* vxlan_to_us says whether a datagram from saddr to daddr (outer family
 * v6) is addressed to this router: at the netdev's local address when it
 * has one (v), else at any address of the router's, as the route lookup
 * says (the kernel's vxlan socket listens on all of them). */
static __always_inline int vxlan_to_us(struct xdp_md *ctx, struct xdpr_vxlan_scratch *s, const struct xdpr_vxlan *v,
				       const __u32 *saddr, const __u32 *daddr, const int v6)
{
	struct bpf_fib_lookup *f = vxlan_fib(s);
	__u64 now;
	int us;

	if (v && !v6 && v->local.s6_addr32[3])
		return v->local.s6_addr32[3] == daddr[0];
	if (v && v6 && (v->local.s6_addr32[0] | v->local.s6_addr32[1] | v->local.s6_addr32[2] | v->local.s6_addr32[3]))
		return v->local.s6_addr32[0] == daddr[0] && v->local.s6_addr32[1] == daddr[1] &&
		       v->local.s6_addr32[2] == daddr[2] && v->local.s6_addr32[3] == daddr[3];
	/* A yes is reused for a while: a remote's packets all ask it. IPv4
	 * addresses are in the first word, the others 0. */
	now = bpf_jiffies64();
	if (now < s->us_expires && s->us_saddr[0] == saddr[0] && s->us_daddr[0] == daddr[0] &&
	    (v6 ? (s->us_saddr[1] == saddr[1] && s->us_saddr[2] == saddr[2] && s->us_saddr[3] == saddr[3] &&
		   s->us_daddr[1] == daddr[1] && s->us_daddr[2] == daddr[2] && s->us_daddr[3] == daddr[3])
		: !(s->us_saddr[1] | s->us_saddr[2] | s->us_saddr[3])))
		return 1;
	__builtin_memset(f, 0, sizeof(*f));
	if (v6) {
		f->family = AF_INET6;
		__builtin_memcpy(f->ipv6_src, saddr, 16);
		__builtin_memcpy(f->ipv6_dst, daddr, 16);
	} else {
		f->family = AF_INET;
		f->ipv4_src = saddr[0];
		f->ipv4_dst = daddr[0];
	}
	f->ifindex = ctx->ingress_ifindex;
	us = bpf_fib_lookup(ctx, f, sizeof(*f), xdpr_fib_skip_neigh) == BPF_FIB_LKUP_RET_NOT_FWDED;
	if (us) {
		/* The addresses as the lookup was given them (it keeps
		 * them for a local destination; IPv4 in the first word). */
		if (v6) {
			__builtin_memcpy(s->us_saddr, f->ipv6_src, 16);
			__builtin_memcpy(s->us_daddr, f->ipv6_dst, 16);
		} else {
			s->us_saddr[0] = f->ipv4_src;
			s->us_daddr[0] = f->ipv4_dst;
			s->us_saddr[1] = s->us_saddr[2] = s->us_saddr[3] = 0;
			s->us_daddr[1] = s->us_daddr[2] = s->us_daddr[3] = 0;
		}
		s->us_expires = now + xdpr_vxlan_cache_jiffies;
	}
	return us;
}

/* vxlan_inner checks the inner packet of a configured VXLAN frame (its IP
 * header at offset off, avail octets of it in the datagram) as the forward
 * paths check what they forward, and combines the outer ECN field (s->otos)
 * into it (RFC 6040, as the kernel's vxlan does). It returns 0 with the
 * inner length and TOS in s, or the counter for the kernel; a packet to
 * drop (CE outside a not-ECT one) gives XDPR_CNT_DROP_TUN_ECN. */
static __always_inline __u32 vxlan_inner(struct xdp_md *ctx, struct xdpr_vxlan_scratch *s, const int off, __u32 avail)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 reason;
	int tos;

	if (s->inner_v6) {
		struct ipv6hdr *ip6 = data + off;

		if ((void *)(ip6 + 1) > end || avail < sizeof(*ip6))
			return XDPR_CNT_PASS_VXLAN_INNER;
		s->len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		if (ip6->version != 6 || s->len > avail)
			return XDPR_CNT_PASS_VXLAN_INNER;
		reason = ipv6_addr_reason(&ip6->saddr, &ip6->daddr);
		if (reason)
			return reason;
		if (ipv6_is_ext_header(ip6->nexthdr))
			return ip6->nexthdr == IPPROTO_HOPOPTS ? XDPR_CNT_PASS_IPV6_HOP_BY_HOP
			       : ip6->nexthdr == IPPROTO_FRAGMENT ? XDPR_CNT_PASS_FRAGMENT : XDPR_CNT_PASS_VXLAN_INNER;
		if (ip6->hop_limit <= 1)
			return XDPR_CNT_PASS_TTL_EXPIRED;
		tos = ecn_decap(s->otos, ipv6_tclass(ip6));
	} else {
		struct iphdr *iph = data + off;

		if ((void *)(iph + 1) > end || avail < sizeof(*iph))
			return XDPR_CNT_PASS_VXLAN_INNER;
		s->len = bpf_ntohs(iph->tot_len);
		if (*(__u8 *)iph != 0x45 || s->len < sizeof(*iph) || s->len > avail)
			return XDPR_CNT_PASS_VXLAN_INNER;
		if (!ipv4_header_ok(iph))
			return XDPR_CNT_PASS_BAD_CHECKSUM;
		if (iph->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET_MASK))
			return XDPR_CNT_PASS_FRAGMENT;
		reason = ipv4_addr_reason(iph->saddr, iph->daddr);
		if (reason)
			return reason;
		/* The router's own or a LAN's source, as ipip6 checks it. */
		if (tun_inner_src_kind(iph->saddr))
			return XDPR_CNT_PASS_VXLAN_INNER;
		if (iph->ttl <= 1)
			return XDPR_CNT_PASS_TTL_EXPIRED;
		tos = ecn_decap(s->otos, iph->tos);
	}
	if (tos < 0)
		return XDPR_CNT_DROP_TUN_ECN;
	s->tos = tos;
	return 0;
}

/* vxlan_inner_route looks up the inner packet's route as if it arrived on
 * the netdev ifindex, as the kernel routes it, into vxlan_fib(s), and arms
 * the redirect. It returns 0, or the counter for the kernel. */
static __always_inline __u32 vxlan_inner_route(struct xdp_md *ctx, struct xdpr_vxlan_scratch *s, const int off,
					       __u32 ifindex)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup *f = vxlan_fib(s);
	long rc;

	__builtin_memset(f, 0, sizeof(*f));
	if (s->inner_v6) {
		struct ipv6hdr *ip6 = data + off;

		if ((void *)(ip6 + 1) > end)
			return XDPR_CNT_PASS_TRUNCATED;
		f->family = AF_INET6;
		f->flowinfo = *(__be32 *)(void *)ip6 & bpf_htonl(0x0fffffff);
		f->l4_protocol = ip6->nexthdr;
		__builtin_memcpy(f->ipv6_src, &ip6->saddr, 16);
		/* Routed for the inside address when DNPT applies. */
		__builtin_memcpy(f->ipv6_dst, s->npt ? &vxlan_npt(s)->dst : &ip6->daddr, 16);
	} else {
		struct iphdr *iph = data + off;

		if ((void *)(iph + 1) > end)
			return XDPR_CNT_PASS_TRUNCATED;
		f->family = AF_INET;
		f->tos = s->tos;
		f->l4_protocol = iph->protocol;
		f->ipv4_src = iph->saddr;
		f->ipv4_dst = iph->daddr;
	}
	f->tot_len = s->len;
	f->ifindex = ifindex;
	rc = bpf_fib_lookup(ctx, f, sizeof(*f), 0);
	if (rc == BPF_FIB_LKUP_RET_NOT_FWDED)
		return XDPR_CNT_PASS_VXLAN_LOCAL;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return rc < 0 ? XDPR_CNT_PASS_FIB_OTHER : fib_pass_reason(rc);
	if (f->ifindex == ifindex)
		return XDPR_CNT_PASS_HAIRPIN;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	return redirect_port(f->ifindex, s->rx_len > (__u64)(end - data));
}

/* vxlan_strip removes the outer headers (and Ethernet padding behind the
 * inner packet) and forwards the inner one: the next hop's MACs, one hop
 * less, the ECN field the outer header brought. It returns the verdict. */
static __always_inline int vxlan_strip(struct xdp_md *ctx, struct xdpr_vxlan_scratch *s, const int off)
{
	struct bpf_fib_lookup *f = vxlan_fib(s);
	int excess = (int)s->rx_len - (int)(off + s->len);
	void *data, *end;

	if (excess > 0 && bpf_xdp_adjust_tail(ctx, -excess))
		return vxlan_count(s, XDPR_CNT_TUN_NO_ROOM, XDP_PASS);
	if (bpf_xdp_adjust_head(ctx, off - ETH_HLEN))
		return vxlan_count(s, XDPR_CNT_TUN_NO_ROOM, XDP_PASS);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) + sizeof(struct iphdr) > end)
		return vxlan_count(s, XDPR_CNT_TUN_NO_ROOM, XDP_DROP);
	eth_set_macs(eth, f->dmac, f->smac);
	if (s->inner_v6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return vxlan_count(s, XDPR_CNT_TUN_NO_ROOM, XDP_DROP);
		if (s->tos != ipv6_tclass(ip6))
			*(__be32 *)(void *)ip6 = (*(__be32 *)(void *)ip6 & bpf_htonl(0xf00fffff)) |
						 bpf_htonl((__u32)s->tos << 20);
		ip6->hop_limit--;
	} else {
		struct iphdr *iph = (void *)(eth + 1);

		if (s->tos != iph->tos) {
			iph->tos = s->tos;
			iph->ttl--;
			ipv4_csum_full(iph);
		} else {
			ipv4_decrement_ttl(iph);
		}
	}
	return vxlan_count(s, s->npt ? XDPR_CNT_VXLAN_DECAP_DNPT : XDPR_CNT_VXLAN_DECAP, XDP_REDIRECT);
}

/* vxlan_decap_match_at is the first stage of vxlan_decap (outer family
 * v6, a constant at each call): is it VXLAN from a configured remote and
 * VNI to this router, for the netdev's MAC, with a good checksum? */
static __always_inline int vxlan_decap_match_at(struct xdp_md *ctx, const int v6)
{
	const int ol = v6 ? 40 : 20;
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct udphdr *uh = data + ETH_HLEN + ol;
	__be32 *vx = (void *)(uh + 1);
	struct ethhdr *ieth = (void *)(vx + 2);
	struct xdpr_vxlan_scratch *s;
	struct xdpr_vxlan *v;
	__u32 *n;
	int to_us;

	if ((void *)(ieth + 1) > end)
		return -1;
	s = vxlan_scratch();
	if (!s)
		return -1;
	s->key.port = bpf_ntohs(uh->dest);
	n = bpf_map_lookup_elem(&xdpr_vxlan_ports, &s->key.port);
	if (!n || !*n)
		return -1;
	s->key.vni = bpf_ntohl(vx[1]) >> 8;
	if (v6) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		__builtin_memcpy(&s->key.remote, &ip6->saddr, 16);
		s->otos = ipv6_tclass(ip6);
	} else {
		struct iphdr *iph = data + ETH_HLEN;

		s->key.remote.s6_addr32[0] = 0;
		s->key.remote.s6_addr32[1] = 0;
		s->key.remote.s6_addr32[2] = bpf_htonl(0xffff);
		s->key.remote.s6_addr32[3] = iph->saddr;
		s->otos = iph->tos;
	}
	*(__u16 *)(void *)s->key.pad = 0;
	v = bpf_map_lookup_elem(&xdpr_vxlan_eps, &s->key);
	if (v)
		s->vx = *v;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + ETH_HLEN + ol > end)
		return -1;
	if (v6)
		to_us = vxlan_to_us(ctx, s, v ? &s->vx : NULL, ((struct ipv6hdr *)(data + ETH_HLEN))->saddr.s6_addr32,
				    ((struct ipv6hdr *)(data + ETH_HLEN))->daddr.s6_addr32, 1);
	else
		to_us = vxlan_to_us(ctx, s, v ? &s->vx : NULL, &((struct iphdr *)(data + ETH_HLEN))->saddr,
				    &((struct iphdr *)(data + ETH_HLEN))->daddr, 0);
	if (!to_us)
		return -1;
	s->rx_len = bpf_xdp_get_buff_len(ctx);
	s->npt = 0;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	uh = data + ETH_HLEN + ol;
	vx = (void *)(uh + 1);
	ieth = (void *)(vx + 2);
	if ((void *)(ieth + 1) > end)
		return -1;
	/* Any other VXLAN flags (GBP, GPE, reserved bits) are the kernel's to
	 * judge; so is VXLAN from anyone else. */
	if (!v || vx[0] != bpf_htonl(VXLAN_FLAGS_I) || (vx[1] & bpf_htonl(0xff)))
		return vxlan_count(s, XDPR_CNT_PASS_VXLAN_UNKNOWN, XDP_PASS);
	/* The outer length was checked against the frame by the caller. */
	s->udp_len = bpf_ntohs(uh->len);
	if (s->udp_len != (v6 ? bpf_ntohs(((struct ipv6hdr *)(data + ETH_HLEN))->payload_len)
			      : bpf_ntohs(((struct iphdr *)(data + ETH_HLEN))->tot_len) - 20) ||
	    s->udp_len < VXLAN_UDP_LEN + ETH_HLEN)
		return vxlan_count(s, XDPR_CNT_PASS_VXLAN_INNER, XDP_PASS);
	/* Only frames to the netdev's MAC are routed by it: multicast (the
	 * overlay's neighbour discovery) and others are the kernel's. */
	if (((__u32 *)(void *)ieth)[0] != *(__u32 *)(void *)&s->vx.mac[0] ||
	    ((__u16 *)(void *)ieth)[2] != *(__u16 *)(void *)&s->vx.mac[4])
		return vxlan_count(s, XDPR_CNT_PASS_VXLAN_INNER, XDP_PASS);
	if (ieth->h_proto != bpf_htons(ETH_P_IPV6) && ieth->h_proto != bpf_htons(ETH_P_IP))
		return vxlan_count(s, XDPR_CNT_PASS_VXLAN_INNER, XDP_PASS);
	s->inner_v6 = ieth->h_proto == bpf_htons(ETH_P_IPV6);
	s->inner_off = (v6 ? VXLAN_OUTER6 : VXLAN_OUTER4) + ETH_HLEN;
	/* The kernel drops a datagram whose checksum is wrong, and over IPv6
	 * one without (the netdev has no udp6zerocsumrx). */
	if (uh->check || v6) {
		__u32 *src = data + ETH_HLEN + (v6 ? 8 : 12);
		__s64 sum;

		if (!uh->check)
			return vxlan_count(s, XDPR_CNT_PASS_VXLAN_CSUM, XDP_PASS);
		sum = vxlan_pseudo(src, src + (v6 ? 4 : 1), !v6, s->udp_len);
		sum = vxlan_frame_sum(ctx, s, ETH_HLEN + ol, s->udp_len, sum);
		if (sum < 0 || vxlan_fold(sum) != 0xffff)
			return vxlan_count(s, XDPR_CNT_PASS_VXLAN_CSUM, XDP_PASS);
	}
	return VXLAN_MORE;
}

static __noinline int vxlan_decap_match(struct xdp_md *ctx, __u32 v6)
{
	struct xdpr_feature_word *f = bpf_map_lookup_elem(&xdpr_features, (const void *)&xdpr_vxlan_zero);

	if (!f || !(f->flags & XDPR_F_VXLAN))
		return -1;
	if (v6)
		return vxlan_decap_match_at(ctx, 1);
	return vxlan_decap_match_at(ctx, 0);
}

/* vxlan_decap_inner is the second stage: the inner packet checked. */
static __noinline int vxlan_decap_inner(struct xdp_md *ctx, __u32 v6)
{
	struct xdpr_vxlan_scratch *s = vxlan_scratch();
	__u32 reason;

	if (!s)
		return XDP_PASS;
	reason = v6 ? vxlan_inner(ctx, s, VXLAN_OUTER6 + ETH_HLEN, s->udp_len - VXLAN_UDP_LEN - ETH_HLEN)
		    : vxlan_inner(ctx, s, VXLAN_OUTER4 + ETH_HLEN, s->udp_len - VXLAN_UDP_LEN - ETH_HLEN);
	if (reason == XDPR_CNT_DROP_TUN_ECN)
		return vxlan_count(s, reason, XDP_DROP);
	if (reason)
		return vxlan_count(s, reason, XDP_PASS);
	return VXLAN_MORE;
}

/* The conntrack gate for the inner packet, on a gated port: conntrack
 * keys on the tuple alone, and a flow it holds as established passed the
 * firewall as arriving on the vxlan netdev, so this is the gate of the
 * netdev's own traffic, as tunnel_decap's is for ipip6. Its work is in s:
 * the stack has no room; and in stages, the tuple (vxlan_decap_tuple)
 * and the lookup (vxlan_decap_ct) or, for a SYN, FIN or RST, forgetting
 * the flow (vxlan_decap_forget), each with a small frame. */
static __always_inline __u32 vxlan_tuple(struct xdp_md *ctx, struct xdpr_vxlan_scratch *s)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	/* The inner header's offset (one of two constants) bounded for the
	 * verifier. */
	void *l3 = data + (s->inner_off & 0xff);
	void *pend = l3 + (s->len & 0xffff);
	struct xdpr_ct_work *w = vxlan_ct(s);

	if (s->inner_v6) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > end)
			return XDPR_CNT_PASS_TRUNCATED;
		s->l4proto = ip6->nexthdr;
		/* Conntrack holds the inside address (after DNPT). */
		return ct_tuple_ipv6(ip6, s->npt ? &vxlan_npt(s)->dst : &ip6->daddr, pend, end, &w->t, &w->ports);
	}
	struct iphdr *iph = l3;

	if ((void *)(iph + 1) > end)
		return XDPR_CNT_PASS_TRUNCATED;
	s->l4proto = iph->protocol;
	return ct_tuple_ipv4(iph, pend, end, &w->t, &w->ports);
}

static __noinline int vxlan_decap_tuple(struct xdp_md *ctx)
{
	struct xdpr_vxlan_scratch *s = vxlan_scratch();
	__u32 reason;

	if (!s)
		return XDP_PASS;
	reason = vxlan_tuple(ctx, s);
	/* A SYN, FIN or RST: the flow leaves this CPU's cache first. */
	if (reason == XDPR_CNT_PASS_CT_TCP_FLAGS)
		return VXLAN_FORGET;
	if (reason)
		return vxlan_count(s, reason, XDP_PASS);
	return VXLAN_MORE;
}

static __noinline int vxlan_decap_forget(struct xdp_md *ctx)
{
	struct xdpr_vxlan_scratch *s = vxlan_scratch();
	struct xdpr_ct_work *w;

	if (!s)
		return XDP_PASS;
	w = vxlan_ct(s);
	ct_forget_in(&w->t, s->inner_v6 ? sizeof(w->t.ipv6) : sizeof(w->t.ipv4), IPPROTO_TCP, &w->slot);
	s = vxlan_scratch();
	if (!s)
		return XDP_PASS;
	return vxlan_count(s, XDPR_CNT_PASS_CT_TCP_FLAGS, XDP_PASS);
}

static __noinline int vxlan_decap_ct(struct xdp_md *ctx)
{
	struct xdpr_vxlan_scratch *s = vxlan_scratch();
	struct xdpr_ct_work *w;
	__u32 reason;

	if (!s)
		return XDP_PASS;
	w = vxlan_ct(s);
	reason = ct_verdict_in(ctx, &w->t, s->inner_v6 ? sizeof(w->t.ipv6) : sizeof(w->t.ipv4), s->l4proto, NULL,
			       &w->opts, w);
	if (!reason)
		return VXLAN_MORE;
	/* Looked up again rather than kept: kept, it would be spilled. */
	s = vxlan_scratch();
	if (!s)
		return XDP_PASS;
	return vxlan_count(s, reason, XDP_PASS);
}

/* vxlan_decap_dnpt is the stage after the inner checks: a DNPT rule on
 * the netdev for the inner destination, as if the packet arrived on it
 * (the slow path translates at the netdev's TC ingress). It finds the
 * rule and the inside address (vxlan_npt), which the gate and the route
 * use; nothing is written to the packet. To the router's own address:
 * the kernel's; unmappable: dropped. */
static __noinline int vxlan_decap_dnpt(struct xdp_md *ctx)
{
	struct xdpr_vxlan_scratch *s = vxlan_scratch();
	struct xdpr_npt_rule *r;
	void *data, *end;
	__u32 reason;
	__u64 feat;

	if (!s)
		return XDP_PASS;
	s->npt = 0;
	feat = features();
	if (!s->inner_v6 || !(feat & XDPR_F_NPT))
		return VXLAN_MORE;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + (s->inner_off & 0xff);
	if ((void *)(ip6 + 1) > end)
		return VXLAN_MORE;
	r = npt_dnpt_rule(s->vx.ifindex, ip6, feat, &vxlan_npt(s)->dst, &reason);
	if (reason)
		return vxlan_count(s, reason, reason == XDPR_CNT_PASS_NPT_EXCLUDED ? XDP_PASS : XDP_DROP);
	if (!r)
		return VXLAN_MORE;
	vxlan_npt(s)->rule = *r;
	s->npt = 1;
	return VXLAN_MORE;
}

/* vxlan_decap_xlate writes the DNPT vxlan_decap_dnpt found (if any),
 * once the redirect is armed, before the outer headers go. */
static __noinline int vxlan_decap_xlate(struct xdp_md *ctx)
{
	struct xdpr_vxlan_scratch *s = vxlan_scratch();
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 reason;

	if (!s)
		return XDP_DROP;
	if (!s->npt)
		return VXLAN_MORE;
	struct ipv6hdr *ip6 = data + (s->inner_off & 0xff);
	if ((void *)(ip6 + 1) > end)
		return vxlan_count(s, XDPR_CNT_DROP_NPT_MALFORMED, XDP_DROP);
	if (!npt_needs_l4(ip6, &vxlan_npt(s)->rule)) {
		ip6->daddr = vxlan_npt(s)->dst;
		return VXLAN_MORE;
	}
	reason = npt_translate_xdp(ip6, end, &vxlan_npt(s)->rule, 1);
	if (reason) {
		s = vxlan_scratch();
		return s ? vxlan_count(s, reason, XDP_DROP) : XDP_DROP;
	}
	return VXLAN_MORE;
}

/* vxlan_decap_route is the fourth: the inner route from the netdev, the
 * redirect armed; nothing written yet. */
static __noinline int vxlan_decap_route(struct xdp_md *ctx, __u32 v6)
{
	struct xdpr_vxlan_scratch *s = vxlan_scratch();
	__u32 reason;

	if (!s)
		return XDP_PASS;
	reason = v6 ? vxlan_inner_route(ctx, s, VXLAN_OUTER6 + ETH_HLEN, s->vx.ifindex)
		    : vxlan_inner_route(ctx, s, VXLAN_OUTER4 + ETH_HLEN, s->vx.ifindex);
	if (reason)
		return vxlan_count(s, reason, XDP_PASS);
	return VXLAN_MORE;
}

/* vxlan_decap_strip is the last stage. */
static __noinline int vxlan_decap_strip(struct xdp_md *ctx, __u32 v6)
{
	struct xdpr_vxlan_scratch *s = vxlan_scratch();

	if (!s)
		return XDP_DROP;
	if (v6)
		return vxlan_strip(ctx, s, VXLAN_OUTER6 + ETH_HLEN);
	return vxlan_strip(ctx, s, VXLAN_OUTER4 + ETH_HLEN);
}

/* vxlan_decap is the hook of the forward paths for UDP (outer family v6),
 * checked as the forward paths check a packet up to its addresses. VXLAN
 * to this router from a configured remote and VNI, at a configured port,
 * is decapsulated and its inner packet forwarded as if it came in on the
 * vxlan netdev (the conntrack gate when gate, then the route lookup from
 * that netdev); anything else the kernel gets untouched. It returns the
 * counted verdict, or -1 for UDP that is not VXLAN to this router (the
 * forward path goes on with it). In stages, as vxlan_encap. */
static __always_inline int vxlan_decap(struct xdp_md *ctx, __u32 v6, __u32 gate)
{
	int act;

	act = vxlan_decap_match(ctx, v6);
	if (act != VXLAN_MORE)
		return act;
	act = vxlan_decap_inner(ctx, v6);
	if (act != VXLAN_MORE)
		return act;
	act = vxlan_decap_dnpt(ctx);
	if (act != VXLAN_MORE)
		return act;
	if (gate) {
		act = vxlan_decap_tuple(ctx);
		if (act == VXLAN_FORGET)
			return vxlan_decap_forget(ctx);
		if (act != VXLAN_MORE)
			return act;
		act = vxlan_decap_ct(ctx);
		if (act != VXLAN_MORE)
			return act;
	}
	act = vxlan_decap_route(ctx, v6);
	if (act != VXLAN_MORE)
		return act;
	act = vxlan_decap_xlate(ctx);
	if (act != VXLAN_MORE)
		return act;
	return vxlan_decap_strip(ctx, v6);
}

#endif
