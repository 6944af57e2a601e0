package config

import "fmt"

// Sections whose data-plane features are still being built are recognised
// (so their keys are not "unknown") but refused with a clear message rather
// than accepted and silently ignored.

type rawTunnel map[string]any
type rawNPT map[string]any
type rawNDPProxy map[string]any

// Tunnel, NPT and NDPProxy are filled by the sections' validators.
type (
	Tunnel   struct{}
	NPT      struct{}
	NDPProxy struct{}
)

func (r *rawConfig) validateSections(c *Config) []error {
	var errs []error
	if len(r.Tunnels) > 0 {
		errs = append(errs, fmt.Errorf("tunnels: not supported by this version of xdprouter yet"))
	}
	if len(r.NPT) > 0 {
		errs = append(errs, fmt.Errorf("npt: not supported by this version of xdprouter yet"))
	}
	if len(r.NDPProxy) > 0 {
		errs = append(errs, fmt.Errorf("ndp-proxy: not supported by this version of xdprouter yet"))
	}
	return errs
}
