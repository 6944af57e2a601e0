/* The fib-lookup forwarding step shared by IPv4 and IPv6. */
#ifndef XDPR_FORWARD_H
#define XDPR_FORWARD_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "consts.h"
#include "maps.h"
#include "ktunnel.h"
#include "compiler.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* fib_pass_reason names why a non-successful lookup leaves the packet to the
 * kernel. NO_NEIGH in particular must go to the kernel: it resolves the
 * neighbour and queues the packet, where XDP could only drop it. */
static __always_inline __u32 fib_pass_reason(long rc)
{
	switch (rc) {
	case BPF_FIB_LKUP_RET_NOT_FWDED:
		return XDPR_CNT_PASS_LOCAL;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		return XDPR_CNT_PASS_NO_NEIGH;
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		/* The kernel sends the ICMP error the route asks for. */
		return XDPR_CNT_PASS_UNREACHABLE;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return XDPR_CNT_PASS_FRAG_NEEDED;
	case BPF_FIB_LKUP_RET_FWD_DISABLED:
		return XDPR_CNT_PASS_FWD_DISABLED;
	}
	return XDPR_CNT_PASS_FIB_OTHER;
}

/* eth_set_macs writes the destination and source MACs into the Ethernet
 * header as three 16-bit words each, where a copy into the packed struct
 * ethhdr would be six byte stores (and as many loads). Both sources must be
 * 2-aligned: the fib lookup's MAC fields and the tunnel next hop's are; the
 * frame start is 4-aligned (XDP headroom). */
static __always_inline void eth_set_macs(struct ethhdr *eth, const __u8 *dmac, const __u8 *smac)
{
	__u16 *e = (__u16 *)(void *)eth;
	const __u16 *d = (const __u16 *)(const void *)dmac, *s = (const __u16 *)(const void *)smac;

	e[0] = d[0];
	e[1] = d[1];
	e[2] = d[2];
	e[3] = s[0];
	e[4] = s[1];
	e[5] = s[2];
}

/* fib_route looks the route up and writes nothing, arms nothing: it
 * returns the counter fib_redirect would for a route that is not a plain
 * redirect, and for one that is, EGRESS_NOT_ATTACHED (or HAIRPIN), so that
 * the caller's tunnel lookup (tunnel_for_egress) finds the egress in
 * p->ifindex. For a packet that may leave by a tunnel only. */
static __always_inline __u32 fib_route(struct xdp_md *ctx, struct bpf_fib_lookup *p)
{
	__u32 ingress = p->ifindex;
	long rc = bpf_fib_lookup(ctx, p, sizeof(*p), 0);

	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return fib_pass_reason(rc);
	return p->ifindex == ingress ? XDPR_CNT_PASS_HAIRPIN : XDPR_CNT_PASS_EGRESS_NOT_ATTACHED;
}

/* egress_miss_reason names why a redirect to the port ifindex found no
 * xdpr_tx_ports entry: the port is not attached, or it is one XDP cannot
 * transmit to (a veth whose peer has no NAPI), which the loader keeps out
 * of the map so that the kernel forwards what would be dropped; or a
 * kernel tunnel device, or no port of xdprouter's (egress_pass_reason). */
static __always_inline __u32 egress_miss_reason(__u32 ifindex)
{
	if (port_tx_path(ifindex) == XDPR_TX_KERNEL)
		return XDPR_CNT_PASS_EGRESS_NO_NAPI;
	return egress_pass_reason(ifindex);
}

/* redirect_port_try arms a redirect to the attached port ifindex. A
 * multi-buffer frame (mb) may only leave by a port whose driver can send
 * one (xdpr_tx_ports_mb). It returns 0, or the counter why the kernel gets
 * the frame; then nothing is armed. A port on the kernel transmit path is
 * in neither map (the loader takes it out of xdpr_tx_ports_mb first), so
 * a frame of any size for it is pass_egress_no_napi. A port in neither map
 * comes back as XDPR_CNT_PASS_EGRESS_NOT_ATTACHED, which egress_reason
 * makes precise: its two lookups are for packets that go to the kernel,
 * and a route into one of xdprouter's ipip6 tunnels ends here too, on
 * its way to tunnel_encap, which must not pay for them. */
static __always_inline __u32 redirect_port_try(__u32 ifindex, int mb)
{
	/* The low bits of flags are the verdict on a miss, so an egress port
	 * that xdprouter does not manage gives XDP_PASS with nothing armed. */
	if (likely(!mb))
		return bpf_redirect_map(&xdpr_tx_ports, ifindex, XDP_PASS) == XDP_REDIRECT
			       ? 0 : XDPR_CNT_PASS_EGRESS_NOT_ATTACHED;
	if (bpf_redirect_map(&xdpr_tx_ports_mb, ifindex, XDP_PASS) == XDP_REDIRECT)
		return 0;
	return bpf_map_lookup_elem(&xdpr_tx_ports, &ifindex) ? XDPR_CNT_PASS_MB_EGRESS
							     : XDPR_CNT_PASS_EGRESS_NOT_ATTACHED;
}

/* egress_reason is the counter of a packet that goes to the kernel for
 * reason, after a redirect to ifindex was tried (redirect_port_try). */
static __always_inline __u32 egress_reason(__u32 reason, __u32 ifindex)
{
	return reason == XDPR_CNT_PASS_EGRESS_NOT_ATTACHED ? egress_miss_reason(ifindex) : reason;
}

/* redirect_port is redirect_port_try with the precise counter. */
static __always_inline __u32 redirect_port(__u32 ifindex, int mb)
{
	return egress_reason(redirect_port_try(ifindex, mb), ifindex);
}

/* fib_redirect looks the route up and, on success, arms a redirect to the
 * egress port and rewrites the Ethernet header. It returns 0 when the packet
 * is to be redirected (the caller still owes the L3 rewrite), or the counter
 * explaining why the packet goes to the kernel, as redirect_port_try's:
 * egress_reason(reason, p->ifindex) is the one to count; in that case
 * nothing in the packet has been written yet. mb: the frame has more than
 * one buffer (redirect_port_try). */
static __always_inline __u32 fib_redirect(struct xdp_md *ctx, struct ethhdr *eth,
					  struct bpf_fib_lookup *p, int mb)
{
	__u32 reason;

	/* The lookup overwrites p->ifindex with the egress port. */
	__u32 ingress = p->ifindex;
	long rc = bpf_fib_lookup(ctx, p, sizeof(*p), 0);

	if (unlikely(rc != BPF_FIB_LKUP_RET_SUCCESS))
		return fib_pass_reason(rc);
	/* Same port out as in: the kernel also sends an ICMP redirect. */
	if (unlikely(p->ifindex == ingress))
		return XDPR_CNT_PASS_HAIRPIN;
	reason = redirect_port_try(p->ifindex, mb);
	if (unlikely(reason))
		return reason;
	eth_set_macs(eth, p->dmac, p->smac);
	return 0;
}

#endif
