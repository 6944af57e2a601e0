/* The conntrack gate (DESIGN.md principle 7): with it on, XDP forwards a
 * packet only when the kernel's conntrack holds an entry for its flow that
 * the kernel's own flowtable would offload: confirmed, a reply seen, not
 * dying, no NAT to apply, no helper watching, and for TCP the ESTABLISHED
 * state and a segment without SYN, FIN or RST. Everything else goes to the
 * kernel unmodified, where netfilter decides and conntrack sees every state
 * change; the later packets of a flow it accepted come back to XDP. The
 * ruleset (nftables or iptables, xdprouter's or the user's) is honoured
 * without being read here.
 *
 * The tuple looked up is the one the kernel's conntrack sees for the packet
 * at PREROUTING:
 *  - plain IPv4 and IPv6: the packet's own addresses and ports;
 *  - ipip6 decapsulated in XDP: the inner IPv4 packet (the slow path
 *    decapsulates in TC ingress, before netfilter, and delivers the inner
 *    packet on the tunnel netdev); the outer IPv6 header never reaches
 *    conntrack;
 *  - IPv4 encapsulated in XDP: the IPv4 packet as routed into the tunnel
 *    netdev (the slow path encapsulates in TC egress of that netdev, after
 *    POSTROUTING);
 *  - NPTv6: the INSIDE addresses. The slow path translates in TC, outside
 *    netfilter: DNPT at the WAN's TC ingress (before PREROUTING) and SNPT at
 *    its TC egress (after POSTROUTING). So conntrack's entry of a flow
 *    through NPT holds the inside host's address in both directions, and
 *    `conntrack -L` shows the inside prefix. The gate looks up what arrives
 *    on a LAN with its (untranslated) source, and what arrives on the WAN
 *    with its destination after DNPT.
 *
 * A refresh keeps conntrack's timeout alive while XDP carries a flow: when
 * less than the refresh threshold is left, the timeout is set to the
 * established one (the loader reads the sysctls at attach time), so a flow
 * costs one refresh per timeout, not one per packet.
 *
 * The kfuncs are weak: a kernel without them (nf_conntrack not loaded)
 * still loads the program with the gate off, where the verifier removes the
 * calls as dead code, and with the gate on and xdpr_ct_kfuncs 0 (compat.h),
 * where every gated packet goes to the kernel. */
#ifndef XDPR_CONNTRACK_H
#define XDPR_CONNTRACK_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <bpf/bpf_helpers.h>
#include "consts.h"
#include "maps.h"
#include "compiler.h"
#include "compat.h"

/* Per attachment, set by the loader before loading (enum xdpr_ct_gate).
 * Off, the verifier drops the gated copies of the forward paths, so the
 * ungated path runs exactly the instructions it ran without a gate. */
const volatile __u32 xdpr_port_ct_gate = XDPR_CT_GATE_OFF;
/* Timeouts written by a refresh (milliseconds, bpf_ct_change_timeout's
 * unit) and the remaining time below which a refresh happens (jiffies,
 * nf_conn.timeout's unit). The loader sets them from
 * nf_conntrack_tcp_timeout_established / nf_conntrack_udp_timeout_stream
 * and the kernel's HZ (the threshold: half the timeout, at most 15 s; see
 * readCTTimeouts); these defaults are the kernel's, at HZ 250. */
const volatile __u32 xdpr_ct_tcp_timeout_ms = 432000U * 1000U;
const volatile __u32 xdpr_ct_udp_timeout_ms = 120U * 1000U;
const volatile __u32 xdpr_ct_tcp_refresh_jiffies = 15U * 250U;
const volatile __u32 xdpr_ct_udp_refresh_jiffies = 15U * 250U;
/* How long (jiffies) a CPU reuses a "forward" verdict of the gate from
 * xdpr_ct_cache: the loader sets 10 ms rounded up to whole jiffies. This is
 * the bound by which a deleted or changed conntrack entry can outlive
 * itself in XDP on that CPU; 0 turns the cache off. */
const volatile __u32 xdpr_ct_cache_jiffies = 3;

/* struct bpf_ct_opts as the kernel takes it (NF_BPF_CT_OPTS_SZ, 12). */
struct xdpr_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 reserved[3];
};

/* The fields of the kernel's struct nf_conn the gate reads, relocated by
 * CO-RE against the running kernel's BTF (the ___xdpr suffix is dropped
 * when matching), so no vmlinux.h is needed. The kfuncs are declared with
 * it: their types are checked against the kernel's, which a forward
 * declaration would not match. */
struct ip_ct_tcp___xdpr {
	__u8 state;
} __attribute__((preserve_access_index));

union nf_conntrack_proto___xdpr {
	struct ip_ct_tcp___xdpr tcp;
} __attribute__((preserve_access_index));

/* enum ip_conntrack_dir is the kernel's, not UAPI. */
#define XDPR_CT_DIR_ORIGINAL 0
#define XDPR_CT_DIR_REPLY 1

/* The tuple of one direction (struct nf_conntrack_tuple): the IPv4
 * address and the port of each end. NAT44 in XDP reads the translation
 * conntrack chose from them, as the kernel's flowtable does. */
union nf_inet_addr___xdpr {
	__be32 ip;
} __attribute__((preserve_access_index));

union nf_conntrack_man_proto___xdpr {
	__be16 all;
} __attribute__((preserve_access_index));

struct nf_conntrack_man___xdpr {
	union nf_inet_addr___xdpr u3;
	union nf_conntrack_man_proto___xdpr u;
} __attribute__((preserve_access_index));

struct nf_conntrack_tuple___xdpr {
	struct nf_conntrack_man___xdpr src;
	struct {
		union nf_inet_addr___xdpr u3;
		union {
			__be16 all;
		} u;
	} dst;
} __attribute__((preserve_access_index));

struct nf_conntrack_tuple_hash___xdpr {
	struct nf_conntrack_tuple___xdpr tuple;
} __attribute__((preserve_access_index));

struct nf_conn___xdpr {
	unsigned long status;
	__u32 timeout;
	union nf_conntrack_proto___xdpr proto;
	struct nf_conntrack_tuple_hash___xdpr tuplehash[2];
} __attribute__((preserve_access_index));

extern struct nf_conn___xdpr *bpf_xdp_ct_lookup(struct xdp_md *xdp_ctx, struct bpf_sock_tuple *bpf_tuple,
						__u32 tuple__sz, struct xdpr_ct_opts *opts,
						__u32 opts__sz) __ksym __weak;
extern void bpf_ct_release(struct nf_conn___xdpr *ct) __ksym __weak;
extern int bpf_ct_change_timeout(struct nf_conn___xdpr *nfct, __u32 timeout) __ksym __weak;

#define XDPR_TCP_FIN 0x01
#define XDPR_TCP_SYN 0x02
#define XDPR_TCP_RST 0x04

/* ct_event counts an event (not a packet) in the slots of xdpr_counters
 * behind the packet counters. */
static __always_inline void ct_event_in(__u32 ev, __u32 *k)
{
	struct xdpr_counter_val *v;

	*k = XDPR_EV_BASE + ev;
	v = bpf_map_lookup_elem(&xdpr_counters, k);
	if (v)
		v->packets++;
}

static __always_inline void ct_event(__u32 ev)
{
	__u32 k;

	ct_event_in(ev, &k);
}

/* ct_l4 checks the transport header at l4 (up to the packet's end pend and
 * the frame's end): TCP or UDP with its ports, and for TCP no SYN, FIN or
 * RST. It returns 0 and copies the ports to *ports, or the pass reason
 * (for a SYN, FIN or RST the ports are copied too: ct_forget needs them). */
static __always_inline __u32 ct_l4(__u8 proto, void *l4, void *pend, void *end, __be32 *ports)
{
	__u8 *h = l4;

	if (proto == IPPROTO_TCP) {
		/* The whole fixed header: what conntrack would call
		 * INVALID is the kernel's to judge. */
		if (unlikely(h + 20 > (__u8 *)end || h + 20 > (__u8 *)pend))
			return XDPR_CNT_PASS_TRUNCATED;
		*ports = *(__be32 *)(void *)h;
		if (unlikely(h[13] & (XDPR_TCP_FIN | XDPR_TCP_SYN | XDPR_TCP_RST)))
			return XDPR_CNT_PASS_CT_TCP_FLAGS;
		return 0;
	} else if (likely(proto == IPPROTO_UDP)) {
		if (unlikely(h + 8 > (__u8 *)end || h + 8 > (__u8 *)pend))
			return XDPR_CNT_PASS_TRUNCATED;
	} else {
		/* ICMP and everything else: bpf_xdp_ct_lookup looks up
		 * TCP and UDP only, and ICMP errors are RELATED to flows
		 * only the kernel can match. */
		return XDPR_CNT_PASS_CT_PROTO;
	}
	*ports = *(__be32 *)(void *)h;
	return 0;
}

/* What NAT44 in XDP must do to a packet of a NATed flow: which side of it
 * conntrack translates, and the packet's addresses and ports after the
 * translation. */
enum xdpr_ct_nat_kind {
	XDPR_CT_NAT_NONE = 0,
	/* The source becomes the NAT address: the original direction of a
	 * SNAT entry (LAN -> tunnel), the reply direction of a DNAT entry (a
	 * port forward's answer from the LAN host). Leaves by a tunnel. */
	XDPR_CT_NAT_SRC,
	/* The destination becomes the LAN host's: the reply direction of a
	 * SNAT entry, the original direction of a DNAT entry. Arrives by a
	 * tunnel. */
	XDPR_CT_NAT_DST,
};

struct xdpr_ct_nat {
	__be32 saddr, daddr; /* after the translation */
	__be32 ports;        /* source and destination port after it, as in the header */
	__u32 kind;          /* enum xdpr_ct_nat_kind */
};

/* The gate's per-CPU cache. bpf_xdp_ct_lookup (hash, refcount, release)
 * costs about 100 ns here, a third of the whole IPv6 forward path; a flow
 * at line rate asks the same question millions of times a second. So each
 * CPU keeps its recent "forward" verdicts, with the NAT to apply, in a
 * small direct-mapped table keyed by the tuple, and reuses one for at most
 * xdpr_ct_cache_jiffies. Only "forward" is cached: every other verdict is
 * asked again, so a flow becomes fast as soon as conntrack establishes it.
 * A SYN, FIN or RST (which always goes to the kernel) clears the slots of
 * both directions of its flow on its CPU, so a closing flow leaves the fast
 * path at once there; elsewhere within the bound. */
#define XDPR_CT_CACHE_SLOT_BITS 6
#define XDPR_CT_CACHE_SLOTS (1 << XDPR_CT_CACHE_SLOT_BITS)
#define XDPR_CT_KEY_WORDS 10 /* bpf_sock_tuple's 9 words for IPv6, then the protocol */

struct xdpr_ct_cache_entry {
	__u64 expires; /* bpf_jiffies64() up to which the verdict holds; 0: empty */
	__u32 key[XDPR_CT_KEY_WORDS];
	struct xdpr_ct_nat nat;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPR_CT_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct xdpr_ct_cache_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_ct_cache SEC(".maps");

/* Where the gate keeps its work when the caller's stack has no room for
 * it, in map memory (vxlan.h): the tuple and the lookup's options. ct_gate_ipv4 and ct_gate_ipv6 keep theirs on the stack. */
struct xdpr_ct_work {
	struct bpf_sock_tuple t;
	struct xdpr_ct_opts opts;
	__u32 slot;   /* map keys: the cache slot, the event counter */
	__u32 ev;
	__be32 ports; /* ct_l4's */
};

/* The cache key of a tuple t of tlen bytes (12 for IPv4, 36 for IPv6) and
 * its protocol: the tuple's words, zero behind them, the protocol last.
 * Read from t word by word where it is needed rather than copied into an
 * array: a copy is held across the helper calls of ct_verdict, in
 * registers spilled to the stack (loader/stack_test.go). */
static __always_inline __u32 ct_key_word(const struct bpf_sock_tuple *t, __u32 tlen, __u8 proto, int i)
{
	const __u32 *w = (const __u32 *)(const void *)t;

	if (i == XDPR_CT_KEY_WORDS - 1)
		return proto;
	return i * 4 < tlen ? w[i] : 0;
}

/* Odd multipliers of ct_slot, one per key word (random). */
static const __u32 ct_slot_mul[XDPR_CT_KEY_WORDS] = {
	0x9e3779b1U, 0x85ebca77U, 0xc2b2ae3dU, 0x27d4eb2fU, 0x165667b1U,
	0xd3a2646dU, 0xfd7046c5U, 0xb55a4f09U, 0x61c88647U, 0x7feb352dU,
};

/* ct_slot is the cache slot of the key: the top bits of the sum of its
 * words times a multiplier of each (multilinear hashing), into which
 * every bit of every word carries. The products are independent of each
 * other, so the CPU computes them side by side, where a chain of
 * multiply-xor rounds waited for each product before starting the next
 * (some 40 cycles, half the cost of a cache hit); and the zero words of
 * an IPv4 tuple drop out at compile time. The words of the source and
 * the destination have different multipliers, so the two directions of
 * a flow, even with equal ports, hash apart (and take one slot only by
 * chance, as any two flows may). */
static __always_inline __u32 ct_slot(const struct bpf_sock_tuple *t, __u32 tlen, __u8 proto)
{
	__u32 h = 0;

#pragma unroll
	for (int i = 0; i < XDPR_CT_KEY_WORDS; i++)
		h += ct_key_word(t, tlen, proto, i) * ct_slot_mul[i];
	return h >> (32 - XDPR_CT_CACHE_SLOT_BITS);
}

static __always_inline int ct_key_eq(const __u32 *key, const struct bpf_sock_tuple *t, __u32 tlen, __u8 proto)
{
	__u32 d = 0;

#pragma unroll
	for (int i = 0; i < XDPR_CT_KEY_WORDS; i++)
		d |= key[i] ^ ct_key_word(t, tlen, proto, i);
	return d == 0;
}

static __always_inline void ct_key_set(__u32 *key, const struct bpf_sock_tuple *t, __u32 tlen, __u8 proto)
{
#pragma unroll
	for (int i = 0; i < XDPR_CT_KEY_WORDS; i++)
		key[i] = ct_key_word(t, tlen, proto, i);
}

/* CT_TUPLE_IS says whether the IPv4 tuple t is the entry's tuple of
 * direction dir. A macro: dir must be a constant where clang sees the
 * index, or the element's offset is computed from the local struct's size
 * instead of being relocated (CO-RE) to the kernel's. */
#define CT_TUPLE_IS(ct, dir, t)                                         \
	((ct)->tuplehash[dir].tuple.src.u3.ip == (t)->ipv4.saddr &&     \
	 (ct)->tuplehash[dir].tuple.dst.u3.ip == (t)->ipv4.daddr &&     \
	 (ct)->tuplehash[dir].tuple.src.u.all == (t)->ipv4.sport &&     \
	 (ct)->tuplehash[dir].tuple.dst.u.all == (t)->ipv4.dport)

/* ct_nat_read reads the translation of a NATed entry for the packet whose
 * tuple t was looked up, as the kernel's flowtable applies it
 * (nf_flow_snat_ip, nf_flow_dnat_ip and their port twins): a packet
 * leaves translated into the inverse of the other direction's tuple, so
 * its source becomes that tuple's destination and its destination that
 * tuple's source. It returns 0, or XDPR_CNT_PASS_CT_NAT for what this path
 * does not carry: both SNAT and DNAT on one entry, or a tuple that is
 * neither direction's (cannot happen for a found entry). */
static __always_inline __u32 ct_nat_read(struct nf_conn___xdpr *ct, unsigned long status,
					 const struct bpf_sock_tuple *t, struct xdpr_ct_nat *nat)
{
	unsigned long which = status & (IPS_SRC_NAT | IPS_DST_NAT);
	__be16 sp = t->ipv4.sport, dp = t->ipv4.dport;
	int orig;

	if (which == (IPS_SRC_NAT | IPS_DST_NAT))
		return XDPR_CNT_PASS_CT_NAT;
	/* Each field is read where it is compared or copied, not all up
	 * front: eight values held at once were spilled to the stack. */
	if (CT_TUPLE_IS(ct, XDPR_CT_DIR_ORIGINAL, t)) {
		orig = 1;
		nat->saddr = ct->tuplehash[XDPR_CT_DIR_REPLY].tuple.dst.u3.ip;
		nat->daddr = ct->tuplehash[XDPR_CT_DIR_REPLY].tuple.src.u3.ip;
		sp = ct->tuplehash[XDPR_CT_DIR_REPLY].tuple.dst.u.all;
		dp = ct->tuplehash[XDPR_CT_DIR_REPLY].tuple.src.u.all;
	} else if (CT_TUPLE_IS(ct, XDPR_CT_DIR_REPLY, t)) {
		orig = 0;
		nat->saddr = ct->tuplehash[XDPR_CT_DIR_ORIGINAL].tuple.dst.u3.ip;
		nat->daddr = ct->tuplehash[XDPR_CT_DIR_ORIGINAL].tuple.src.u3.ip;
		sp = ct->tuplehash[XDPR_CT_DIR_ORIGINAL].tuple.dst.u.all;
		dp = ct->tuplehash[XDPR_CT_DIR_ORIGINAL].tuple.src.u.all;
	} else {
		return XDPR_CNT_PASS_CT_NAT;
	}
	nat->kind = orig == (which == IPS_SRC_NAT) ? XDPR_CT_NAT_SRC : XDPR_CT_NAT_DST;
	/* One side only: the other is the packet's own. */
	if (nat->kind == XDPR_CT_NAT_SRC ? nat->daddr != t->ipv4.daddr || dp != t->ipv4.dport
					 : nat->saddr != t->ipv4.saddr || sp != t->ipv4.sport)
		return XDPR_CNT_PASS_CT_NAT;
	nat->ports = ((__u32)dp << 16) | sp;
	return 0;
}

/* ct_verdict looks the tuple up and says whether the flow may be forwarded
 * in XDP: 0, or the reason to pass. The reference is always released. With
 * nat (IPv4 only), an entry carrying SNAT or DNAT is accepted too, and
 * nat says how to translate; its kind stays NONE for an entry without NAT.
 * Without nat, NAT is a reason to pass. */
static __always_inline __u32 ct_verdict_in(struct xdp_md *ctx, struct bpf_sock_tuple *t, __u32 tlen,
					   __u8 proto, struct xdpr_ct_nat *nat, struct xdpr_ct_opts *opts,
					   struct xdpr_ct_work *w)
{
	struct xdpr_ct_cache_entry *c = NULL;
	struct nf_conn___xdpr *ct;
	unsigned long status;
	__u32 reason = 0;
	__u64 now = 0;

	/* A kernel without the kfuncs (compat.h): netfilter decides. */
	if (!xdpr_ct_kfuncs)
		return XDPR_CNT_PASS_CT_NEW;
	if (xdpr_ct_cache_jiffies) {
		__u32 slot = ct_slot(t, tlen, proto);

		if (w) {
			w->slot = slot;
			c = bpf_map_lookup_elem(&xdpr_ct_cache, &w->slot);
		} else {
			c = bpf_map_lookup_elem(&xdpr_ct_cache, &slot);
		}
		now = bpf_jiffies64();
		if (c && now < c->expires && ct_key_eq(c->key, t, tlen, proto)) {
			/* Only forward verdicts are cached; without nat, only
			 * those without NAT. */
			if (nat)
				*nat = c->nat;
			if (w)
				ct_event_in(XDPR_EV_CT_CACHE_HIT, &w->ev);
			else
				ct_event(XDPR_EV_CT_CACHE_HIT);
			return 0;
		}
	}
	*opts = (struct xdpr_ct_opts){ .netns_id = -1, .l4proto = proto };
	ct = bpf_xdp_ct_lookup(ctx, t, tlen, opts, sizeof(*opts));
	/* No entry (-ENOENT) or any error: conntrack has not accepted the
	 * flow, as far as the gate can tell. The hash holds confirmed
	 * entries only, so what is found has passed the whole ruleset once. */
	if (!ct)
		return XDPR_CNT_PASS_CT_NEW;
	status = ct->status;
	if (unlikely(status & IPS_DYING))
		reason = XDPR_CNT_PASS_CT_DYING;
	else if (unlikely((status & (IPS_CONFIRMED | IPS_SEEN_REPLY)) != (IPS_CONFIRMED | IPS_SEEN_REPLY)))
		reason = XDPR_CNT_PASS_CT_UNREPLIED;
	else if (unlikely(status & (IPS_HELPER | IPS_SEQ_ADJUST)))
		/* A helper must see the payload (FTP, SIP...). */
		reason = XDPR_CNT_PASS_CT_HELPER;
	else if (proto == IPPROTO_TCP && unlikely(ct->proto.tcp.state != TCP_CONNTRACK_ESTABLISHED))
		/* Handshake not finished in conntrack's view, or closing:
		 * the kernel sees every packet until ESTABLISHED, and all
		 * of them after a FIN. */
		reason = XDPR_CNT_PASS_CT_TCP_STATE;
	else if (unlikely(status & (IPS_SRC_NAT | IPS_DST_NAT)))
		/* A NATed flow is never forwarded without its translation:
		 * read it, or pass. */
		reason = nat ? ct_nat_read(ct, status, t, nat) : XDPR_CNT_PASS_CT_NAT;
	if (likely(!reason)) {
		__u32 refresh = proto == IPPROTO_TCP ? xdpr_ct_tcp_refresh_jiffies : xdpr_ct_udp_refresh_jiffies;
		__s32 left = (__s32)(ct->timeout - (__u32)bpf_jiffies64());

		if (unlikely(left < (__s32)refresh)) {
			bpf_ct_change_timeout(ct, proto == IPPROTO_TCP ? xdpr_ct_tcp_timeout_ms
								: xdpr_ct_udp_timeout_ms);
			if (w)
				ct_event_in(XDPR_EV_CT_REFRESH, &w->ev);
			else
				ct_event(XDPR_EV_CT_REFRESH);
		}
		if (c) {
			ct_key_set(c->key, t, tlen, proto);
			if (nat)
				c->nat = *nat;
			else
				__builtin_memset(&c->nat, 0, sizeof(c->nat));
			c->expires = now + xdpr_ct_cache_jiffies;
		}
	}
	bpf_ct_release(ct);
	return reason;
}

static __always_inline __u32 ct_verdict(struct xdp_md *ctx, struct bpf_sock_tuple *t, __u32 tlen,
					__u8 proto, struct xdpr_ct_nat *nat)
{
	struct xdpr_ct_opts opts;

	return ct_verdict_in(ctx, t, tlen, proto, nat, &opts, NULL);
}

/* ct_forget clears this CPU's cached verdicts of both directions of the
 * flow whose tuple t is (a SYN, FIN or RST of it is on its way to the
 * kernel). */
static __always_inline void ct_forget_in(struct bpf_sock_tuple *t, __u32 tlen, __u8 proto,
					 __u32 *slot)
{
	struct xdpr_ct_cache_entry *c;

	if (!xdpr_ct_cache_jiffies)
		return;
	for (int dir = 0; dir < 2; dir++) {
		*slot = ct_slot(t, tlen, proto);
		c = bpf_map_lookup_elem(&xdpr_ct_cache, slot);
		if (c && ct_key_eq(c->key, t, tlen, proto))
			c->expires = 0;
		/* The other direction: addresses and ports swapped. */
		if (tlen == sizeof(t->ipv4)) {
			__be32 a = t->ipv4.saddr;
			__be16 p = t->ipv4.sport;

			t->ipv4.saddr = t->ipv4.daddr;
			t->ipv4.daddr = a;
			t->ipv4.sport = t->ipv4.dport;
			t->ipv4.dport = p;
		} else {
			__be16 p = t->ipv6.sport;

			/* Word by word, in registers: a copy of the address
			 * would take stack that vxlan.h's gate does not have. */
#pragma unroll
			for (int i = 0; i < 4; i++) {
				__be32 a = t->ipv6.saddr[i];

				t->ipv6.saddr[i] = t->ipv6.daddr[i];
				t->ipv6.daddr[i] = a;
			}
			t->ipv6.sport = t->ipv6.dport;
			t->ipv6.dport = p;
		}
	}
}

static __always_inline void ct_forget(struct bpf_sock_tuple *t, __u32 tlen, __u8 proto)
{
	__u32 slot;

	ct_forget_in(t, tlen, proto, &slot);
}

/* ct_tuple_ipv4 fills t with the packet's tuple (ports through *pp) and
 * returns ct_l4's verdict: 0, CT_TCP_FLAGS (t filled: the caller forgets
 * the flow) or a reason to pass (t not filled). */
static __always_inline __u32 ct_tuple_ipv4(struct iphdr *iph, void *pend, void *end, struct bpf_sock_tuple *t,
					   __be32 *pp)
{
	__u32 reason = ct_l4(iph->protocol, iph + 1, pend, end, pp);

	if (unlikely(reason && reason != XDPR_CNT_PASS_CT_TCP_FLAGS))
		return reason;
	t->ipv4.saddr = iph->saddr;
	t->ipv4.daddr = iph->daddr;
	*(__be32 *)(void *)&t->ipv4.sport = *pp;
	return reason;
}

/* ct_gate_ipv4 is the gate for an option-less, unfragmented IPv4 packet
 * wholly in the frame (pend: where its tot_len ends). nat receives the
 * translation of a NATed flow (ct_verdict). The gates are out of line:
 * the tuple, the lookup's options and what ct_verdict holds across its
 * helper calls take a frame of their own, not a share of the forward
 * path's or of tunnel_decap's (every frame of a call chain adds up on
 * 6.1: loader/stack_test.go). */
static __noinline __u32 ct_gate_ipv4(struct xdp_md *ctx, struct iphdr *iph, void *pend, void *end,
				     struct xdpr_ct_nat *nat)
{
	/* The IPv4 member of struct bpf_sock_tuple only: the union is 36
	 * octets, and only these 12 are ever read (tuple__sz). Written as
	 * words, which alias whatever reads them. */
	__u32 t4[3];
	struct bpf_sock_tuple *t = (void *)t4;
	__be32 ports;
	__u32 reason = ct_l4(iph->protocol, iph + 1, pend, end, &ports);

	if (unlikely(reason && reason != XDPR_CNT_PASS_CT_TCP_FLAGS))
		return reason;
	t4[0] = iph->saddr;
	t4[1] = iph->daddr;
	t4[2] = ports;
	if (unlikely(reason)) {
		ct_forget(t, sizeof(t->ipv4), iph->protocol);
		return reason;
	}
	return ct_verdict(ctx, t, sizeof(t->ipv4), iph->protocol, nat);
}

/* ct_tuple_ipv6 is ct_tuple_ipv4 for IPv6, with daddr as conntrack sees
 * it. */
static __always_inline __u32 ct_tuple_ipv6(struct ipv6hdr *ip6, const struct in6_addr *daddr, void *pend,
					   void *end, struct bpf_sock_tuple *t, __be32 *pp)
{
	__u32 reason = ct_l4(ip6->nexthdr, ip6 + 1, pend, end, pp);

	if (unlikely(reason && reason != XDPR_CNT_PASS_CT_TCP_FLAGS))
		return reason;
	__builtin_memcpy(t->ipv6.saddr, &ip6->saddr, 16);
	__builtin_memcpy(t->ipv6.daddr, daddr, 16);
	*(__be32 *)(void *)&t->ipv6.sport = *pp;
	return reason;
}

/* ct_gate_ipv6 is the gate for an IPv6 packet whose transport header
 * follows the fixed header (anything else is ct_l4's PASS_CT_PROTO), with
 * daddr as conntrack sees it (after DNPT). */
static __noinline __u32 ct_gate_ipv6(struct xdp_md *ctx, struct ipv6hdr *ip6,
				     const struct in6_addr *daddr, void *pend, void *end)
{
	struct bpf_sock_tuple t;
	__be32 ports;
	__u32 reason = ct_tuple_ipv6(ip6, daddr, pend, end, &t, &ports);

	if (unlikely(reason)) {
		if (reason == XDPR_CNT_PASS_CT_TCP_FLAGS)
			ct_forget(&t, sizeof(t.ipv6), ip6->nexthdr);
		return reason;
	}
	return ct_verdict(ctx, &t, sizeof(t.ipv6), ip6->nexthdr, NULL);
}

#endif
