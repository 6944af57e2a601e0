/* Address classification for the forward path: what the kernel would refuse
 * to forward (or must handle itself) is recognised here and passed up. */
#ifndef XDPR_IP_H
#define XDPR_IP_H

#include <linux/types.h>
#include <linux/in6.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "compiler.h"

/* Not exported by the UAPI headers. */
#define IPV4_MF 0x2000
#define IPV4_OFFSET_MASK 0x1fff

/* ipv4_octet_plain reports whether an address with first octet o is plain
 * unicast for the classification below: 1-223 except 127. Almost every
 * forwarded packet has two such addresses, so one test per address settles
 * it; the rest of the classification runs only for the others. */
static __always_inline int ipv4_octet_plain(__u8 o)
{
	return (__u8)(o - 1) < 223 && o != 127;
}

static __always_inline __u32 ipv4_addr_reason(__be32 saddr, __be32 daddr)
{
	/* Network order: the first octet is the lowest-addressed byte. */
	if (likely(ipv4_octet_plain(((__u8 *)&saddr)[0]) && ipv4_octet_plain(((__u8 *)&daddr)[0])))
		return 0;

	__u32 s = bpf_ntohl(saddr), d = bpf_ntohl(daddr);

	if ((d & 0xf0000000) == 0xe0000000 || d == 0xffffffff)
		return XDPR_CNT_PASS_IP_MULTICAST;
	if ((s >> 24) == 127 || (d >> 24) == 127 || (s >> 24) == 0 ||
	    (d >> 24) == 0 || (s & 0xf0000000) == 0xe0000000 || s == 0xffffffff)
		return XDPR_CNT_PASS_MARTIAN;
	return 0;
}

/* ipv6_octet_plain reports whether an address with first octet o cannot be
 * any of the classes ipv6_addr_reason looks for: o is 0x01-0xfd. */
static __always_inline int ipv6_octet_plain(__u8 o)
{
	return (__u8)(o - 1) < 0xfd;
}

static __always_inline int ipv6_is_loopback_or_any(const struct in6_addr *a)
{
	return (a->s6_addr32[0] | a->s6_addr32[1] | a->s6_addr32[2] |
		(a->s6_addr32[3] & bpf_htonl(0xfffffffe))) == 0;
}

static __always_inline __u32 ipv6_addr_reason(const struct in6_addr *s,
					      const struct in6_addr *d)
{
	/* Every case below has a first octet of 0x00 (loopback, unspecified),
	 * 0xfe (link-local) or 0xff (multicast). Global unicast and ULA have
	 * none of these, so one test per address settles what nearly all
	 * forwarded traffic is. */
	if (likely(ipv6_octet_plain(s->s6_addr[0]) && ipv6_octet_plain(d->s6_addr[0])))
		return 0;
	if (d->s6_addr[0] == 0xff)
		return XDPR_CNT_PASS_IP_MULTICAST;
	if (s->s6_addr[0] == 0xff || ipv6_is_loopback_or_any(s) ||
	    ipv6_is_loopback_or_any(d))
		return XDPR_CNT_PASS_MARTIAN;
	if ((s->s6_addr[0] == 0xfe && (s->s6_addr[1] & 0xc0) == 0x80) ||
	    (d->s6_addr[0] == 0xfe && (d->s6_addr[1] & 0xc0) == 0x80))
		return XDPR_CNT_PASS_LINK_LOCAL;
	return 0;
}

#endif
