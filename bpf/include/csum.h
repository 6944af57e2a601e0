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
	/* Five 32-bit words instead of ten 16-bit ones: the one's complement
	 * sum does not depend on the word size or byte order (RFC 1071), and
	 * folding the 64-bit total back to 16 bits gives the same result. */
	const __u32 *w = (const __u32 *)iph;
	__u64 sum = (__u64)w[0] + w[1] + w[2] + w[3] + w[4];

	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
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

#endif
