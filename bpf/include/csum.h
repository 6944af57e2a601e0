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
	const __u16 *w = (const __u16 *)iph;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*iph) / 2); i++)
		sum += w[i];
	return csum_fold(sum) == 0xffff;
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
