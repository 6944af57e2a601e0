package loader

// Issue 13 item 8: how XDP transmits through a port whose veth peer has
// NAPI (answers by redirect) or has not (out of xdpr_tx_ports: forwarded
// frames go to the kernel; NDP answers are passed marked for TC; ICMP
// errors are the kernel's).

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/xdprouter/xdprouter/loader/vethnapi"
)

func TestPlanFor(t *testing.T) {
	for _, c := range []struct {
		name string
		port vethnapi.Port
		path TXPath
		warn bool
		note string
	}{
		{"a nic", vethnapi.Port{Name: "eth0", NAPI: vethnapi.Unknown}, TXXDP, false, ""},
		{"veth, peer with NAPI", vethnapi.Port{Name: "lan0", Veth: true, NAPI: vethnapi.Yes}, TXRedirect, false, "answers leave by redirect"},
		{"veth, peer without", vethnapi.Port{Name: "lan0", Veth: true, NAPI: vethnapi.No, Peer: "lan0p"}, TXKernel, true, "ethtool -K lan0p gro on"},
		{"veth, peer elsewhere without", vethnapi.Port{Name: "lan0", Veth: true, NAPI: vethnapi.No, PeerOtherNS: true}, TXKernel, true, "ethtool -K PEER gro on"},
		// Before 6.3, with the peer's namespace out of sight: the kernel
		// path, where nothing is lost (it was redirect, and a peer
		// without NAPI lost everything: the matrix's 6.1 row).
		{"veth, cannot tell", vethnapi.Port{Name: "lan0", Veth: true, NAPI: vethnapi.Unknown, PeerOtherNS: true,
			UnknownWhy: "no network namespace with that id"}, TXKernel, true, "cannot tell whether the veth peer has NAPI (this kernel reports no xdp-features; no network namespace with that id)"},
	} {
		p := planFor(c.port)
		if p.path != c.path || p.warn != c.warn || !strings.Contains(p.note, c.note) {
			t.Errorf("%s: %+v, want path %s, warning %v, a note with %q", c.name, p, c.path, c.warn, c.note)
		}
	}
}

// setTX puts the port ifname on path in the test maps: its xdpr_ifaces
// entry and its devmap memberships (setTxPorts), as applyTX does (the TC
// side is the lab tests').
func (rl *routerLab) setTX(t testing.TB, ifname string, path TXPath) {
	t.Helper()
	d := &Dataplane{maps: *rl.maps}
	ifindex := rl.ifindex[ifname]
	err := rl.lab.Do(rl.ns, func() error {
		e, ok := d.iface(ifindex)
		if !ok {
			return errorf("%s not in xdpr_ifaces", ifname)
		}
		e.TxPath = path.value()
		if err := d.putIface(e); err != nil {
			return err
		}
		_, _, err := setTxPorts(rl.maps, ifindex, path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runMeta runs the program like runOnce and also returns the XDP
// metadata the program left in front of the frame.
func (rl *routerLab) runMeta(frame []byte, ingress string) (uint32, []byte, []byte, []routerXdprCounterVal, error) {
	before, err := counterSnapshot(rl.maps.XdprCounters)
	if err != nil {
		return 0, nil, nil, nil, err
	}
	var ctxOut xdpMD
	opts := ebpf.RunOptions{
		Data:       frame,
		DataOut:    make([]byte, len(frame)+256),
		Context:    xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(rl.ifindex[ingress])},
		ContextOut: &ctxOut,
		Repeat:     1,
	}
	verdict, err := rl.progs[ingress].Run(&opts)
	if err != nil {
		return 0, nil, nil, nil, err
	}
	after, err := counterSnapshot(rl.maps.XdprCounters)
	if err != nil {
		return 0, nil, nil, nil, err
	}
	for i := range after {
		after[i].Packets -= before[i].Packets
		after[i].Bytes -= before[i].Bytes
	}
	// The output starts at the metadata; ctx.data is the frame's offset.
	out := opts.DataOut
	if int(ctxOut.Data) > len(out) || ctxOut.DataEnd < ctxOut.Data || int(ctxOut.DataEnd) > len(out) {
		return 0, nil, nil, nil, errorf("context out %+v for %d bytes", ctxOut, len(out))
	}
	return verdict, out[ctxOut.Data:ctxOut.DataEnd], out[:ctxOut.Data], after, nil
}

func TestNDPProxyTXPaths(t *testing.T) { checkNDPProxyTXPaths(t, 0) }

// checkNDPProxyTXPaths sends a solicitation followed by trailing octets
// (a multi-buffer frame when they are many) on every transmit path of
// wan0 and expects the same one-buffer advertisement: XDP_TX, a redirect
// to the port, or passed with the reply mark for TC.
func checkNDPProxyTXPaths(t *testing.T, trailing int) {
	rl := newRouterLab(t)
	rl.setNDP(t)
	ns := nsSpec{target: "3fff:64:1:2::abcd"}.build(t)
	na := modelNA(t, ns, mustMAC(labIfaceByName("wan0").mac))
	ns = append(ns, make([]byte, trailing)...)
	magic := binary.NativeEndian.AppendUint32(nil, uint32(routerXdprMetaXDPR_META_REPLY))
	for _, c := range []struct {
		path    TXPath
		verdict uint32
		meta    []byte
		counter string
	}{
		{TXXDP, xdpTX, nil, "tx_ndp_na"},
		{TXRedirect, xdpRedirect, nil, "tx_ndp_na_redirect"},
		{TXKernel, xdpPass, magic, "pass_ndp_na_tc"},
	} {
		t.Run(string(c.path), func(t *testing.T) {
			rl.setTX(t, "wan0", c.path)
			want := rl.counterIndex(t, c.counter)
			err := rl.lab.Do(rl.ns, func() error {
				verdict, out, meta, delta, err := rl.runMeta(ns, "wan0")
				if err != nil {
					return err
				}
				if verdict != c.verdict {
					t.Errorf("verdict %s, want %s", verdictName(verdict), verdictName(c.verdict))
				}
				if !bytes.Equal(out, na) {
					t.Errorf("output frame differs: %s", diffBytes(out, na))
				}
				if !bytes.Equal(meta, c.meta) {
					t.Errorf("metadata % x, want % x", meta, c.meta)
				}
				return rl.checkCounters(delta, want, len(na))
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A frame XDP would redirect to a port it cannot transmit to goes to the
// kernel untouched, whichever path would have sent it there.
func TestEgressWithoutNAPI(t *testing.T) {
	rl, _ := newTunnelRouterLab(t)
	local := tunLocal.String()
	remote0 := labTunnelByName("t0").remote
	toHost := udp4(t, "198.51.100.9", "10.0.1.2", to(wanMAC), from(gwMAC))
	big := udp4(t, "10.0.1.2", "100.100.1.1", totalLen(1461))
	for _, c := range []struct {
		name, ingress, port string
		frame               []byte
		counter             string
	}{
		{"ipv4 forward", "lan0", "wan0", udp4(t, "10.0.1.2", "198.51.100.9"), "pass_egress_no_napi"},
		{"ipv6 forward", "lan0", "wan0", udp6(t, "2001:db8:1::2", "2001:db8:100::9"), "pass_egress_no_napi"},
		{"encapsulation", "lan0", "wan0", udp4(t, "10.0.1.2", "100.100.1.1"), "pass_egress_no_napi"},
		{"decapsulation", "wan0", "lan0", ipip6(toHost, remote0, local, 0), "pass_egress_no_napi"},
		{"frag needed back out of the ingress", "lan0", "lan0", big, "pass_icmp_no_napi"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rl.setTX(t, c.port, TXKernel)
			defer rl.setTX(t, c.port, TXRedirect)
			want := rl.counterIndex(t, c.counter)
			err := rl.lab.Do(rl.ns, func() error {
				verdict, out, delta, err := rl.runOnce(c.frame, c.ingress)
				if err != nil {
					return err
				}
				if verdict != xdpPass || !bytes.Equal(out, c.frame) {
					t.Errorf("verdict %s, frame %s: want XDP_PASS, untouched", verdictName(verdict), diffBytes(out, c.frame))
				}
				return rl.checkCounters(delta, want, len(c.frame))
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
