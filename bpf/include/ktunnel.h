/* Tunnels whose encapsulation is a kernel device xdprouter creates and owns
 * (vxlan, seed 001): XDP cannot hand a packet to a vxlan netdev's
 * encapsulation, so a route into one leaves the packet to the kernel,
 * counted as pass_tunnel_dev. The loader fills the map
 * (loader/ktunnels.go); status and bpftool read it. */
#ifndef XDPR_KTUNNEL_H
#define XDPR_KTUNNEL_H

#include <linux/types.h>
#include <linux/in6.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "consts.h"

struct xdpr_ktunnel {
	__u32 ifindex;          /* the kernel's tunnel netdev */
	__u32 kind;             /* enum xdpr_ktunnel_kind */
	__u32 vni;              /* VXLAN network identifier */
	__u16 port;             /* UDP destination port, host order */
	__u8 pad[2];
	struct in6_addr remote; /* underlay address of the peer; IPv4-mapped for IPv4 */
	struct in6_addr local;  /* underlay source; :: when the kernel picks it by route */
	char name[16];          /* for humans reading bpftool */
};

/* Gives the kind enum a place in BTF, from where bpf2go emits it for Go. */
const enum xdpr_ktunnel_kind xdpr_ktunnel_kind_names __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPR_MAX_KTUNNELS);
	__type(key, __u32); /* ifindex of the netdev */
	__type(value, struct xdpr_ktunnel);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_ktunnels SEC(".maps");

/* egress_pass_reason is why a routed packet whose egress XDP cannot
 * redirect to goes to the kernel: into a kernel tunnel device, or out of
 * an interface xdprouter does not manage. Only on that path, so the
 * lookup costs the forwarded packets nothing. */
static __always_inline __u32 egress_pass_reason(__u32 ifindex)
{
	if (bpf_map_lookup_elem(&xdpr_ktunnels, &ifindex))
		return XDPR_CNT_PASS_TUNNEL_DEV;
	return XDPR_CNT_PASS_EGRESS_NOT_ATTACHED;
}

#endif
