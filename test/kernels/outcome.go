package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Outcome of one test or one cell.
const (
	Pass  = "pass"
	Fail  = "fail"
	NA    = "n/a"   // not available: every test of the cell skipped, or none exists yet
	Error = "error" // the row did not run (boot or harness failure)
)

// TestResult is one top-level test as test2json reported it.
type TestResult struct {
	Pkg     string  `json:"pkg"`
	Name    string  `json:"name"`
	Outcome string  `json:"outcome"`
	Seconds float64 `json:"seconds"`
	Reason  string  `json:"reason,omitempty"` // skip message or first failure line
}

type event struct {
	Action  string
	Test    string
	Elapsed float64
	Output  string
}

// parseEvents reads `go tool test2json` output and returns the top-level
// tests of pkg by name. Subtests fold into their parent: a cell is decided
// by the tests the matrix names.
func parseEvents(pkg string, r io.Reader) (map[string]*TestResult, error) {
	out := map[string]*TestResult{}
	lines := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("test2json output of %s: %w", pkg, err)
		}
		if e.Test == "" {
			continue
		}
		top, _, _ := strings.Cut(e.Test, "/")
		switch e.Action {
		case "output":
			lines[top] = append(lines[top], strings.TrimRight(e.Output, "\n"))
		case Pass, Fail, "skip":
			if e.Test != top {
				continue
			}
			res := &TestResult{Pkg: pkg, Name: top, Outcome: e.Action, Seconds: e.Elapsed}
			if res.Seconds == 0 {
				res.Seconds = elapsed(top, lines[top])
			}
			if e.Action == "skip" {
				res.Outcome = NA
			}
			res.Reason = reason(res.Outcome, lines[top])
			out[top] = res
		}
	}
	return out, sc.Err()
}

var (
	fileLine = regexp.MustCompile(`^\s+\S+\.go:\d+: `)
	endLine  = regexp.MustCompile(`^--- (?:PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)
)

// elapsed reads a test's time from its "--- PASS: Name (1.23s)" line,
// for the events that test2json leaves without one (seen when it
// converts a binary's -test.v=test2json output after the fact).
func elapsed(name string, lines []string) float64 {
	for _, l := range lines {
		if m := endLine.FindStringSubmatch(strings.TrimLeft(l, "\x16")); m != nil && m[1] == name {
			s, _ := strconv.ParseFloat(m[2], 64)
			return s
		}
	}
	return 0
}

// reason picks the message that explains an outcome: the last
// "file.go:N:" message of the test (a t.Fatal's, or the last t.Error's;
// earlier ones are often t.Logf), or the skip message. A message that
// goes on over more lines (a verifier log) gets its last telling line
// added. Long reasons are cut.
func reason(outcome string, lines []string) string {
	if outcome != Fail && outcome != NA {
		return ""
	}
	start := -1
	for i, l := range lines {
		if fileLine.MatchString(l) {
			start = i
		}
	}
	if start < 0 {
		for _, l := range lines {
			if strings.Contains(l, "panic:") || strings.Contains(l, "test timed out") {
				return cut(strings.TrimSpace(l))
			}
		}
		return ""
	}
	pick := strings.TrimSpace(lines[start])
	for _, l := range slices.Backward(lines[start+1:]) {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "---") || strings.HasPrefix(t, "===") || strings.HasPrefix(t, "processed ") {
			continue
		}
		pick += " … " + t
		break
	}
	return cut(pick)
}

func cut(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// Cell is one kernel × feature.
type Cell struct {
	Outcome string        `json:"outcome"`
	Note    string        `json:"note,omitempty"`
	Tests   []*TestResult `json:"tests"`
}

// decide computes a cell from the results of the feature's tests: fail if
// any failed or gave no result, pass if at least one passed and none
// failed (skipped ones are noted), n/a if all skipped or none exists in
// this tree (exists says which do, from -test.list).
func decide(sel []TestRef, results map[string]map[string]*TestResult, exists map[string][]string) Cell {
	var c Cell
	var passed, failed, skipped []string
	for _, ref := range sel {
		names := exists[ref.Pkg+"\x00"+ref.Name]
		if len(names) == 0 {
			skipped = append(skipped, fmt.Sprintf("%s: no test %s%s in this tree", ref.Pkg, ref.Name, map[bool]string{true: "*"}[ref.Prefix]))
			continue
		}
		for _, n := range names {
			r := results[ref.Pkg][n]
			if r == nil {
				r = &TestResult{Pkg: ref.Pkg, Name: n, Outcome: Fail, Reason: "no result (the test binary ended before reporting it)"}
			}
			c.Tests = append(c.Tests, r)
			switch r.Outcome {
			case Pass:
				passed = append(passed, n)
			case NA:
				skipped = append(skipped, n+" skipped: "+r.Reason)
			default:
				failed = append(failed, n+": "+r.Reason)
			}
		}
	}
	switch {
	case len(failed) > 0:
		c.Outcome, c.Note = Fail, strings.Join(failed, "; ")
	case len(passed) > 0:
		c.Outcome, c.Note = Pass, strings.Join(skipped, "; ")
	default:
		c.Outcome, c.Note = NA, strings.Join(skipped, "; ")
	}
	return c
}
