package ndp

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A Prefix Information option with the R flag (RFC 6275, Section 7.2)
// carries a complete address of the sending router in its prefix field.
// v1.1.0 dropped the flag and masked the field to the prefix, so the
// address was lost.

// piRouterOption is a Prefix Information option built by hand: L, A and R
// set, 2001:db8:1:2::/64, valid 7200 s, preferred 3600 s, the prefix field
// holding the router's 2001:db8:1:2::1.
var piRouterOption = []byte{
	3, 4, 64, 0xe0,
	0, 0, 0x1c, 0x20,
	0, 0, 0x0e, 0x10,
	0, 0, 0, 0,
	0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1,
}

func TestPrefixInformationRouterAddress(t *testing.T) {
	b := append(append([]byte(nil), raHeader...), piRouterOption...)
	m, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	ra := m.(*RouterAdvertisement)
	pi, ok := ra.Options[0].(*PrefixInformation)
	if !ok {
		t.Fatalf("option parsed as %T", ra.Options[0])
	}
	want := PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true, RouterAddress: true,
		ValidLifetime: 2 * time.Hour, PreferredLifetime: time.Hour,
		Prefix: netip.MustParseAddr("2001:db8:1:2::"), Router: netip.MustParseAddr("2001:db8:1:2::1")}
	if *pi != want {
		t.Fatalf("parsed %+v, want %+v", *pi, want)
	}
	out, err := MarshalMessage(ra)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, b) {
		t.Errorf("marshalled back:\n%x\nwant\n%x", out, b)
	}

	// Without the R flag the field is a prefix and nothing more.
	noR := append([]byte(nil), b...)
	noR[len(raHeader)+3] = 0xc0
	m, err = ParseMessage(noR)
	if err != nil {
		t.Fatal(err)
	}
	if pi := m.(*RouterAdvertisement).Options[0].(*PrefixInformation); pi.RouterAddress || pi.Router.IsValid() ||
		pi.Prefix != want.Prefix {
		t.Errorf("without the R flag: %+v", *pi)
	}

	// A router address outside the prefix cannot be marshalled.
	bad := want
	bad.Router = netip.MustParseAddr("2001:db8:1:3::1")
	if _, err := MarshalMessage(&RouterAdvertisement{Options: []Option{&bad}}); err == nil ||
		!strings.Contains(err.Error(), "router address 2001:db8:1:3::1 is not in 2001:db8:1:2::/64") {
		t.Errorf("marshal with a router address outside the prefix: %v", err)
	}
}
