package config

// Raw structs mirror the YAML file one to one. Decoding is strict (unknown
// keys are errors, see keys.go); Validate turns them into the typed Config.
// Pointer fields distinguish "absent" from a zero value, so defaults apply
// only to what the user did not write.

type rawConfig struct {
	WAN      *rawWAN       `yaml:"wan"`
	LAN      []rawLAN      `yaml:"lan"`
	Tunnels  []rawTunnel   `yaml:"tunnels"`
	NPT      []rawNPT      `yaml:"npt"`
	NDPProxy []rawNDPProxy `yaml:"ndp-proxy"`
	Firewall *rawFirewall  `yaml:"firewall"`
	// PolicyRouting: policyrouting.go; Delegations: delegations.go.
	PolicyRouting *rawPolicyRouting `yaml:"policy-routing"`
	Delegations   []rawDelegation   `yaml:"delegations"`
}

type rawWAN struct {
	Interface string       `yaml:"interface"`
	Token     *string      `yaml:"token"`
	DHCPv6PD  *rawDHCPv6PD `yaml:"dhcpv6-pd"`
	XDPMode   *string      `yaml:"xdp-mode"`
}

type rawDHCPv6PD struct {
	PrefixLengthHint *int `yaml:"prefix-length-hint"`
}

type rawLAN struct {
	Interface string  `yaml:"interface"`
	SLAID     *int    `yaml:"sla-id"`
	Token     *string `yaml:"token"`
	IPv4      *string `yaml:"ipv4"`
	XDPMode   *string `yaml:"xdp-mode"`
}
