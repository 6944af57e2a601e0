/* Cursor-style header parsers: each returns a pointer to the header (or
 * NULL when the frame is too short) and advances the cursor past it. All
 * bounds checks are against data_end, so the verifier sees them. */
#ifndef XDPR_PARSING_H
#define XDPR_PARSING_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include "compiler.h"

struct cursor {
	void *pos;
	void *end;
};

/* len16 reads a 16-bit length field (IPv4 total length, IPv6 payload
 * length) that goes into a packet pointer. The verifiers of 6.1 and 6.12
 * know nothing of a byte swap's result (BPF_END leaves an unbounded
 * scalar) and refuse it in pointer arithmetic ("math between pkt pointer
 * and register with unbounded min value"), so the programs would not load
 * there; the mask bounds it for them, and the barrier keeps clang from
 * dropping a mask it knows to be a no-op. */
static __always_inline __u32 len16(__be16 v)
{
	__u32 x = bpf_ntohs(v);

	barrier_var(x);
	return x & 0xffff;
}

static __always_inline void *cursor_pull(struct cursor *c, __u32 len)
{
	void *start = c->pos;

	if (unlikely(start + len > c->end))
		return NULL;
	c->pos = start + len;
	return start;
}

static __always_inline struct ethhdr *parse_eth(struct cursor *c)
{
	return cursor_pull(c, sizeof(struct ethhdr));
}

static __always_inline struct iphdr *parse_ipv4(struct cursor *c)
{
	return cursor_pull(c, sizeof(struct iphdr));
}

static __always_inline struct ipv6hdr *parse_ipv6(struct cursor *c)
{
	return cursor_pull(c, sizeof(struct ipv6hdr));
}

/* Generic IPv6 extension header: next header, length in 8-octet units
 * excluding the first 8 (RFC 8200 4.2). The fragment header has the same
 * first two octets with a fixed length of 8. */
struct ipv6_opt_hdr_min {
	__u8 nexthdr;
	__u8 hdrlen;
};

static __always_inline int ipv6_is_ext_header(__u8 nh)
{
	switch (nh) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_DSTOPTS:
	case IPPROTO_MH:
	case 139: /* HIP */
	case 140: /* Shim6 */
		return 1;
	}
	return 0;
}


#endif
