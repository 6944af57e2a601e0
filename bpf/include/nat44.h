/* NAT44 in XDP: the translation the kernel's conntrack chose for a flow
 * (read from its entry by the gate, conntrack.h: ct_nat_read), applied to
 * a packet of that flow on its way into or out of a nat44 tunnel, as the
 * kernel's flowtable applies it (nf_flow_snat_ip / nf_flow_dnat_ip and the
 * port and checksum updates beside them). The binding itself is always
 * made by the kernel, on the flow's first packet; XDP carries only what
 * conntrack has established, and only for a tunnel whose fixed IPv4 is the
 * NAT address (tunnel.h). Everything is decided before anything is
 * written: the callers apply this after the route, the tunnel and the
 * frame resizing have all succeeded. */
#ifndef XDPR_NAT44_H
#define XDPR_NAT44_H

#include <linux/types.h>
#include <linux/in.h>
#include <linux/ip.h>
#include "csum.h"
#include "conntrack.h"

/* nat44_rewrite rewrites the addresses and ports of an option-less IPv4
 * TCP or UDP packet (the gate checked the transport header; end bounds the
 * frame) to nat's, and patches the IPv4 header checksum and the TCP or UDP
 * checksum incrementally: the L4 checksum covers the addresses (pseudo
 * header) and the ports. A UDP checksum of 0 (none) stays 0, and a
 * computed 0 is sent as 0xffff (RFC 768), as the kernel does. TTL is the
 * caller's. It returns 0, or -1 when the transport header is not within
 * end (then nothing was written). */
static __always_inline int nat44_rewrite(struct iphdr *iph, void *end, const struct xdpr_ct_nat *nat)
{
	__u8 *l4 = (__u8 *)(iph + 1);
	__u16 *check;
	__u32 *ports;
	__u32 d;
	int udp = iph->protocol == IPPROTO_UDP;

	if (udp) {
		if ((void *)(l4 + 8) > end)
			return -1;
		check = (__u16 *)(void *)(l4 + 6);
	} else {
		if ((void *)(l4 + 20) > end)
			return -1;
		check = (__u16 *)(void *)(l4 + 16);
	}
	ports = (__u32 *)(void *)l4;
	d = csum_diff32(iph->saddr, nat->saddr) + csum_diff32(iph->daddr, nat->daddr);
	iph->check = csum_apply(iph->check, d);
	if (!udp || *check) {
		__u16 c = csum_apply(*check, d + csum_diff32(*ports, nat->ports));

		*check = udp && !c ? 0xffff : c;
	}
	iph->saddr = nat->saddr;
	iph->daddr = nat->daddr;
	*ports = nat->ports;
	return 0;
}

#endif
