/* Map value types. Go gets them through bpf2go -type; bpftool prints their
 * field names because the maps carry BTF. */
#ifndef XDPR_STRUCTS_H
#define XDPR_STRUCTS_H

#include <linux/types.h>
#include "consts.h"

struct xdpr_counter_val {
	__u64 packets;
	__u64 bytes;
};

struct xdpr_iface {
	__u32 ifindex;
	enum xdpr_role role;
	enum xdpr_xdp_mode xdp_mode;
	__u8 mac[6];     /* frames to other unicast MACs go to the kernel */
	__u8 ct_gate;    /* enum xdpr_ct_gate the program was loaded with */
	/* 1: this attachment turned nf_conntrack_tcp_be_liberal on, and the
	 * last detach turns it off again. */
	__u8 ct_liberal;
	__u8 tx_path;    /* enum xdpr_tx_path */
	char name[16];   /* name at attach time, for humans reading bpftool */
};

/* Key of the LPM tries below: interface first, so one trie serves every
 * interface; prefixlen counts the 32 ifindex bits plus the prefix bits. */
struct xdpr_lpm6_key {
	__u32 prefixlen;
	__u32 ifindex;
	__u8 addr[16];
};

/* Key of the /64 NPT maps (xdpr_npt64_*): nearly every NPT rule is a /64,
 * and one hash lookup of the address's upper half finds it for less than a
 * trie walk. A /64 is the longest prefix NPT allows, so a hit there is also
 * what the trie would have answered. */
struct xdpr_npt64_key {
	__u32 ifindex;
	__u8 prefix[8];
};

/* One direction of an NPT mapping: addresses in `from` get `to` as prefix.
 * The loader stores each configured rule twice, once per direction. */
struct xdpr_npt_rule {
	__u8 from[16];        /* prefix matched (host bits zero) */
	__u8 to[16];          /* prefix written (host bits zero) */
	__u32 ifindex;        /* outside interface */
	__u8 prefix_len;      /* same for from and to, 1..64 */
	__u8 mode;            /* enum xdpr_npt_mode */
	/* One's complement sum(from) - sum(to) in host order, added to the
	 * adjustment word (RFC 6296 3.2); preserve-host adds its negation to
	 * L4 checksums. Computed by the loader like ip6t_NPT's checkentry. */
	__u16 adjustment;
	/* The router's own address in the outside prefix (WAN prefix + token,
	 * also the tunnels' local address), valid when has_exclude: never a
	 * DNPT destination nor an SNPT result, since the kernel owns it. Both
	 * directions store the outside address. */
	__u8 exclude[16];
	__u8 has_exclude;
	__u8 pad[3];
	/* The prefix as a mask over the first 64 bits (network order), from
	 * the loader: the per-packet path needs no mask arithmetic. */
	__u8 mask[8];
};

struct xdpr_feature_word {
	__u32 flags; /* enum xdpr_feature_bit bits */
	/* Bumped by the loader after every change of the NPT maps or of the
	 * tunnels: a CPU's cached lookup (xdpr_npt_cache, xdpr_decap_cache)
	 * of another generation is not used. */
	__u32 gen;
};

/* One CPU's last NPT rule lookup in one direction: its key (the interface
 * and the address's upper 64 bits, all a rule of at most /64 can depend
 * on), its answer, and the generation of the maps it was read from. A home
 * router's traffic comes from one or two /64s, so nearly every packet is
 * answered here instead of by a hash lookup. */
struct xdpr_npt_cache_entry {
	struct xdpr_npt64_key key;
	__u32 gen;   /* xdpr_feature_word.gen at the lookup */
	__u8 found;  /* rule holds the rule found; 0: there was none */
	__u8 pad[3];
	struct xdpr_npt_rule rule;
};

struct xdpr_ndp_entry {
	enum xdpr_ndp_mode mode;
};

/* Value of xdpr_ndp_foreign: an address another node on the link holds,
 * which the proxy must leave to it. */
struct xdpr_ndp_foreign_entry {
	enum xdpr_ndp_foreign_kind kind;
};

#endif
