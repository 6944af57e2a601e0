package lanra

import (
	"net/netip"
	"testing"

	"github.com/mdlayher/ndp"
)

// FuzzRS feeds arbitrary ICMPv6 messages from a LAN to the Router
// Solicitation check the sender answers by: no panic; an accepted one is
// an RS without a source link-layer option when sent from ::. Issue 13
// item 14.
func FuzzRS(f *testing.F) {
	mac := []byte{2, 0, 0, 0, 0, 1}
	for _, m := range []ndp.Message{
		&ndp.RouterSolicitation{},
		&ndp.RouterSolicitation{Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}},
		&ndp.RouterSolicitation{Options: []ndp.Option{&ndp.RawOption{Type: 200, Length: 3, Value: make([]byte, 22)}}},
	} {
		b, err := ndp.MarshalMessage(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
		f.Add(b[:len(b)-1], false)
	}
	f.Add([]byte{rsType, 0, 0, 0, 0, 0, 0, 0, 1, 0}, false)
	f.Fuzz(func(t *testing.T, b []byte, unspecified bool) {
		src := netip.MustParseAddr("fe80::10")
		if unspecified {
			src = netip.IPv6Unspecified()
		}
		if checkRS(b, ndp.HopLimit, src) != "" {
			return
		}
		m, err := ndp.ParseMessage(b)
		if err != nil {
			t.Fatalf("accepted, but does not parse: %v", err)
		}
		rs, ok := m.(*ndp.RouterSolicitation)
		if !ok {
			t.Fatalf("accepted a %T", m)
		}
		if unspecified {
			for _, o := range rs.Options {
				if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Source {
					t.Fatal("accepted from :: with a source link-layer address")
				}
			}
		}
	})
}
