package vethnapi

import (
	"encoding/binary"
	"testing"

	"github.com/vishvananda/netlink/nl"
)

// The genetlink header has a reserved field the kernel wants zero:
// nl.Genlmsg serializes whatever memory follows its 2-byte struct there.
func TestGenlHeader(t *testing.T) {
	h := genlHeader{cmd: netdevCmdDevGet, version: 1}
	if b := h.Serialize(); len(b) != h.Len() || b[0] != 1 || b[1] != 1 || b[2] != 0 || b[3] != 0 {
		t.Fatalf("header %x", b)
	}
}

// A dev-change-ntf message (genetlink header, then attributes) gives the
// ifindex and the xdp-features; a removal carries none.
func TestChangeOf(t *testing.T) {
	msg := func(attrs ...*nl.RtAttr) []byte {
		b := genlHeader{cmd: 4, version: 1}.Serialize()
		for _, a := range attrs {
			b = append(b, a.Serialize()...)
		}
		return b
	}
	u32 := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
	c, ok := changeOf(msg(nl.NewRtAttr(netdevAttrIfindex, u32(7)), nl.NewRtAttr(netdevAttrXDPFeats, u64(0b1100111))))
	if !ok || c.Ifindex != 7 || !c.Known || c.XDPFeatures&NDOXmit == 0 {
		t.Errorf("change %+v %v", c, ok)
	}
	c, ok = changeOf(msg(nl.NewRtAttr(netdevAttrIfindex, u32(8))))
	if !ok || c.Ifindex != 8 || c.Known {
		t.Errorf("removal %+v %v", c, ok)
	}
	if _, ok := changeOf(msg(nl.NewRtAttr(netdevAttrXDPFeats, u64(1)))); ok {
		t.Error("a message without an ifindex was taken")
	}
	if _, ok := changeOf([]byte{1}); ok {
		t.Error("a short message was taken")
	}
}
