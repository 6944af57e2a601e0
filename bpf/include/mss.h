/* TCP MSS clamping for SYN and SYN-ACK crossing a tunnel, so that neither
 * end sends segments larger than the tunnel MTU allows (mtu - 40). */
#ifndef XDPR_MSS_H
#define XDPR_MSS_H

#include <linux/types.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOLEN_MSS 4

#define TCP_MAX_OPTLEN 40

/* The options are copied to the stack and walked by bpf_loop: a walk over
 * packet memory with a variable step makes the verifier explore every
 * combination of option lengths. */
struct mss_scan {
	__u8 opt[TCP_MAX_OPTLEN];
	__u32 len;   /* option octets copied */
	__u32 off;   /* next option */
	__u32 found; /* offset of the MSS value from the end of the fixed header, +1 */
};

static long mss_scan_step(__u64 i, void *c)
{
	struct mss_scan *s = c;
	__u32 off = s->off;
	__u8 kind, len;

	if (off >= s->len || off >= TCP_MAX_OPTLEN)
		return 1;
	kind = s->opt[off];
	if (kind == TCPOPT_EOL)
		return 1;
	if (kind == TCPOPT_NOP) {
		s->off = off + 1;
		return 0;
	}
	if (off + 1 >= s->len || off + 1 >= TCP_MAX_OPTLEN)
		return 1;
	len = s->opt[off + 1];
	if (len < 2 || off + len > s->len)
		return 1;
	if (kind == TCPOPT_MSS) {
		if (len == TCPOLEN_MSS)
			s->found = off + 2 + 1;
		return 1;
	}
	s->off = off + len;
	return 0;
}

/* tcp_mss_offset returns the offset from the TCP header of the MSS option's
 * value (2 octets), or 0 when the segment carries none or the options are
 * malformed or cut short (then nothing is changed: the receiver judges
 * them). end bounds the TCP header and options. */
static __always_inline __u32 tcp_mss_offset(struct tcphdr *tcp, void *end)
{
	struct mss_scan s = {};
	__u32 n = tcp->doff * 4;
	__u8 *p = (__u8 *)(tcp + 1);

	if (n <= sizeof(*tcp))
		return 0;
	n -= sizeof(*tcp);
#pragma unroll
	for (int i = 0; i < TCP_MAX_OPTLEN; i++) {
		/* No break: the unroller cannot handle one. Both conditions
		 * stay false once false. */
		if (i < n && (void *)(p + i + 1) <= end) {
			s.opt[i] = p[i];
			s.len = i + 1;
		}
	}
	if (s.len != n)
		return 0;
	bpf_loop(TCP_MAX_OPTLEN, mss_scan_step, &s, 0);
	return s.found ? sizeof(*tcp) + s.found - 1 : 0;
}

/* csum16_update is RFC 1624 eqn. 3 for one 16-bit word, in host order. */
static __always_inline __u16 csum16_update(__u16 check, __u16 old, __u16 new)
{
	__u32 s = (__u16)~check + (__u16)~old + (__u32)new;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* xdp_mss_clamp_syn is xdp_mss_clamp for a SYN. Out of line: the copy of
 * the options (struct mss_scan) takes a frame of its own, not a share of
 * the tunnel paths' (loader/stack_test.go), and only SYNs pay the call. */
static __noinline void xdp_mss_clamp_syn(struct tcphdr *tcp, void *end, __u16 max_mss)
{
	__u32 off;
	__u8 *p;
	__u16 mss, old, new;

	off = tcp_mss_offset(tcp, end);
	if (!off || off > 60)
		return;
	p = (__u8 *)tcp + off;
	if ((void *)(p + 2) > end)
		return;
	mss = ((__u16)p[0] << 8) | p[1];
	if (mss <= max_mss)
		return;
	p[0] = max_mss >> 8;
	p[1] = max_mss & 0xff;
	old = mss;
	new = max_mss;
	if (off & 1) {
		old = (old >> 8) | (old << 8);
		new = (new >> 8) | (new << 8);
	}
	tcp->check = bpf_htons(csum16_update(bpf_ntohs(tcp->check), old, new));
}

/* xdp_mss_clamp lowers the MSS of a SYN (or SYN-ACK) to max_mss and updates
 * the TCP checksum incrementally. tcp and end must already be bounded by the
 * caller for sizeof(*tcp). An MSS value at an odd offset sits across two
 * checksum words, so it enters the sum byte-swapped. */
static __always_inline void xdp_mss_clamp(struct tcphdr *tcp, void *end, __u16 max_mss)
{
	if (tcp->syn)
		xdp_mss_clamp_syn(tcp, end, max_mss);
}

#endif
