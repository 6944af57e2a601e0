package main

import (
	"strings"
	"testing"
)

// A run as `go tool test2json` reports it: one pass, one failure with a
// multi-line verifier message after a log line, one skip, a subtest.
const events = `{"Action":"run","Test":"TestA"}
{"Action":"output","Test":"TestA","Output":"--- PASS: TestA (0.10s)\n"}
{"Action":"pass","Test":"TestA"}
{"Action":"run","Test":"TestB"}
{"Action":"output","Test":"TestB","Output":"    b_test.go:10: lab: diagram\n"}
{"Action":"run","Test":"TestB/sub"}
{"Action":"output","Test":"TestB/sub","Output":"    b_test.go:20: verifier rejected the program:\n"}
{"Action":"output","Test":"TestB/sub","Output":"        \t218: (0f) r2 += r3\n"}
{"Action":"output","Test":"TestB/sub","Output":"        \tmath between pkt pointer and register with unbounded min value is not allowed\n"}
{"Action":"output","Test":"TestB/sub","Output":"        \tprocessed 176 insns\n"}
{"Action":"fail","Test":"TestB/sub","Elapsed":0.2}
{"Action":"fail","Test":"TestB","Elapsed":0.3}
{"Action":"run","Test":"TestC"}
{"Action":"output","Test":"TestC","Output":"    c_test.go:5: the kernel has no ip6_tunnel\n"}
{"Action":"output","Test":"TestC","Output":"--- SKIP: TestC (0.00s)\n"}
{"Action":"skip","Test":"TestC"}
`

func TestParseEventsAndDecide(t *testing.T) {
	res, err := parseEvents("pkg", strings.NewReader(events))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"TestA": Pass, "TestB": Fail, "TestC": NA} {
		if r := res[name]; r == nil || r.Outcome != want {
			t.Errorf("%s: %+v, want %s", name, r, want)
		}
	}
	if got := res["TestA"].Seconds; got != 0.1 {
		t.Errorf("TestA took %v s, want 0.1 from its --- PASS line", got)
	}
	if _, ok := res["TestB/sub"]; ok {
		t.Errorf("subtest reported on its own: %+v", res)
	}
	wantB := "b_test.go:20: verifier rejected the program: … math between pkt pointer and register with unbounded min value is not allowed"
	if got := res["TestB"].Reason; got != wantB {
		t.Errorf("TestB reason %q, want %q", got, wantB)
	}
	if got := res["TestC"].Reason; got != "c_test.go:5: the kernel has no ip6_tunnel" {
		t.Errorf("TestC reason %q", got)
	}

	all := map[string]map[string]*TestResult{"pkg": res}
	exists := map[string][]string{
		"pkg\x00TestA": {"TestA"}, "pkg\x00TestB": {"TestB"}, "pkg\x00TestC": {"TestC"},
		"pkg\x00TestD": {"TestD"}, "pkg\x00TestJumbo": nil,
	}
	ref := func(n string) TestRef { return TestRef{Pkg: "pkg", Name: n} }
	for _, c := range []struct {
		name string
		refs []TestRef
		want string
		note string
	}{
		{"one passes", []TestRef{ref("TestA")}, Pass, ""},
		{"pass with a skip", []TestRef{ref("TestA"), ref("TestC")}, Pass, "TestC skipped: c_test.go:5: the kernel has no ip6_tunnel"},
		{"a failure wins", []TestRef{ref("TestA"), ref("TestB"), ref("TestC")}, Fail, "TestB: " + wantB},
		{"all skipped", []TestRef{ref("TestC")}, NA, "TestC skipped: c_test.go:5: the kernel has no ip6_tunnel"},
		{"no such test yet", []TestRef{{Pkg: "pkg", Name: "TestJumbo", Prefix: true}}, NA, "pkg: no test TestJumbo* in this tree"},
		{"listed but no result", []TestRef{ref("TestA"), ref("TestD")}, Fail, "TestD: no result (the test binary ended before reporting it)"},
	} {
		got := decide(c.refs, all, exists)
		if got.Outcome != c.want || got.Note != c.note {
			t.Errorf("%s: %s %q, want %s %q", c.name, got.Outcome, got.Note, c.want, c.note)
		}
	}
}
