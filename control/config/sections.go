package config

import "fmt"

// Sections whose data-plane features are still being built are recognised
// (so their keys are not "unknown") but refused with a clear message rather
// than accepted and silently ignored.

type rawNPT map[string]any
type rawNDPProxy map[string]any

// NPT and NDPProxy are filled by the sections' validators.
type (
	NPT      struct{}
	NDPProxy struct{}
)

func (r *rawConfig) validateSections(c *Config) []error {
	errs := r.validateTunnels(c)
	if len(r.NPT) > 0 {
		errs = append(errs, fmt.Errorf("npt: not supported by this version of xdprouter yet"))
	}
	if len(r.NDPProxy) > 0 {
		errs = append(errs, fmt.Errorf("ndp-proxy: not supported by this version of xdprouter yet"))
	}
	return errs
}
