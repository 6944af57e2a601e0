/* Internet checksum helpers (RFC 1071, incremental update per RFC 1624). */
#ifndef XDPR_CSUM_H
#define XDPR_CSUM_H

#include <linux/types.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* ipv4_header_ok reports whether an option-less IPv4 header sums to 0xffff
 * (the kernel drops it otherwise, so XDP must not forward it). */
static __always_inline int ipv4_header_ok(const struct iphdr *iph)
{
	/* Five 32-bit words instead of ten 16-bit ones: 2^16 = 1 modulo
	 * 0xffff, so the integer sum S of the words is congruent to the sum
	 * of the 16-bit words, and folding 16 bits onto the rest keeps that.
	 * The header is valid when S = 0 modulo 0xffff and S != 0 (RFC 1071).
	 * S < 5 * 2^32; after two folds it is at most 0xffff + 5, and the
	 * only multiple of 0xffff left that a non-zero S can give is 0xffff
	 * itself. Two folds instead of four. */
	const __u32 *w = (const __u32 *)iph;
	__u64 sum = (__u64)w[0] + w[1] + w[2] + w[3] + w[4];

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* ipv4_decrement_ttl lowers TTL by one and patches the header checksum
 * incrementally: the 16-bit word holding TTL drops by 0x0100 (RFC 1624
 * eqn. 3, the same arithmetic as the kernel's ip_decrease_ttl). */
static __always_inline void ipv4_decrement_ttl(struct iphdr *iph)
{
	__u32 check = iph->check;

	check += bpf_htons(0x0100);
	iph->check = (__u16)(check + (check >= 0xffff));
	iph->ttl--;
}

/* csum_diff32 is the one's complement difference from one 32-bit field to
 * another (RFC 1624 eqn. 3: ~m + m'), unfolded: at most 4 * 0xffff, so a
 * few of them add up in 32 bits. Both in network order, read as the
 * checksum reads them; the sum does not depend on the byte order as long
 * as every word is read the same way (RFC 1071 2.B). */
static __always_inline __u32 csum_diff32(__u32 from, __u32 to)
{
	__u32 nf = ~from;

	return (nf & 0xffff) + (nf >> 16) + (to & 0xffff) + (to >> 16);
}

/* csum_apply adds an unfolded difference to a checksum field (RFC 1624
 * eqn. 3, HC' = ~(~HC + ~m + m')): the same arithmetic as the kernel's
 * csum_replace4 / inet_proto_csum_replace4, so the same bytes. */
static __always_inline __u16 csum_apply(__u16 check, __u32 diff)
{
	return (__u16)~csum_fold((__u32)(__u16)~check + diff);
}

#endif
