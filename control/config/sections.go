package config

// validateSections runs the validators of the feature sections, each in
// the file named for it.
func (r *rawConfig) validateSections(c *Config) []error {
	errs := r.validateTunnels(c)
	errs = append(errs, r.validateNPT(c)...)
	errs = append(errs, r.validateNDPProxy(c)...)
	return errs
}
