package ndp

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The option Length field counts units of 8 octets, so an option is up to
// 255*8 = 2040 bytes long (RFC 4861, Section 4.6). Lengths of 32 units
// (256 bytes) and more used to overflow in uint8 arithmetic.

// raHeader is a Router Advertisement's ICMPv6 header and body without
// options, built by hand: type 134, code 0, checksum 0, hop limit 64,
// no flags, router lifetime 1800 s, reachable time and retransmit timer 0.
var raHeader = []byte{
	134, 0, 0, 0,
	64, 0, 0x07, 0x08,
	0, 0, 0, 0,
	0, 0, 0, 0,
}

// rawOption builds an option of the given type and length (in units of 8
// octets) by hand, its value filled with a counting pattern.
func rawOption(typ, units uint8) []byte {
	b := make([]byte, int(units)*8)
	b[0], b[1] = typ, units
	for i := 2; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

func TestParseOptionLengthsUpToMaximum(t *testing.T) {
	for units := 1; units <= 255; units++ {
		opt := rawOption(253, uint8(units)) // 253: reserved for experiments (RFC 4727)
		b := append(append([]byte(nil), raHeader...), opt...)
		m, err := ParseMessage(b)
		if err != nil {
			t.Fatalf("length %d units: %v", units, err)
		}
		ra := m.(*RouterAdvertisement)
		want := &RawOption{Type: 253, Length: uint8(units), Value: opt[2:]}
		if len(ra.Options) != 1 {
			t.Fatalf("length %d units: %d options", units, len(ra.Options))
		}
		if diff := cmp.Diff(want, ra.Options[0]); diff != "" {
			t.Fatalf("length %d units (-want +got):\n%s", units, diff)
		}
		// And back to the same bytes.
		out, err := MarshalMessage(ra)
		if err != nil {
			t.Fatalf("length %d units: marshal: %v", units, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("length %d units: marshal gave different bytes", units)
		}
	}
}

func TestRecursiveDNSServerManyServers(t *testing.T) {
	// 127 servers is the most an option holds: 1 + 2*127 = 255 units.
	for _, n := range []int{15, 16, 17, 64, 127} {
		rdnss := &RecursiveDNSServer{Lifetime: 600 * time.Second}
		for i := 0; i < n; i++ {
			rdnss.Servers = append(rdnss.Servers, netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1)))
		}
		b, err := MarshalMessage(&RouterAdvertisement{Options: []Option{rdnss}})
		if err != nil {
			t.Fatalf("%d servers: marshal: %v", n, err)
		}
		if got, want := len(b), len(raHeader)+8+16*n; got != want {
			t.Fatalf("%d servers: %d bytes, want %d", n, got, want)
		}
		if got, want := b[len(raHeader)+1], uint8(1+2*n); got != want {
			t.Fatalf("%d servers: length field %d, want %d", n, got, want)
		}
		m, err := ParseMessage(b)
		if err != nil {
			t.Fatalf("%d servers: parse: %v", n, err)
		}
		if diff := cmp.Diff(rdnss, m.(*RouterAdvertisement).Options[0], cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Fatalf("%d servers (-want +got):\n%s", n, diff)
		}
	}

	// 128 servers do not fit in one option: an error, not a wrapped
	// length.
	rdnss := &RecursiveDNSServer{Lifetime: 600 * time.Second}
	for i := 0; i < 128; i++ {
		rdnss.Servers = append(rdnss.Servers, netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1)))
	}
	if _, err := MarshalMessage(&RouterAdvertisement{Options: []Option{rdnss}}); err == nil {
		t.Fatal("128 servers: marshal succeeded, want an error")
	}
}

func TestDNSSearchListLong(t *testing.T) {
	label := strings.Repeat("a", 63)
	name := strings.Join([]string{label, label, label}, ".") + ".example" // 200 bytes encoded
	for _, n := range []int{1, 2, 5, 9} {
		d := &DNSSearchList{Lifetime: 600 * time.Second}
		for i := 0; i < n; i++ {
			d.DomainNames = append(d.DomainNames, fmt.Sprintf("x%d.%s", i, name))
		}
		b, err := MarshalMessage(&RouterAdvertisement{Options: []Option{d}})
		if err != nil {
			t.Fatalf("%d names: marshal: %v", n, err)
		}
		if got := int(b[len(raHeader)+1]) * 8; got != len(b)-len(raHeader) {
			t.Fatalf("%d names: length field says %d bytes, option is %d", n, got, len(b)-len(raHeader))
		}
		m, err := ParseMessage(b)
		if err != nil {
			t.Fatalf("%d names: parse: %v", n, err)
		}
		if diff := cmp.Diff(d, m.(*RouterAdvertisement).Options[0]); diff != "" {
			t.Fatalf("%d names (-want +got):\n%s", n, diff)
		}
	}

	// Ten names make 2048 bytes: over 2040, they do not fit.
	d := &DNSSearchList{Lifetime: 600 * time.Second}
	for i := 0; i < 10; i++ {
		d.DomainNames = append(d.DomainNames, fmt.Sprintf("x%d.%s", i, name))
	}
	if _, err := MarshalMessage(&RouterAdvertisement{Options: []Option{d}}); err == nil {
		t.Fatal("2048-byte search list: marshal succeeded, want an error")
	}
}

func TestCaptivePortalLongURI(t *testing.T) {
	for _, n := range []int{200, 254, 255, 1000, 2038} {
		cp := &CaptivePortal{URI: "https://" + strings.Repeat("a", n-8)}
		b, err := MarshalMessage(&RouterAdvertisement{Options: []Option{cp}})
		if err != nil {
			t.Fatalf("%d-byte URI: marshal: %v", n, err)
		}
		m, err := ParseMessage(b)
		if err != nil {
			t.Fatalf("%d-byte URI: parse: %v", n, err)
		}
		if diff := cmp.Diff(cp, m.(*RouterAdvertisement).Options[0]); diff != "" {
			t.Fatalf("%d-byte URI (-want +got):\n%s", n, diff)
		}
	}
	cp := &CaptivePortal{URI: "https://" + strings.Repeat("a", 2039-8)}
	if _, err := MarshalMessage(&RouterAdvertisement{Options: []Option{cp}}); err == nil {
		t.Fatal("2039-byte URI: marshal succeeded, want an error")
	}
}

func TestRawOptionMarshalLength(t *testing.T) {
	// A RawOption whose Length disagrees with its value is refused, also
	// where Length*8 wraps around in uint8 arithmetic (32*8 = 256 = 0).
	for _, tt := range []struct {
		units uint8
		value int
		ok    bool
	}{
		{32, 254, true},
		{255, 2038, true},
		{32, 0, false}, // wrapped: 32*8 mod 256 = 0
		{33, 6, false}, // wrapped: 33*8 mod 256 = 8
		{0, 0, false},
	} {
		o := &RawOption{Type: 253, Length: tt.units, Value: make([]byte, tt.value)}
		b, err := o.marshal()
		if (err == nil) != tt.ok {
			t.Fatalf("length %d, %d value bytes: err %v, want ok %v", tt.units, tt.value, err, tt.ok)
		}
		if tt.ok && len(b) != int(tt.units)*8 {
			t.Fatalf("length %d: %d bytes", tt.units, len(b))
		}
	}
}

func TestParseOptionLengthZero(t *testing.T) {
	// RFC 4861, Section 4.6: "Nodes MUST silently discard an ND packet
	// that contains an option with length zero."
	for _, typ := range []uint8{1, 3, 25, 253} {
		b := append(append([]byte(nil), raHeader...), rawOption(5, 1)...)
		b = append(b, typ, 0, 0, 0, 0, 0, 0, 0)
		if _, err := ParseMessage(b); err == nil {
			t.Fatalf("type %d length 0: parsed, want an error", typ)
		}
	}
}
