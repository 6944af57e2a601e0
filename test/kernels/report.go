package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Report is what a run saves, as JSON and as Markdown.
type Report struct {
	Date     time.Time `json:"date"`
	Commit   string    `json:"commit"`
	Subset   string    `json:"subset"`        // "full" or "ci"
	Only     string    `json:"run,omitempty"` // -run: only the tests matching it ran; the others show as n/a
	Accel    Accel     `json:"accel"`
	Seconds  float64   `json:"seconds"`
	Features []Feature `json:"features"`
	Rows     []*Row    `json:"rows"`
}

func (r *Report) cellsOf(row *Row, p *Plan) {
	row.Cells = map[string]Cell{}
	for _, f := range features {
		if row.results == nil && row.Status != "ok" {
			row.Cells[f.Key] = Cell{Outcome: Error, Note: "the row did not run: " + row.Status}
			continue
		}
		row.Cells[f.Key] = decide(p.Selected[f.Key], row.results, p.Exists)
	}
}

func duration(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}

// Markdown is the table (kernels × features) and the notes that explain
// every fail, n/a and partial pass.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Kernel matrix, %s\n\n", r.Date.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Commit %s, %s subset, %s in all. Guests: %s (%s).\n\n", r.Commit, r.Subset, duration(r.Seconds), r.Accel.Name, r.Accel.Reason)
	if r.Only != "" {
		fmt.Fprintf(&b, "Only the tests matching `%s` ran (-run); the others show as n/a.\n\n", r.Only)
	}
	b.WriteString(r.Table())
	b.WriteString("\n## Rows\n\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "- **%s**: %s", row.Name, row.Release)
		if row.Package != "" {
			fmt.Fprintf(&b, ", Debian package %s %s from %s", row.Package, row.Version, row.Suite)
		}
		fmt.Fprintf(&b, "; %s, %s", row.Mode, duration(row.Seconds))
		if row.Status != "ok" {
			fmt.Fprintf(&b, "; **did not finish**: %s", row.Status)
		}
		if row.Note != "" {
			fmt.Fprintf(&b, "; %s", row.Note)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n## Notes\n\n")
	for _, row := range r.Rows {
		for _, f := range features {
			c := row.Cells[f.Key]
			if c.Note == "" {
				continue
			}
			fmt.Fprintf(&b, "- %s, %s, %s: %s\n", row.Name, f.Title, c.Outcome, mdEscape(c.Note))
		}
	}
	b.WriteString("\n## Tests per feature\n\n")
	for _, f := range features {
		var names []string
		for _, t := range f.Tests {
			n := t.Pkg + " " + t.Name
			if t.Prefix {
				n += "*"
			}
			if t.CI {
				n += " (ci)"
			}
			names = append(names, n)
		}
		fmt.Fprintf(&b, "- %s: %s\n", f.Title, strings.Join(names, ", "))
	}
	return b.String()
}

// Table is the matrix alone, as a Markdown table (also what the run prints).
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| kernel | mode | time |")
	for _, f := range features {
		fmt.Fprintf(&b, " %s |", f.Title)
	}
	b.WriteString("\n|---|---|---:|")
	for range features {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s %s | %s | %s |", row.Name, row.Release, row.Mode, duration(row.Seconds))
		for _, f := range features {
			c := row.Cells[f.Key]
			o := c.Outcome
			if o == Fail || o == Error {
				o = "**" + strings.ToUpper(o) + "**"
			}
			if c.Outcome == Pass && c.Note != "" {
				o += " (partly skipped)"
			}
			fmt.Fprintf(&b, " %s |", o)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// Save writes <stamp>.json and .md, and latest.json and .md, under dir.
func (r *Report) Save(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	md := []byte(r.Markdown())
	stamp := r.Date.UTC().Format("20060102T150405Z")
	var paths []string
	for _, name := range []string{stamp, "latest"} {
		for ext, data := range map[string][]byte{".json": append(js, '\n'), ".md": md} {
			p := filepath.Join(dir, name+ext)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return nil, err
			}
			paths = append(paths, p)
		}
	}
	return paths, nil
}
