/* Maps shared by all attached interfaces. Pinned by name under the bpffs
 * directory chosen by the loader, so every program instance and every
 * xdprouter command sees the same state. */
#ifndef XDPR_MAPS_H
#define XDPR_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "structs.h"
#include "compiler.h"

/* One counter per enum xdpr_counter (each packet in exactly one), then one
 * per enum xdpr_event. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPR_COUNTER_SLOTS);
	__type(key, __u32); /* enum xdpr_counter, XDPR_EV_BASE + enum xdpr_event */
	__type(value, struct xdpr_counter_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPR_MAX_IFACES);
	__type(key, __u32); /* ifindex */
	__type(value, struct xdpr_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_ifaces SEC(".maps");

/* Egress ports for bpf_redirect_map: only attached interfaces are here, so a
 * route out of an interface xdprouter does not manage falls back to the
 * kernel. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, XDPR_MAX_IFACES);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* ifindex */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_tx_ports SEC(".maps");

/* The ports of xdpr_tx_ports whose driver transmits multi-buffer XDP frames
 * (NETDEV_XDP_ACT_NDO_XMIT_SG; the loader fills it). A frame larger than
 * one buffer (a jumbo frame) is redirected through this map only: the
 * kernel drops a multi-buffer frame redirected to a device that cannot
 * send it, where the kernel's own forwarding would have sent it. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, XDPR_MAX_IFACES);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* ifindex */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_tx_ports_mb SEC(".maps");

/* NPT, looked up by (outside ifindex, address). npt_out holds the
 * outside->inside direction (DNPT, keyed by the outside prefix), npt_in the
 * inside->outside one (SNPT, keyed by the inside prefix). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XDPR_MAX_NPT_RULES);
	__type(key, struct xdpr_lpm6_key);
	__type(value, struct xdpr_npt_rule);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_npt_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XDPR_MAX_NPT_RULES);
	__type(key, struct xdpr_lpm6_key);
	__type(value, struct xdpr_npt_rule);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_npt_in SEC(".maps");

/* The /64 rules of xdpr_npt_out and xdpr_npt_in again, by (ifindex, upper
 * 64 bits), for the per-packet lookups of the XDP forward path (npt_lookup).
 * The tries stay complete: the TC slow path, the NDP proxy and decap's
 * endpoint check use them, and the loader rebuilds these from them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPR_MAX_NPT_RULES);
	__type(key, struct xdpr_npt64_key);
	__type(value, struct xdpr_npt_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_npt64_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPR_MAX_NPT_RULES);
	__type(key, struct xdpr_npt64_key);
	__type(value, struct xdpr_npt_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_npt64_in SEC(".maps");

/* Prefixes the NDP proxy answers for, by (ingress ifindex, target). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XDPR_MAX_NDP_PREFIXES);
	__type(key, struct xdpr_lpm6_key);
	__type(value, struct xdpr_ndp_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_ndp_proxy SEC(".maps");

/* Addresses inside proxied prefixes that other nodes on the link hold (the
 * WAN routers' global addresses, from Router Advertisements), by (ingress
 * ifindex, address) with prefixlen 32 + 128: exact matches, so a hash. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPR_MAX_NDP_FOREIGN);
	__type(key, struct xdpr_lpm6_key);
	__type(value, struct xdpr_ndp_foreign_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_ndp_foreign SEC(".maps");

/* One entry: which optional features have anything configured (enum
 * xdpr_feature_bit), and the generation of the cached lookups. An array
 * lookup the verifier inlines, read for ICMPv6 (the NDP proxy) and on ports
 * with a role (NPT, decapsulation), spares a router without NPT rules or
 * proxied prefixes the LPM lookups (a trie lookup that misses still costs a
 * helper call, ~20 ns). Global, not per port, because the SNPT lookup
 * depends on the egress. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpr_feature_word);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_features SEC(".maps");

/* features returns the feature bits, with the NPT generation in the upper
 * 32 bits. */
static __always_inline __u64 features(void)
{
	__u32 k = 0;
	struct xdpr_feature_word *f = bpf_map_lookup_elem(&xdpr_features, &k);

	return f ? ((__u64)f->gen << 32) | f->flags : 0;
}

/* Indexes of xdpr_npt_cache. */
#define XDPR_NPT_CACHE_SNPT 0
#define XDPR_NPT_CACHE_DNPT 1

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32); /* XDPR_NPT_CACHE_SNPT or XDPR_NPT_CACHE_DNPT */
	__type(value, struct xdpr_npt_cache_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_npt_cache SEC(".maps");

/* Counters of the TC slow path (enum xdpr_tc_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPR_TC_COUNTER_SLOTS);
	__type(key, __u32); /* enum xdpr_tc_counter */
	__type(value, struct xdpr_counter_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_tc_counters SEC(".maps");

/* counter_add records one packet of len octets under c in the per-CPU
 * counter map m (xdpr_counters or xdpr_tc_counters) and returns action. */
static __always_inline int counter_add(void *m, __u32 c, __u64 len, int action)
{
	struct xdpr_counter_val *v = bpf_map_lookup_elem(m, &c);

	if (likely(v)) {
		v->packets++;
		v->bytes += len;
	}
	return action;
}

/* tc_count records one slow-path packet of len octets under c. */
static __always_inline int tc_count(__u32 c, __u64 len, int action)
{
	return counter_add(&xdpr_tc_counters, c, len, action);
}

/* lpm6_lookup finds the entry of map m covering addr on ifindex. */
static __always_inline void *lpm6_lookup(void *m, __u32 ifindex, const void *addr)
{
	struct xdpr_lpm6_key k = { .prefixlen = 32 + 128, .ifindex = ifindex };

	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(m, &k);
}

/* npt_lookup_maps finds the NPT rule for addr on ifindex, as lpm6_lookup on
 * trie would: in the /64 map first when it holds rules, then in the trie
 * only when that holds rules the /64 map lacks. */
static __always_inline struct xdpr_npt_rule *npt_lookup_maps(void *m64, void *trie, __u32 ifindex,
							     const struct in6_addr *addr, __u64 feat)
{
	if (feat & XDPR_F_NPT64) {
		struct xdpr_npt64_key k = { .ifindex = ifindex };
		struct xdpr_npt_rule *r;

		__builtin_memcpy(k.prefix, addr, 8);
		r = bpf_map_lookup_elem(m64, &k);
		if (r)
			return r;
	}
	if (feat & XDPR_F_NPT_TRIE)
		return lpm6_lookup(trie, ifindex, addr);
	return NULL;
}

/* npt_lookup is npt_lookup_maps through this CPU's cache entry slot of
 * xdpr_npt_cache: a repeat of the last key of the same map generation is
 * answered from the copy, found or not. */
static __always_inline struct xdpr_npt_rule *npt_lookup(void *m64, void *trie, __u32 slot, __u32 ifindex,
							const struct in6_addr *addr, __u64 feat)
{
	struct xdpr_npt_cache_entry *c = bpf_map_lookup_elem(&xdpr_npt_cache, &slot);
	const __u32 *k = (const __u32 *)(const void *)addr->s6_addr32;
	__u32 gen = feat >> 32;
	struct xdpr_npt_rule *r;

	if (!c)
		return npt_lookup_maps(m64, trie, ifindex, addr, feat);
	if (c->gen == gen && c->key.ifindex == ifindex &&
	    *(__u32 *)(void *)&c->key.prefix[0] == k[0] && *(__u32 *)(void *)&c->key.prefix[4] == k[1])
		return c->found ? &c->rule : NULL;
	r = npt_lookup_maps(m64, trie, ifindex, addr, feat);
	c->gen = gen;
	c->key.ifindex = ifindex;
	*(__u32 *)(void *)&c->key.prefix[0] = k[0];
	*(__u32 *)(void *)&c->key.prefix[4] = k[1];
	c->found = r != NULL;
	if (!r)
		return NULL;
	c->rule = *r;
	return &c->rule;
}

/* count_len records one packet of len bytes under reason c and returns
 * action. The forward paths give the length from the pointers they hold,
 * so the context need not be kept across the fib lookup for it. */
static __always_inline int count_len(__u32 c, __u64 len, int action)
{
	return counter_add(&xdpr_counters, c, len, action);
}

/* count records one packet under reason c and returns action, so call sites
 * read as `return count(ctx, REASON, XDP_PASS);`. */
static __always_inline int count(struct xdp_md *ctx, __u32 c, int action)
{
	/* The whole frame: data_end - data is only the first buffer of a
	 * multi-buffer one. A helper call, but count serves the passes, drops
	 * and NDP answers, not the forward path. */
	return count_len(c, bpf_xdp_get_buff_len(ctx), action);
}

/* port_tx_path is how frames reach the wire through the attached port
 * ifindex (enum xdpr_tx_path). Read only where XDP is about to answer a
 * packet or a redirect missed, never per forwarded packet. */
static __always_inline __u8 port_tx_path(__u32 ifindex)
{
	struct xdpr_iface *e = bpf_map_lookup_elem(&xdpr_ifaces, &ifindex);

	return e ? e->tx_path : XDPR_TX_XDP;
}

/* pass hands the packet to the kernel under reason. One out-of-line copy
 * serves all ~30 pass sites: inlined, they made the program five times the
 * size of a bare forwarder and crowded the forward path out of the I-cache. */
static __noinline int pass(struct xdp_md *ctx, __u32 reason)
{
	return count(ctx, reason, XDP_PASS);
}

#endif
