package control

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// NATRule masquerades what leaves by a tunnel netdev to its fixed IPv4
// address.
type NATRule struct {
	Ifname string
	Addr   netip.Addr
}

// NFTables keeps xdprouter's nftables state in tables of its own ("ip
// xdprouter" for NAT44, "inet xdprouter" for the firewall), so that other
// rulesets are never touched. Each Set replaces both tables in one atomic
// nft transaction: when nft fails, the previous state stays whole.
type NFTables struct{}

// Set makes rs xdprouter's nftables state; nil removes both tables.
func (n NFTables) Set(rs *Ruleset) error {
	_, err := n.Apply(rs)
	return err
}

// Apply makes rs xdprouter's nftables state and says whether it changed
// anything. Each table carries the digest of the ruleset it was made
// from in its comment: an unchanged ruleset is left alone (a reconcile
// pass runs at every RA), a changed one replaced with the counters'
// values carried over.
func (NFTables) Apply(rs *Ruleset) (bool, error) {
	nft, err := exec.LookPath("nft")
	if err != nil {
		if rs.empty() {
			return false, nil // no nftables, so no table of ours either
		}
		return false, fmt.Errorf("nat44, port forwards and the firewall need nftables (the nft command, Debian package nftables; "+
			"or firewall.mode: off without nat44): %w", err)
	}
	want := rs.digest()
	comments, err := tableDigests(nft)
	if err != nil {
		return false, err
	}
	if (len(comments) == 0 && rs.empty()) || (len(comments) > 0 && allEqual(comments, want)) {
		return false, nil
	}
	prev, err := readCounters(nft)
	if err != nil {
		return false, err
	}
	cmd := exec.Command(nft, "-f", "-")
	cmd.Stdin = strings.NewReader(rs.script(prev))
	if out, err := cmd.CombinedOutput(); err != nil {
		return false, fmt.Errorf("nft -f - (tables ip/inet %s): %w: %s", nftTable, err, strings.TrimSpace(string(out)))
	}
	return true, nil
}

func (rs *Ruleset) empty() bool {
	return rs == nil || (len(rs.NAT) == 0 && len(rs.Forwards) == 0 && rs.Firewall == nil && !rs.TrackOnly)
}

// digest identifies the ruleset (counters aside), for the tables'
// comments.
func (rs *Ruleset) digest() string {
	sum := sha256.Sum256([]byte(rs.rules(nil, "")))
	return "xdprouter ruleset " + hex.EncodeToString(sum[:8])
}

// tableDigests reads the comment of each of xdprouter's tables present.
// From the text listing: nft 1.0.6's JSON leaves table comments out.
func tableDigests(nft string) ([]string, error) {
	var out []string
	for _, fam := range []string{"ip", "inet"} {
		cmd := exec.Command(nft, "-t", "list", "table", fam, nftTable)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		text, err := cmd.Output()
		if err != nil {
			if strings.Contains(stderr.String(), "No such file or directory") {
				continue
			}
			return nil, fmt.Errorf("nft list table %s %s: %w: %s", fam, nftTable, err, strings.TrimSpace(stderr.String()))
		}
		comment := ""
		for _, line := range strings.Split(string(text), "\n") {
			if c, ok := strings.CutPrefix(strings.TrimSpace(line), "comment "); ok && strings.HasPrefix(c, `"xdprouter ruleset`) {
				comment = strings.Trim(c, `"`)
				break
			}
		}
		out = append(out, comment)
	}
	return out, nil
}

func allEqual(ss []string, v string) bool {
	for _, s := range ss {
		if s != v {
			return false
		}
	}
	return true
}

// nftJSON is the part of `nft -j list ...` output xdprouter reads.
type nftJSON struct {
	Nftables []struct {
		Counter *nftCounter `json:"counter"`
		Rule    *nftRule    `json:"rule"`
		Table   *struct {
			Family string `json:"family"`
			Name   string `json:"name"`
		} `json:"table"`
	} `json:"nftables"`
}

type nftCounter struct {
	Family  string `json:"family"`
	Table   string `json:"table"`
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

type nftRule struct {
	Family  string            `json:"family"`
	Table   string            `json:"table"`
	Chain   string            `json:"chain"`
	Comment string            `json:"comment"`
	Expr    []json.RawMessage `json:"expr"`
}

// listJSON runs `nft -j list ARGS` and decodes it; a missing table is an
// empty answer, not an error.
func listJSON(nft string, args ...string) (nftJSON, error) {
	var out nftJSON
	cmd := exec.Command(nft, append([]string{"-j", "list"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	data, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "No such file or directory") {
			return out, nil
		}
		return out, fmt.Errorf("nft -j list %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("nft -j list %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// readCounters returns the values of xdprouter's named counters by
// "family/name".
func readCounters(nft string) (map[string]CounterValue, error) {
	out := map[string]CounterValue{}
	js, err := listJSON(nft, "counters")
	if err != nil {
		return nil, err
	}
	for _, o := range js.Nftables {
		if c := o.Counter; c != nil && c.Table == nftTable {
			out[c.Family+"/"+c.Name] = CounterValue{c.Packets, c.Bytes}
		}
	}
	return out, nil
}
