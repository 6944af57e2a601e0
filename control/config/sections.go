package config

import "fmt"

// Sections whose data-plane features are still being built are recognised
// (so their keys are not "unknown") but refused with a clear message rather
// than accepted and silently ignored.

type rawTunnel map[string]any

// Tunnel is filled by the section's validator.
type Tunnel struct{}

func (r *rawConfig) validateSections(c *Config) []error {
	var errs []error
	if len(r.Tunnels) > 0 {
		errs = append(errs, fmt.Errorf("tunnels: not supported by this version of xdprouter yet"))
	}
	errs = append(errs, r.validateNPT(c)...)
	errs = append(errs, r.validateNDPProxy(c)...)
	return errs
}
