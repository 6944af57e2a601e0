/* ipip6 tunnel state: the tunnel table, the decapsulation index and the
 * ICMP rate limiter. The loader fills them (loader/tunnels.go) and exports
 * the structs to Go with bpf2go -type. */
#ifndef XDPR_TUNNEL_MAPS_H
#define XDPR_TUNNEL_MAPS_H

#include <linux/types.h>
#include <linux/in6.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "consts.h"
#include "maps.h"
#include "ip.h"

/* One ipip6 tunnel, keyed by the ifindex of its netdev. The netdev carries
 * the kernel's IPv4 routes into the tunnel, so bpf_fib_lookup naming it as
 * the egress is what selects the tunnel: the fast path and the slow path
 * read the same routing table. */
struct xdpr_tunnel {
	struct in6_addr local;  /* outer source; rewritten when the WAN prefix changes */
	struct in6_addr remote; /* outer destination: AFTR or site-to-site peer */
	__u32 ifindex;          /* the tunnel netdev */
	__u16 mtu;              /* largest inner IPv4 packet */
	__u8 hop_limit;         /* outer hop limit */
	__u8 flags;             /* enum xdpr_tunnel_flag */
	__u8 dev_mac[6];        /* the netdev's MAC: TC delivers decapsulated frames to it */
	__u8 mode;              /* enum xdpr_tunnel_mode; 6in4: local and remote IPv4-mapped, hop_limit the outer TTL */
	__u8 pad;
	__u32 slot;             /* index into xdpr_tun_nexthops, < XDPR_MAX_TUNNELS */
	char name[16];          /* for humans reading bpftool */
	/* The fixed IPv4 (ipv4-address) LAN IPv4 is masqueraded to, with
	 * XDPR_TUN_F_NAT44; else 0. Only a conntrack translation to this
	 * address is applied in XDP on the way into this tunnel. */
	__be32 nat44_addr;
};

/* Give the flag and mode enums a place in BTF, from where bpf2go emits them
 * for Go. */
const enum xdpr_tunnel_flag xdpr_tunnel_flag_names __attribute__((unused));
const enum xdpr_tunnel_mode xdpr_tunnel_mode_names __attribute__((unused));

/* Decapsulation key: only (outer source, outer destination) pairs that are
 * a configured (remote, local) are decapsulated. */
struct xdpr_tunnel_ep {
	struct in6_addr remote;
	struct in6_addr local;
};

/* Per-CPU token bucket for generated ICMP errors, in nanoseconds of credit
 * so no division is needed per packet. */
struct xdpr_token_bucket {
	__u64 credit_ns;
	__u64 last_ns;
};

/* The outer next hop of a tunnel, as the last route lookup found it: an
 * IPv6 fib lookup costs more than the rest of the encapsulation together,
 * and the outer route is the same for every packet of a tunnel. Refreshed
 * every tun_nexthop_ttl_ns and dropped by the loader whenever the tunnel
 * changes. */
struct xdpr_tun_nexthop {
	__u64 expires_ns;
	/* The jiffy of the last expiry check: the clock is read once per
	 * jiffy, not per packet (bpf_ktime_get_ns cost ~60 ns here, a fifth of
	 * the encapsulation; jiffies is one inlined load). */
	__u64 checked_jiffies;
	__u32 ifindex;   /* egress port */
	__u16 mtu;       /* its MTU, from the lookup */
	__u8 dmac[6];
	__u8 smac[6];
	__u8 pad[2];
};

/* An array, indexed by the tunnel's slot: its lookup is inlined, where a
 * hash lookup would cost a good part of what the cache saves. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPR_MAX_TUNNELS);
	__type(key, __u32); /* struct xdpr_tunnel.slot */
	__type(value, struct xdpr_tun_nexthop);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_tun_nexthops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPR_MAX_TUNNELS);
	__type(key, __u32); /* ifindex of the tunnel netdev */
	__type(value, struct xdpr_tunnel);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_tunnels SEC(".maps");

/* xdpr_tunnels again, indexed by the netdev's ifindex for ifindexes below
 * XDPR_TUN_INDEX_MAX: the verifier inlines an array lookup, where the hash
 * lookup on every encapsulated packet cost some 35 of the encapsulation's
 * 255 ns.
 * An entry whose ifindex is 0 is empty. The loader writes an entry after
 * the hash's and clears it before removing the hash's, so a packet never
 * finds a tunnel here that xdpr_tunnels lacks. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPR_TUN_INDEX_MAX);
	__type(key, __u32); /* ifindex of the tunnel netdev */
	__type(value, struct xdpr_tunnel);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_tun_index SEC(".maps");

/* tunnel_by_dev returns the tunnel whose netdev is ifindex, or NULL. */
static __always_inline struct xdpr_tunnel *tunnel_by_dev(__u32 ifindex)
{
	if (ifindex < XDPR_TUN_INDEX_MAX) {
		struct xdpr_tunnel *t = bpf_map_lookup_elem(&xdpr_tun_index, &ifindex);

		return t && t->ifindex == ifindex ? t : NULL;
	}
	return bpf_map_lookup_elem(&xdpr_tunnels, &ifindex);
}

/* What decapsulation needs of a tunnel, stored under its endpoint key so
 * that the fast path does one hash lookup, not two (the second cost ~8% of
 * a decapsulation). The loader writes it with the tunnel. */
struct xdpr_tunnel_decap {
	__u32 ifindex; /* the tunnel netdev */
	__u16 mtu;     /* struct xdpr_tunnel.mtu: the MSS clamp */
	__u8 pad[2];
	__be32 nat44_addr; /* struct xdpr_tunnel.nat44_addr: translations back from it are applied */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPR_MAX_TUNNELS);
	__type(key, struct xdpr_tunnel_ep);
	__type(value, struct xdpr_tunnel_decap);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_tunnel_eps SEC(".maps");

/* One CPU's last xdpr_tunnel_eps lookup: an AFTR's or a peer's packets all
 * carry the same (remote, local), and 32 octets compared in place cost
 * less than hashing them. Retired, like xdpr_npt_cache, by the generation
 * in xdpr_features, which the loader bumps with every tunnel change. */
struct xdpr_decap_cache_entry {
	struct xdpr_tunnel_ep key;
	__u32 gen;   /* xdpr_feature_word.gen at the lookup */
	__u8 found;  /* val holds the entry found; 0: there was none */
	__u8 pad[3];
	struct xdpr_tunnel_decap val;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpr_decap_cache_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_decap_cache SEC(".maps");

/* tunnel_ep_miss looks ep up after a cache miss and remembers the answer,
 * found or not, in this CPU's cache c (when there is one). */
static __always_inline struct xdpr_tunnel_decap *tunnel_ep_miss(struct xdpr_decap_cache_entry *c,
								const struct xdpr_tunnel_ep *ep, __u32 gen)
{
	struct xdpr_tunnel_decap *t = bpf_map_lookup_elem(&xdpr_tunnel_eps, ep);

	if (!c)
		return t;
	c->key = *ep;
	c->gen = gen;
	c->found = t != NULL;
	if (!t)
		return NULL;
	c->val = *t;
	return &c->val;
}

/* tunnel_ep_lookup returns the decapsulation entry for ipip6 from remote to
 * local (both read from the packet), or NULL, through this CPU's cache. */
static __always_inline struct xdpr_tunnel_decap *tunnel_ep_lookup(const struct in6_addr *remote,
								 const struct in6_addr *local, __u32 gen)
{
	__u32 zero = 0;
	struct xdpr_decap_cache_entry *c = bpf_map_lookup_elem(&xdpr_decap_cache, &zero);
	struct xdpr_tunnel_ep ep;

	if (c && c->gen == gen &&
	    ((c->key.remote.s6_addr32[0] ^ remote->s6_addr32[0]) | (c->key.remote.s6_addr32[1] ^ remote->s6_addr32[1]) |
	     (c->key.remote.s6_addr32[2] ^ remote->s6_addr32[2]) | (c->key.remote.s6_addr32[3] ^ remote->s6_addr32[3]) |
	     (c->key.local.s6_addr32[0] ^ local->s6_addr32[0]) | (c->key.local.s6_addr32[1] ^ local->s6_addr32[1]) |
	     (c->key.local.s6_addr32[2] ^ local->s6_addr32[2]) | (c->key.local.s6_addr32[3] ^ local->s6_addr32[3])) == 0)
		return c->found ? &c->val : NULL;
	ep.remote = *remote;
	ep.local = *local;
	return tunnel_ep_miss(c, &ep, gen);
}

/* tunnel_ep4_lookup is tunnel_ep_lookup for a 6in4 pair, whose key holds
 * the IPv4 addresses mapped (::ffff:a.b.c.d): compared in place against
 * the cache, the key built only on a miss. */
static __always_inline struct xdpr_tunnel_decap *tunnel_ep4_lookup(__be32 remote, __be32 local, __u32 gen)
{
	__u32 zero = 0;
	struct xdpr_decap_cache_entry *c = bpf_map_lookup_elem(&xdpr_decap_cache, &zero);
	struct xdpr_tunnel_ep ep = {};
	__be32 mapped = bpf_htonl(0xffff);

	if (c && c->gen == gen &&
	    (c->key.remote.s6_addr32[0] | c->key.remote.s6_addr32[1] | (c->key.remote.s6_addr32[2] ^ mapped) |
	     (c->key.remote.s6_addr32[3] ^ remote) | c->key.local.s6_addr32[0] | c->key.local.s6_addr32[1] |
	     (c->key.local.s6_addr32[2] ^ mapped) | (c->key.local.s6_addr32[3] ^ local)) == 0)
		return c->found ? &c->val : NULL;
	ep.remote.s6_addr32[2] = mapped;
	ep.remote.s6_addr32[3] = remote;
	ep.local.s6_addr32[2] = mapped;
	ep.local.s6_addr32[3] = local;
	return tunnel_ep_miss(c, &ep, gen);
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpr_token_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_icmp_bucket SEC(".maps");

/* Inner IPv4 sources a tunnel never brings: the router's own addresses and
 * the broadcast addresses of its subnets (the kernel drops such a source
 * as a martian: fib_validate_source) and the LAN subnets (their hosts are
 * behind a LAN port; the kernel's rp_filter drops them in strict mode,
 * and a CPE must whatever the sysctl says). The control plane writes the
 * whole list at once (loader SetTunnelSourceFilter); a packet that reads
 * it during that write may see part of the old list and part of the new. */
struct xdpr_src_net {
	__be32 addr; /* network order, host bits zero */
	__be32 mask; /* network order */
	__u32 kind;  /* enum xdpr_src_kind */
};

struct xdpr_src_filter {
	__u32 count; /* entries in use, the router's own addresses first */
	struct xdpr_src_net nets[XDPR_MAX_SRC_NETS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpr_src_filter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_tun_src_filter SEC(".maps");

/* tun_inner_src_kind says whether an inner IPv4 source (from a configured
 * tunnel) must be dropped: XDPR_SRC_LOCAL for 0/8, 127/8, 224/4 (multicast),
 * 240/4 (class E, with 255.255.255.255) and the router's own addresses,
 * XDPR_SRC_LAN for a LAN subnet, else 0. A short list scanned in order:
 * a home router has a handful of entries, and a compare per entry costs
 * less than a trie walk. */
static __always_inline __u32 tun_inner_src_kind(__be32 saddr)
{
	__u32 zero = 0;
	struct xdpr_src_filter *f;

	/* 1-223 except 127 are the only first octets of a unicast source. */
	if (!ipv4_octet_plain(((__u8 *)&saddr)[0]))
		return XDPR_SRC_LOCAL;
	f = bpf_map_lookup_elem(&xdpr_tun_src_filter, &zero);
	if (!f)
		return 0;
	for (__u32 i = 0; i < XDPR_MAX_SRC_NETS; i++) {
		if (i >= f->count)
			break;
		if ((saddr & f->nets[i].mask) == f->nets[i].addr)
			return f->nets[i].kind;
	}
	return 0;
}

/* The IPv6 flavour for 6in4 tunnels: inner IPv6 sources no tunnel brings,
 * the router's own addresses (XDPR_SRC_LOCAL) and the LAN prefixes
 * (XDPR_SRC_LAN), written whole by the control plane (loader
 * SetTunnelSourceFilter) like the IPv4 list. */
struct xdpr_src6_net {
	struct in6_addr addr; /* host bits zero */
	struct in6_addr mask;
	__u32 kind;           /* enum xdpr_src_kind */
};

struct xdpr_src6_filter {
	__u32 count; /* entries in use, the router's own addresses first */
	struct xdpr_src6_net nets[XDPR_MAX_SRC6_NETS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpr_src6_filter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_tun_src6_filter SEC(".maps");

/* tun_inner_src6_kind is tun_inner_src_kind for an inner IPv6 source:
 * XDPR_SRC_LOCAL for ::, ::1, multicast and the router's own addresses,
 * XDPR_SRC_LAN for a LAN prefix, else 0. Link-local sources are not
 * refused: the tunnel is a link, and they are the kernel's to judge. */
static __always_inline __u32 tun_inner_src6_kind(const struct in6_addr *s)
{
	__u32 zero = 0;
	struct xdpr_src6_filter *f;

	if (s->s6_addr[0] == 0xff || ipv6_is_loopback_or_any(s))
		return XDPR_SRC_LOCAL;
	f = bpf_map_lookup_elem(&xdpr_tun_src6_filter, &zero);
	if (!f)
		return 0;
	for (__u32 i = 0; i < XDPR_MAX_SRC6_NETS; i++) {
		if (i >= f->count)
			break;
		const struct xdpr_src6_net *n = &f->nets[i];
		if (((s->s6_addr32[0] & n->mask.s6_addr32[0]) ^ n->addr.s6_addr32[0]) |
		    ((s->s6_addr32[1] & n->mask.s6_addr32[1]) ^ n->addr.s6_addr32[1]) |
		    ((s->s6_addr32[2] & n->mask.s6_addr32[2]) ^ n->addr.s6_addr32[2]) |
		    ((s->s6_addr32[3] & n->mask.s6_addr32[3]) ^ n->addr.s6_addr32[3]))
			continue;
		return n->kind;
	}
	return 0;
}

/* tun_count is count() for paths that resize the frame: it records the
 * length the packet had when it arrived, like every other counter. */
static __always_inline int tun_count(__u32 c, __u64 rx_len, int action)
{
	struct xdpr_counter_val *v = bpf_map_lookup_elem(&xdpr_counters, &c);

	if (v) {
		v->packets++;
		v->bytes += rx_len;
	}
	return action;
}

#endif
