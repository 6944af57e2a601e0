/* Enums shared with Go through BTF (bpf2go -type): the single source of
 * counter and role identifiers. Go reads the enumerator names from BTF, so a
 * new counter needs no Go change. */
#ifndef XDPR_CONSTS_H
#define XDPR_CONSTS_H

/* Why the data plane did what it did to a packet. Every packet increments
 * exactly one counter, so the sum of all counters is the number of packets
 * the program saw. */
enum xdpr_counter {
	XDPR_CNT_FWD_IPV4 = 0,        /* forwarded in XDP (redirect) */
	XDPR_CNT_FWD_IPV6,
	XDPR_CNT_PASS_TRUNCATED,      /* frame shorter than its headers claim */
	XDPR_CNT_PASS_MALFORMED,      /* bad version, IHL < 5, length < header */
	XDPR_CNT_PASS_BAD_CHECKSUM,   /* IPv4 header checksum wrong: kernel drops it */
	XDPR_CNT_PASS_NOT_IP,         /* ethertype neither IPv4 nor IPv6 */
	XDPR_CNT_PASS_VLAN,           /* 802.1Q / 802.1ad tagged */
	XDPR_CNT_PASS_L2_MULTICAST,   /* broadcast or multicast destination MAC */
	XDPR_CNT_PASS_OTHERHOST,      /* unicast MAC that is not the interface's */
	XDPR_CNT_PASS_IFACE_UNKNOWN,  /* arrived on another interface than this instance's */
	XDPR_CNT_PASS_IPV4_OPTIONS,
	XDPR_CNT_PASS_IPV6_HOP_BY_HOP,/* must be processed by every router */
	XDPR_CNT_PASS_IPV6_EXT_LIMIT, /* extension header chain too long to walk */
	XDPR_CNT_PASS_FRAGMENT,
	XDPR_CNT_PASS_TTL_EXPIRED,    /* TTL / hop limit <= 1: kernel sends time exceeded */
	XDPR_CNT_PASS_IP_MULTICAST,   /* multicast or limited broadcast destination */
	XDPR_CNT_PASS_LINK_LOCAL,     /* IPv6 link-local source or destination */
	XDPR_CNT_PASS_MARTIAN,        /* loopback / unspecified / multicast source */
	XDPR_CNT_PASS_LOCAL,          /* fib: for this host (or not forwardable) */
	XDPR_CNT_PASS_NO_NEIGH,       /* fib: next hop not resolved yet */
	XDPR_CNT_PASS_UNREACHABLE,    /* fib: blackhole/unreachable/prohibit route */
	XDPR_CNT_PASS_FRAG_NEEDED,    /* fib: larger than the egress MTU */
	XDPR_CNT_PASS_FWD_DISABLED,   /* fib: forwarding sysctl off on ingress */
	XDPR_CNT_PASS_FIB_OTHER,      /* fib: lwt encap, no source address, error */
	XDPR_CNT_PASS_HAIRPIN,        /* egress == ingress: kernel sends a redirect */
	XDPR_CNT_PASS_EGRESS_NOT_ATTACHED, /* egress interface not in tx_ports */
	/* egress is a port XDP cannot transmit to (a veth whose peer has
	 * neither GRO nor an XDP program, so no NAPI: a redirect would be
	 * dropped); the kernel forwards it */
	XDPR_CNT_PASS_EGRESS_NO_NAPI,
	/* ipip6 tunnels (tunnel.h, icmp.h) */
	XDPR_CNT_TUN_ENCAP,           /* IPv4 encapsulated in XDP and redirected to the WAN */
	XDPR_CNT_TUN_DECAP,           /* ipip6 decapsulated in XDP, inner IPv4 redirected */
	XDPR_CNT_TUN_ICMP_FRAG_NEEDED,/* DF over the tunnel MTU: ICMPv4 3/4 sent back out of the ingress port */
	XDPR_CNT_DROP_TUN_ICMP_RATELIMIT, /* the same, over the ICMP rate: dropped */
	/* the same on a port XDP cannot transmit to (veth peer without
	 * NAPI): passed untouched, the kernel sends the error */
	XDPR_CNT_PASS_ICMP_NO_NAPI,
	XDPR_CNT_DROP_TUN_UNKNOWN_ENDPOINT, /* ipip6 for this host from/to no configured pair */
	XDPR_CNT_DROP_TUN_ECN,        /* outer CE on a not-ECT inner packet (RFC 6040 4.2) */
	XDPR_CNT_PASS_TUN_OVERSIZE,   /* over the tunnel MTU without DF: the kernel fragments */
	XDPR_CNT_PASS_TUN_NAT44,      /* NAT44 tunnel: conntrack in the kernel must see it */
	XDPR_CNT_TUN_NO_ROOM,         /* frame could not be resized: passed untouched (never seen in practice) */
	XDPR_CNT_PASS_TUN_FRAGMENT,   /* ipip6 or 6in4 fragmented in the outer header, from a configured pair: the kernel reassembles, the daemon decapsulates (tunnel_tc.h) */
	XDPR_CNT_DROP_TUN_SRC_LOCAL,  /* inner IPv4 source is the router's own, loopback, 0/8, multicast, broadcast or class E */
	XDPR_CNT_DROP_TUN_SRC_LAN,    /* inner IPv4 source inside a LAN subnet: spoofed (the kernel's rp_filter would drop it) */
	/* NPTv6 and NDP proxy (npt.h, ndp.h) */
	XDPR_CNT_FWD_NPT_SNPT,        /* forwarded, source inside -> outside */
	XDPR_CNT_FWD_NPT_DNPT,        /* forwarded, destination outside -> inside */
	XDPR_CNT_DROP_NPT_UNMAPPABLE, /* RFC 6296 5.2: every candidate word is 0xffff */
	XDPR_CNT_DROP_NPT_MALFORMED,  /* preserve-host: L4 checksum not reachable */
	XDPR_CNT_TX_NDP_NA,           /* proxied NS answered with an NA (XDP_TX) */
	/* the same on a veth, sent by a redirect to the port: a veth flushes
	 * XDP_TX frames only to a peer running XDP, a redirect to any peer
	 * with NAPI */
	XDPR_CNT_TX_NDP_NA_REDIRECT,
	/* the same on a veth whose peer has no NAPI, which XDP cannot reach:
	 * the NA is passed marked, and TC sends it (tc_reply) */
	XDPR_CNT_PASS_NDP_NA_TC,
	XDPR_CNT_PASS_NDP_INVALID,    /* NS for a proxied target failing RFC 4861 7.1.1 */
	XDPR_CNT_PASS_NDP_NO_NEIGH,   /* lan-neighbor mode: target not known behind a LAN */
	XDPR_CNT_PASS_NDP_NO_ROOM,    /* the frame could not be resized for the NA */
	XDPR_CNT_PASS_NPT_EXCLUDED,   /* to the router's own outside address: not DNPT, the kernel's */
	XDPR_CNT_DROP_NPT_EXCLUDED,   /* inside source whose SNPT is the router's own address */
	XDPR_CNT_PASS_NDP_EXCLUDED,   /* NS for the router's own outside address: the kernel answers */
	/* The conntrack gate (conntrack.h), on attachments that have it on */
	XDPR_CNT_PASS_CT_NEW,         /* no conntrack entry (or the lookup failed, or the kernel lacks the kfuncs): netfilter decides */
	XDPR_CNT_PASS_CT_UNREPLIED,   /* entry without a reply seen yet (not established) */
	XDPR_CNT_PASS_CT_TCP_FLAGS,   /* TCP SYN, FIN or RST: conntrack must see every state change */
	XDPR_CNT_PASS_CT_TCP_STATE,   /* TCP entry not ESTABLISHED (handshake or closing) */
	XDPR_CNT_PASS_CT_PROTO,       /* neither TCP nor UDP right behind the IP header (ICMP, ...) */
	XDPR_CNT_PASS_CT_NAT,         /* entry carries NAT, which this path does not apply */
	XDPR_CNT_PASS_CT_HELPER,      /* entry has a helper or sequence adjustment */
	XDPR_CNT_PASS_CT_DYING,       /* entry being removed */
	/* NAT44 in XDP (nat44.h): the translation conntrack chose, applied to
	 * a flow it carries through a nat44 tunnel */
	XDPR_CNT_FWD_NAT44_SNAT,      /* source rewritten to the tunnel's ipv4-address (SNAT, or un-DNAT of a port forward's reply), encapsulated */
	XDPR_CNT_FWD_NAT44_DNAT,      /* decapsulated, destination rewritten to the LAN host (un-SNAT of a reply, or a port forward's DNAT) */
	/* NDP proxy: valid NS for a proxied target left unanswered because the
	 * target is known to be another node's (ndp.h, ndp_elsewhere) */
	XDPR_CNT_PASS_NDP_ANYCAST,    /* subnet-router anycast (RFC 4291 2.6.1) or reserved anycast (RFC 2526) */
	XDPR_CNT_PASS_NDP_FOREIGN,    /* a WAN router's own address (RA prefix option with the R flag) */
	XDPR_CNT_PASS_NDP_NEIGH_ELSEWHERE, /* the router's neighbour table has it on this port at another MAC */
	XDPR_CNT_PASS_NDP_DAD_UNOWNED,/* prefix mode: DAD probe for a target not known behind a LAN */
	/* Multi-buffer frames (a jumbo MTU): XDP reads only the first buffer
	 * (xdpr_main, mb_frame_len) */
	XDPR_CNT_PASS_MB_HEADERS,     /* first buffer shorter than XDPR_MB_LINEAR_MIN, or the transport header beyond it */
	XDPR_CNT_PASS_MB_EGRESS,      /* routed out of a port whose driver cannot transmit a multi-buffer frame */
	/* Kernel tunnel devices (ktunnel.h) */
	XDPR_CNT_PASS_TUNNEL_DEV,     /* routed into a kernel tunnel device xdprouter owns that XDP does not encapsulate for: the kernel does */
	/* VXLAN in XDP (vxlan.h) for the vxlan netdevs xdprouter owns */
	XDPR_CNT_VXLAN_ENCAP,         /* routed into a vxlan netdev: encapsulated as the netdev does, redirected to the underlay */
	XDPR_CNT_VXLAN_DECAP,         /* VXLAN from a configured remote and VNI: decapsulated, inner packet forwarded as if it came in on the netdev */
	XDPR_CNT_PASS_VXLAN_NO_NEIGH, /* the overlay neighbour (the inner next hop on the vxlan netdev) is not resolved: the kernel resolves it */
	XDPR_CNT_PASS_VXLAN_TOO_BIG,  /* inner packet over the vxlan netdev's MTU: the kernel sends the ICMP error or fragments */
	XDPR_CNT_PASS_VXLAN_MB,       /* multi-buffer frame into a vxlan netdev: the kernel encapsulates */
	XDPR_CNT_PASS_VXLAN_UNKNOWN,  /* UDP to this router at a vxlan port from no configured remote and VNI, or with VXLAN flags the kernel must judge */
	XDPR_CNT_PASS_VXLAN_INNER,    /* configured VXLAN whose inner frame is not for the netdev's MAC, not IP, malformed or from a source no tunnel may bring */
	XDPR_CNT_PASS_VXLAN_LOCAL,    /* configured VXLAN whose inner packet is the router's own: the kernel's vxlan socket takes the untouched frame */
	XDPR_CNT_PASS_VXLAN_CSUM,     /* configured VXLAN with a wrong outer UDP checksum (or none over IPv6): the kernel drops it */
	/* 6in4 tunnels (IPv6 in IPv4, protocol 41: tunnel6in4.h) */
	XDPR_CNT_TUN6IN4_ENCAP,       /* IPv6 encapsulated in IPv4 in XDP and redirected to the WAN */
	XDPR_CNT_TUN6IN4_DECAP,       /* 6in4 decapsulated in XDP, inner IPv6 redirected */
	XDPR_CNT_TUN6IN4_ICMP_PTB,    /* over the tunnel MTU: ICMPv6 packet too big sent back out of the ingress port */
	XDPR_CNT_PASS_TUN6IN4_UNKNOWN_ENDPOINT, /* protocol 41 for this host from/to no configured pair: the kernel's, untouched */
	XDPR_CNT_DROP_TUN6IN4_SRC_LOCAL, /* inner IPv6 source unspecified, loopback, multicast or the router's own */
	XDPR_CNT_DROP_TUN6IN4_SRC_LAN,   /* inner IPv6 source inside a LAN prefix: spoofed */
	/* NPTv6 on a tunnel (npt entries on a vxlan or 6in4 netdev): counted
	 * instead of the tunnel's encap or decap counter */
	XDPR_CNT_VXLAN_ENCAP_SNPT,    /* as vxlan_encap, the inner source translated inside -> outside first */
	XDPR_CNT_VXLAN_DECAP_DNPT,    /* as vxlan_decap, the inner destination translated outside -> inside */
	XDPR_CNT_TUN6IN4_ENCAP_SNPT,  /* as tun6in4_encap, the source translated inside -> outside first */
	XDPR_CNT_TUN6IN4_DECAP_DNPT,  /* as tun6in4_decap, the inner destination translated outside -> inside */
	XDPR_CNT__MAX,
};

/* Events, not packets: counted in xdpr_counters at XDPR_EV_BASE + event,
 * beside the one counter every packet has. */
enum xdpr_event {
	XDPR_EV_CT_REFRESH = 0,       /* conntrack timeout of an XDP-forwarded flow refreshed */
	XDPR_EV_CT_CACHE_HIT,         /* gate verdict reused from this CPU's xdpr_ct_cache */
	XDPR_EV__MAX,
};

/* The counter maps have sizes of their own, not the enums': a version that
 * adds counters keeps the pinned maps' layout, so it opens the pins of the
 * one before and an upgrade stays hitless. Packet counters from 0, events
 * from XDPR_EV_BASE. Never change these numbers. */
enum xdpr_counter_layout {
	XDPR_EV_BASE = 448,
	XDPR_COUNTER_SLOTS = 512,
	XDPR_TC_COUNTER_SLOTS = 128,
};
_Static_assert((int)XDPR_CNT__MAX <= (int)XDPR_EV_BASE, "packet counters run into the events");
_Static_assert((int)XDPR_EV_BASE + (int)XDPR_EV__MAX <= (int)XDPR_COUNTER_SLOTS, "events run past xdpr_counters");

/* Whether an attachment's forward path is gated by conntrack (conntrack.h). */
enum xdpr_ct_gate {
	XDPR_CT_GATE_OFF = 0,
	XDPR_CT_GATE_ON = 1,
	/* On, but loaded where the kernel lacked the conntrack kfuncs
	 * (compat.h): every gated packet goes to the kernel. Only recorded in
	 * xdpr_ifaces (the program sees ON), so that attaching again once the
	 * kfuncs are there replaces the program. */
	XDPR_CT_GATE_ON_NO_KFUNCS = 2,
};

/* What an attached interface faces. Recorded at attach time. */
enum xdpr_role {
	XDPR_ROLE_NONE = 0,
	XDPR_ROLE_WAN = 1,
	XDPR_ROLE_LAN = 2,
};

/* How the XDP program is attached (for status output). */
enum xdpr_xdp_mode {
	XDPR_MODE_UNKNOWN = 0,
	XDPR_MODE_NATIVE = 1,
	XDPR_MODE_GENERIC = 2,
};

/* What the TC slow path did with a packet it handled: the tunnel programs
 * (tunnel_tc.h) and NPT (tc_npt.h). Separate from enum xdpr_counter, whose
 * sum is what XDP saw; TC counts only the packets that are its business. */
enum xdpr_tc_counter {
	XDPR_TC_ENCAP = 0,          /* encapsulated on a tunnel netdev, handed to the WAN */
	XDPR_TC_DECAP,              /* decapsulated on the WAN, delivered to the tunnel netdev */
	XDPR_TC_DROP_NO_TUNNEL,     /* on a netdev that is no tunnel's, or not IPv4 */
	XDPR_TC_DROP_MALFORMED,     /* truncated, no IPv4 inside, L4 checksum unreachable */
	XDPR_TC_DROP_NO_ROUTE,      /* no route to the tunnel's remote */
	XDPR_TC_DROP_ECN,           /* outer CE on a not-ECT packet (RFC 6040) */
	XDPR_TC_DROP_ERROR,         /* a helper refused (no room, no memory) */
	XDPR_TC_DECAP_REASSEMBLED,  /* ipip6 or 6in4 the kernel reassembled, handed back by the daemon, decapsulated to the tunnel netdev */
	XDPR_TC_DROP_UNKNOWN_ENDPOINT, /* reassembled ipip6 or 6in4 from or to no configured pair */
	XDPR_TC_DROP_SRC_LOCAL,     /* inner IPv4 source is the router's own, loopback, 0/8, multicast, broadcast or class E */
	XDPR_TC_DROP_SRC_LAN,       /* inner IPv4 source inside a LAN subnet: spoofed */
	XDPR_TC_SNPT,               /* egress: source inside -> outside */
	XDPR_TC_DNPT,               /* ingress: destination outside -> inside */
	XDPR_TC_DROP_UNMAPPABLE,    /* NPT: every candidate word is 0xffff */
	XDPR_TC_NPT_EXCLUDED,       /* ingress: to the router's own outside address, not translated */
	XDPR_TC_DROP_NPT_EXCLUDED,  /* egress: source would become the router's own address */
	XDPR_TC_REPLY,              /* ingress: an answer XDP built for a port it cannot transmit to, sent back out */
	XDPR_TC_ENCAP_6IN4,         /* IPv6 encapsulated in IPv4 on a 6in4 tunnel netdev, handed to the WAN */
	XDPR_TC_DECAP_6IN4,         /* 6in4 decapsulated on the WAN, delivered to the tunnel netdev */
	XDPR_TC_DROP_SRC6_LOCAL,    /* 6in4: inner IPv6 source unspecified, loopback, multicast or the router's own */
	XDPR_TC_DROP_SRC6_LAN,      /* 6in4: inner IPv6 source inside a LAN prefix: spoofed */
	XDPR_TC__MAX,
};
_Static_assert((int)XDPR_TC__MAX <= (int)XDPR_TC_COUNTER_SLOTS, "tc counters run past xdpr_tc_counters");

/* How frames reach the wire through a port (struct xdpr_iface.tx_path),
 * set by the loader from what the kernel says of the interface. A veth
 * takes frames from XDP (XDP_TX on it, redirects to it) only into its
 * peer's NAPI, which exists while the peer has GRO on or an XDP program,
 * and flushes XDP_TX frames only to a peer running XDP (drivers/net/veth.c:
 * veth_xdp_xmit, veth_xdp_flush). */
enum xdpr_tx_path {
	XDPR_TX_XDP = 0,      /* XDP_TX and redirects: a NIC */
	XDPR_TX_REDIRECT = 1, /* a veth whose peer has NAPI: answers by redirect, not XDP_TX */
	/* a veth whose peer has no NAPI: out of xdpr_tx_ports, so what XDP
	 * would redirect there is the kernel's; answers go through TC */
	XDPR_TX_KERNEL = 2,
};

/* The XDP metadata (a __u32 right before the frame) that asks the TC reply
 * program (tc_reply.h) to send the frame back out of the port it arrived
 * on. */
enum xdpr_meta {
	XDPR_META_REPLY = 0x78647270, /* "xdrp" */
};

/* Tunnel flags (struct xdpr_tunnel.flags). */
enum xdpr_tunnel_flag {
	XDPR_TUN_F_NAT44 = 1, /* LAN IPv4 is masqueraded to nat44_addr: the kernel makes the binding, XDP applies it (nat44.h) */
};

/* What a tunnel carries (struct xdpr_tunnel.mode). */
enum xdpr_tunnel_mode {
	XDPR_TUN_IPIP6 = 0, /* IPv4 in IPv6 (RFC 2473), next header 4 */
	XDPR_TUN_6IN4 = 1,  /* IPv6 in IPv4 (RFC 4213), protocol 41: endpoints IPv4-mapped */
};

/* What an entry of the tunnels' inner source filter stands for
 * (struct xdpr_src_net.kind, tunnel_maps.h). */
enum xdpr_src_kind {
	XDPR_SRC_LOCAL = 1, /* one of the router's own IPv4 addresses, or a broadcast address of its subnets */
	XDPR_SRC_LAN = 2,   /* a LAN subnet: its hosts are behind a LAN port, never behind a tunnel */
};

/* What kind of kernel tunnel device an xdpr_ktunnels entry is (ktunnel.h). */
enum xdpr_ktunnel_kind {
	XDPR_KTUN_VXLAN = 1,
};

/* How an NPT rule rewrites the address (npt.h). */
enum xdpr_npt_mode {
	XDPR_NPT_RFC6296 = 0,        /* checksum-neutral: one non-prefix word adjusted */
	XDPR_NPT_PRESERVE_HOST = 1,  /* host bits kept, L4 checksums updated */
};

/* Features in use (struct xdpr_feature_word.flags), kept by the loader in step
 * with the maps that hold them: a clear bit means the map is empty, so the
 * data plane skips its lookups. A set bit with an empty map only costs a
 * lookup that misses, so the loader sets it after filling a map and clears
 * it after emptying one. */
enum xdpr_feature_bit {
	XDPR_F_NPT = 1,       /* xdpr_npt_in / xdpr_npt_out hold rules */
	XDPR_F_NDP_PROXY = 2, /* xdpr_ndp_proxy holds prefixes */
	XDPR_F_NPT64 = 4,     /* xdpr_npt64_in / xdpr_npt64_out hold /64 rules */
	/* The tries hold a rule the /64 maps do not: one shorter than /64,
	 * or (after a failed update) a /64 the hash lacks. Without it a miss
	 * in the /64 maps is final. */
	XDPR_F_NPT_TRIE = 8,
	XDPR_F_VXLAN = 16,    /* xdpr_vxlan_eps holds vxlan netdevs: UDP is checked for VXLAN to decapsulate */
};

/* Why an address is in xdpr_ndp_foreign (what the control plane learned
 * about it). */
enum xdpr_ndp_foreign_kind {
	XDPR_NDP_FOREIGN_ROUTER = 1, /* a WAN router's address, from a prefix option with the R flag */
};

/* Which solicitations the NDP proxy answers (ndp.h). */
enum xdpr_ndp_mode {
	XDPR_NDP_PREFIX = 0,         /* every target inside the proxied prefix */
	XDPR_NDP_LAN_NEIGHBOR = 1,   /* only targets with a resolved neighbour behind a LAN */
};

#define XDPR_MAX_IFACES 256
#define XDPR_MAX_TUNNELS 64
/* Entries of the tunnels' inner source filter (xdpr_tun_src_filter). */
#define XDPR_MAX_SRC_NETS 32
/* Entries of the 6in4 tunnels' inner IPv6 source filter (xdpr_tun_src6_filter). */
#define XDPR_MAX_SRC6_NETS 32
/* Kernel tunnel devices (vxlan): a server has one per peer (seed 001: 255). */
#define XDPR_MAX_KTUNNELS 1024
/* Tunnel netdevs with an ifindex below this are also found by array index
 * (xdpr_tun_index). */
#define XDPR_TUN_INDEX_MAX 1024
#define XDPR_MAX_NPT_RULES 1024
#define XDPR_MAX_NDP_PREFIXES 1024
/* Addresses in proxied prefixes known to be other nodes' (xdpr_ndp_foreign). */
#define XDPR_MAX_NDP_FOREIGN 256
/* NS options walked and summed (8-octet units); longer NS go to the kernel. */
#define XDPR_NDP_MAX_OPT_UNITS 8
/* IPv6 extension headers walked before giving up (counted as EXT_LIMIT). */
#define XDPR_MAX_EXT_HEADERS 6
/* The least a multi-buffer frame's first buffer must hold for XDP to
 * handle it: every header the data plane reads (Ethernet, IPv6, the ip6tnl
 * encapsulation limit option, IPv4, TCP with options: 142 octets) lies
 * there. Drivers put a page or half a page in the first buffer (veth some
 * 3.5 KiB), so only an odd driver or a crafted test frame has less. */
#define XDPR_MB_LINEAR_MIN 256
/* Octets of the transport header that must follow the IPv6 extension
 * headers in the first buffer: a TCP header with options; also covers an
 * ICMPv6 error's embedded IPv6 header (8 + 40), which NPT rewrites. */
#define XDPR_MB_L4_MIN 60

/* TCX verdicts (linux/bpf.h from 6.6; Debian 12's headers predate them).
 * A TC program of xdprouter's returns TCX_NEXT for every packet that is
 * not its own, never TC_ACT_OK: under tcx that means "pass, and stop", so
 * the programs attached after it (NPT's after the tunnel's on a shared WAN)
 * would never see the packet. On a classic clsact filter TCX_NEXT is
 * TC_ACT_UNSPEC, which goes on to the next filter as well. */
#ifndef TCX_NEXT
#define TCX_NEXT -1
#define TCX_PASS 0
#define TCX_DROP 2
#endif

#endif
