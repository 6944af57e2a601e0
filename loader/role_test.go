package loader

import "testing"

func TestParseRole(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Role
		ok   bool
	}{
		{"wan", RoleWAN, true},
		{"lan", RoleLAN, true},
		{"none", RoleNone, true},
		{"WAN", 0, false},
		{"", 0, false},
	} {
		got, err := ParseRole(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseRole(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("Role(%d).String() = %q, want %q", got, got.String(), tc.in)
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"auto", "native", "generic"} {
		if m, err := ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	if _, err := ParseMode("skb"); err == nil {
		t.Error("ParseMode(skb) accepted")
	}
}

// The names come from BTF; every enum slot must have one, and they must be
// distinct, or `stats` would print blanks or merge counters.
func TestCounterNames(t *testing.T) {
	names, err := CounterNames()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != int(routerXdprCounterXDPR_CNT__MAX) {
		t.Fatalf("%d names for %d counters", len(names), routerXdprCounterXDPR_CNT__MAX)
	}
	seen := map[string]bool{}
	for i, n := range names {
		if n == "" || seen[n] {
			t.Errorf("counter %d: empty or duplicate name %q", i, n)
		}
		seen[n] = true
	}
	if names[routerXdprCounterXDPR_CNT_FWD_IPV4] != "fwd_ipv4" || names[routerXdprCounterXDPR_CNT_PASS_NO_NEIGH] != "pass_no_neigh" {
		t.Errorf("names out of enum order: %v", names)
	}
}

func TestCString(t *testing.T) {
	b := [16]int8{'e', 't', 'h', '0'}
	if s := cString(b[:]); s != "eth0" {
		t.Errorf("cString = %q", s)
	}
	full := [3]int8{'a', 'b', 'c'}
	if s := cString(full[:]); s != "abc" {
		t.Errorf("cString without NUL = %q", s)
	}
}

// The counter maps keep one size in every version (enum
// xdpr_counter_layout), so that a version that adds counters opens the
// maps an earlier one pinned and an upgrade stays hitless. The literals are
// that contract: the sizes of the pins earlier versions leave.
func TestCounterMapsKeepTheirSize(t *testing.T) {
	spec, err := loadRouter()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"xdpr_counters": 512, "xdpr_tc_counters": 128} {
		if got := spec.Maps[name].MaxEntries; got != want {
			t.Errorf("%s holds %d entries, want %d (a pinned map of another size is refused on upgrade)", name, got, want)
		}
	}
	if n := int(routerXdprCounterXDPR_CNT__MAX); n > int(routerXdprCounterLayoutXDPR_EV_BASE) {
		t.Errorf("%d packet counters run into the events at %d", n, routerXdprCounterLayoutXDPR_EV_BASE)
	}
}
