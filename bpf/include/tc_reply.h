/* The TC half of answering on a port XDP cannot transmit to: a veth whose
 * peer has neither GRO nor an XDP program has no NAPI, and a veth hands
 * XDP_TX and redirected frames only to its peer's NAPI, so they would be
 * dropped. XDP builds the answer (an NA of the NDP proxy) in place as
 * always, marks it with XDPR_META_REPLY in the XDP metadata and passes it;
 * this program, at TCX ingress of that port, sends it back out (egress of
 * the same device: the skb path, which reaches a peer without NAPI). The
 * loader attaches it only to such ports, before it tells XDP to use it. */
#ifndef XDPR_TC_REPLY_H
#define XDPR_TC_REPLY_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "consts.h"
#include "maps.h"

SEC("tcx/ingress")
int xdpr_tc_reply(struct __sk_buff *skb)
{
	void *meta = (void *)(long)skb->data_meta, *data = (void *)(long)skb->data;

	/* Metadata comes only from an XDP program on this device: a frame
	 * from the wire has none. */
	if (meta + sizeof(__u32) > data || *(__u32 *)meta != XDPR_META_REPLY)
		return TCX_NEXT;
	tc_count(XDPR_TC_REPLY, skb->len, 0);
	return bpf_redirect(skb->ifindex, 0);
}

#endif
