package control

import (
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

// NFTables keeps xdprouter's NAT44 rules in an nftables table of its own
// ("ip xdprouter"), so that other rulesets are never touched. Each Set
// replaces the whole table in one atomic nft transaction.
type NFTables struct{}

const nftTable = "xdprouter"

// natScript is the nft input for rules: declaring the table first makes
// the delete succeed whether or not it existed.
func natScript(rules []NATRule) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s\ndelete table ip %s\n", nftTable, nftTable)
	if len(rules) == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "table ip %s {\n\tchain postrouting {\n", nftTable)
	b.WriteString("\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	for _, r := range rules {
		fmt.Fprintf(&b, "\t\toifname %q snat to %s\n", r.Ifname, r.Addr)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// Set makes rules the NAT44 rules; none removes the table.
func (NFTables) Set(rules []NATRule) error {
	nft, err := exec.LookPath("nft")
	if err != nil {
		if len(rules) == 0 {
			return nil // no nftables, so no table of ours either
		}
		return fmt.Errorf("nat44 needs nftables (the nft command, Debian package nftables): %w", err)
	}
	cmd := exec.Command(nft, "-f", "-")
	cmd.Stdin = strings.NewReader(natScript(rules))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f - (table ip %s): %w: %s", nftTable, err, strings.TrimSpace(string(out)))
	}
	return nil
}
