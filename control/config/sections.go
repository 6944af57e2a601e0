package config

// validateSections runs the validators of the feature sections, each in
// the file named for it.
func (r *rawConfig) validateSections(c *Config) []error {
	pr, err := r.PolicyRouting.validate("policy-routing")
	c.PolicyRouting = pr
	errs := []error{err}
	errs = append(errs, r.validateTunnels(c)...)
	taken := map[string]string{}
	for _, n := range c.Interfaces() {
		taken[n] = "an interface of wan/lan"
	}
	for _, t := range c.Tunnels {
		taken[t.Name] = "a tunnel's"
	}
	for _, v := range c.VXLAN {
		taken[v.Name] = "used by " + v.Path + ".name"
	}
	errs = append(errs, r.validateDelegations(c, taken)...)
	errs = append(errs, checkVXLANSet(c.VXLAN)...)
	errs = append(errs, r.validateNPT(c)...)
	errs = append(errs, r.validateNDPProxy(c)...)
	// Last: pinholes and port forwards refer to the LANs, tunnels and npt.
	errs = append(errs, r.validateFirewall(c)...)
	return errs
}
