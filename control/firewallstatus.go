package control

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
)

// FirewallStatus is what the kernel holds of xdprouter's nftables state,
// read back rather than recomputed from the config, so that status shows
// what is in force (also without a daemon).
type FirewallStatus struct {
	// Mode is "default" when table inet xdprouter is present, "off"
	// when it is not (firewall.mode: off, or nothing applied yet).
	Mode   string   `json:"mode"`
	Tables []string `json:"tables"` // e.g. "inet xdprouter", "ip xdprouter"
	// Rules summarise the ruleset: each rule's chain and comment, in
	// order, with the named counter it updates.
	Rules    []FirewallRule    `json:"rules,omitempty"`
	Counters []FirewallCounter `json:"counters,omitempty"`
	// Error says why the tables could not be read (Mode is then
	// "unknown").
	Error string `json:"error,omitempty"`
}

// FirewallRule is one rule of xdprouter's tables.
type FirewallRule struct {
	Table   string `json:"table"` // "inet xdprouter"
	Chain   string `json:"chain"`
	Comment string `json:"comment,omitempty"`
	Counter string `json:"counter,omitempty"`
}

// FirewallCounter is one named counter: a drop reason, a pinhole
// (allow_<i>) or a port forward (forward_<i>).
type FirewallCounter struct {
	Table   string `json:"table"`
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// ReadFirewall reads xdprouter's tables with `nft -j`; nil without nft.
// A failure to read is reported in the status, not instead of it: the
// rest of `xdprouter status` is still worth showing.
func ReadFirewall() *FirewallStatus {
	nft, err := exec.LookPath("nft")
	if err != nil {
		return nil
	}
	st := &FirewallStatus{Mode: "off"}
	for _, fam := range []string{"inet", "ip"} {
		js, err := listJSON(nft, "table", fam, nftTable)
		if err != nil {
			return &FirewallStatus{Mode: "unknown", Error: err.Error()}
		}
		st.add(fam, js)
	}
	return st
}

func (st *FirewallStatus) add(fam string, js nftJSON) {
	table := fam + " " + nftTable
	for _, o := range js.Nftables {
		switch {
		case o.Table != nil:
			if !slices.Contains(st.Tables, table) {
				st.Tables = append(st.Tables, table)
			}
			if fam == "inet" {
				st.Mode = "default"
			}
		case o.Counter != nil:
			st.Counters = append(st.Counters, FirewallCounter{Table: table, Name: o.Counter.Name,
				Packets: o.Counter.Packets, Bytes: o.Counter.Bytes})
		case o.Rule != nil:
			r := FirewallRule{Table: table, Chain: o.Rule.Chain, Comment: o.Rule.Comment}
			for _, e := range o.Rule.Expr {
				// A named counter reference is {"counter": "name"}; an
				// anonymous one carries an object instead.
				var ref struct {
					Counter json.RawMessage `json:"counter"`
				}
				if json.Unmarshal(e, &ref) == nil && len(ref.Counter) > 0 {
					var name string
					if json.Unmarshal(ref.Counter, &name) == nil {
						r.Counter = name
					}
				}
			}
			st.Rules = append(st.Rules, r)
		}
	}
}

// Counter returns a named counter of table inet xdprouter (or ip
// xdprouter for forward_<i>).
func (st *FirewallStatus) Counter(name string) (FirewallCounter, error) {
	for _, c := range st.Counters {
		if c.Name == name {
			return c, nil
		}
	}
	return FirewallCounter{}, fmt.Errorf("no counter %q in xdprouter's tables", name)
}
