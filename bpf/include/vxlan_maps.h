/* State of VXLAN in XDP (vxlan.h): what the data plane must know of each
 * kernel vxlan netdev xdprouter owns to encapsulate and decapsulate as the
 * netdev does. The loader fills the maps from the netdev and the
 * namespace's sysctls (loader/ktunnels.go); xdpr_ktunnels stays the list
 * of kernel tunnels, these are what XDP needs besides. */
#ifndef XDPR_VXLAN_MAPS_H
#define XDPR_VXLAN_MAPS_H

#include <linux/types.h>
#include <linux/in6.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "consts.h"

/* Flags of struct xdpr_vxlan. */
enum xdpr_vxlan_flag {
	XDPR_VXLAN_F_IPV4 = 1, /* the underlay is IPv4 (remote and local IPv4-mapped) */
	XDPR_VXLAN_F_CSUM = 2, /* the netdev sends UDP checksums (udpcsum over IPv4; over IPv6 unless udp6zerocsumtx) */
};

/* One vxlan netdev as XDP encapsulates for it. */
struct xdpr_vxlan {
	struct in6_addr remote; /* outer destination; IPv4-mapped for IPv4 */
	struct in6_addr local;  /* outer source; :: when the kernel picks it by route */
	__u32 ifindex;          /* the vxlan netdev */
	__u32 underlay;         /* the netdev's `dev` (outer route's oif); 0: any */
	__u32 vni;              /* host order */
	__u8 mac[6];            /* the netdev's MAC: only inner frames to it are decapsulated */
	__u16 port;             /* UDP destination port, host order */
	/* The UDP source port range, [sport_min, sport_max), as the kernel's
	 * udp_flow_src_port uses it: the netdev's port range, or the
	 * namespace's ip_local_port_range where it has none. */
	__u16 sport_min;
	__u16 sport_max;
	__u8 ttl;               /* outer TTL / hop limit the netdev sends with */
	__u8 tos;               /* the netdev's tos: 0 ECN only, 1 inherit, else this DSCP */
	__u8 flags;             /* enum xdpr_vxlan_flag */
	__u8 pad[5];
};

/* Gives the flag enum a place in BTF, from where bpf2go emits it for Go. */
const enum xdpr_vxlan_flag xdpr_vxlan_flag_names __attribute__((unused));

/* Decapsulation key: VXLAN is decapsulated in XDP only from a configured
 * remote with the configured VNI to the configured port. */
struct xdpr_vxlan_ep {
	struct in6_addr remote; /* IPv4-mapped for IPv4 */
	__u32 vni;              /* host order */
	__u16 port;             /* host order */
	__u8 pad[2];
};

/* Encapsulation: by the netdev's ifindex, which the inner route names. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPR_MAX_KTUNNELS);
	__type(key, __u32);
	__type(value, struct xdpr_vxlan);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_vxlans SEC(".maps");

/* Decapsulation: the same entries by (remote, VNI, port). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPR_MAX_KTUNNELS);
	__type(key, struct xdpr_vxlan_ep);
	__type(value, struct xdpr_vxlan);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_vxlan_eps SEC(".maps");

/* How many vxlan netdevs listen on each UDP port: an array lookup the
 * verifier inlines, so UDP to any other port (nearly all of it) costs no
 * hash lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_vxlan_ports SEC(".maps");

/* Octets summed per bpf_csum_diff call: it takes at most 512. */
#define XDPR_VXLAN_CHUNK 256

/* Per-CPU scratch space: the route lookups and the checksum's copy of the
 * frame live here rather than on the stack, which xdpr_main has filled to
 * what a 6.1 verifier allows (loader/stack_test.go). */
struct xdpr_vxlan_scratch {
	/* A struct bpf_fib_lookup and a struct xdpr_ct_work (vxlan_fib,
	 * vxlan_ct): their anonymous unions have no Go type for bpf2go. */
	__u64 fib[8];
	__u64 ct[13];
	struct xdpr_vxlan vx;     /* the netdev's entry, copied: nothing holds a pointer to it */
	struct xdpr_vxlan_ep key; /* decapsulation's lookup */
	__u8 imac[12];            /* encap: the inner frame's destination and source MAC */
	__u32 ckey;               /* the counter's key */
	/* What one packet's path keeps across helper calls, which would
	 * otherwise be spilled to the stack. */
	__u64 rx_len;   /* the frame's length as it arrived (the counters') */
	__u32 len;      /* inner IP packet */
	__u32 udp_len;  /* outer UDP datagram */
	__u16 sport;    /* outer UDP source port */
	__u8 tos;       /* encap: outer TOS; decap: inner TOS after ECN */
	__u8 otos;      /* decap: outer TOS */
	__u8 inner_v6;  /* the inner packet is IPv6 */
	__u8 inner_off; /* decap: where the inner IP header starts */
	__u8 l4proto;   /* decap: the inner packet's protocol */
	__u8 npt;       /* the inner packet is translated (NPT on the netdev): vxlan_npt(s) holds the rule */
	/* This CPU's last outer route (vxlan_outer_route): an outer route
	 * lookup (with the source address chosen) costs as much as the
	 * rest of the encapsulation, and it is the same for every packet to
	 * a netdev's remote, as the kernel's vxlan keeps it in its
	 * dst_cache. Until nh_expires (jiffies), for frames up to nh_maxlen
	 * (what was found to fit) of the netdev nh_dev with outer TOS nh_tos. */
	__u64 nh_expires;
	__u32 nh_dev;
	__u32 nh_egress;
	__u32 nh_maxlen;
	__u32 nh_src[4];
	__u8 nh_dmac[6];
	__u8 nh_smac[6];
	__u8 nh_tos;
	__u8 pad2[3];
	/* This CPU's last "to this router" answer (vxlan_to_us) for an
	 * outer (source, destination), valid until us_expires (jiffies). */
	__u64 us_expires;
	__u32 us_saddr[4];
	__u32 us_daddr[4];
	__u64 sum;      /* the checksum's loop: its sum, offset, octets left */
	__u32 off;
	__u32 left;
	__u8 buf[XDPR_VXLAN_CHUNK + 4]; /* + zero padding to a multiple of 4 */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpr_vxlan_scratch);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdpr_vxlan_scratch SEC(".maps");

#endif
