package config

// validateSections runs the validators of the feature sections, each in
// the file named for it.
func (r *rawConfig) validateSections(c *Config) []error {
	pr, err := r.PolicyRouting.validate("policy-routing")
	c.PolicyRouting = pr
	errs := []error{err}
	errs = append(errs, r.validateTunnels(c)...)
	errs = append(errs, checkVXLANSet(c.VXLAN)...)
	errs = append(errs, r.validateNPT(c)...)
	errs = append(errs, r.validateNDPProxy(c)...)
	// Last: pinholes and port forwards refer to the LANs, tunnels and npt.
	errs = append(errs, r.validateFirewall(c)...)
	return errs
}
