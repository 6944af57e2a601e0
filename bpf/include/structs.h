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
	__u8 pad[2];
	char name[16];   /* name at attach time, for humans reading bpftool */
};

#endif
