package endpoint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Provisioning is a tunnel's `provisioning:` config: the HTTP request an
// ISP needs before the tunnel carries traffic (transix's fixed-IPv4
// service identifies the line by the request's source address and the
// credentials in the query).
type Provisioning struct {
	URL          string `yaml:"url" json:"url"`
	Username     string `yaml:"username" json:"username"`
	PasswordFile string `yaml:"password-file" json:"password_file"`
}

// Validate checks the config without touching the password file (it is
// read at each attempt); path prefixes the field names in errors, e.g.
// "tunnels[0].provisioning".
func (p Provisioning) Validate(path string) error {
	var errs []error
	u, err := url.Parse(p.URL)
	switch {
	case strings.TrimSpace(p.URL) == "":
		errs = append(errs, fmt.Errorf("%s.url: required (e.g. http://update.transix.jp/request)", path))
	case err != nil:
		errs = append(errs, fmt.Errorf("%s.url: %q is not a URL", path, p.URL))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("%s.url: %q: the scheme must be http or https", path, p.URL))
	case u.Hostname() == "":
		errs = append(errs, fmt.Errorf("%s.url: %q has no host", path, p.URL))
	case u.User != nil:
		errs = append(errs, fmt.Errorf("%s.url: has credentials in it; give username and password-file instead, which are never logged", path))
	case u.Query().Has("username") || u.Query().Has("password"):
		errs = append(errs, fmt.Errorf("%s.url: has a username or password parameter; give username and password-file instead, which are added to the query and never logged", path))
	default:
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && (a.Is4() || a.Is4In6()) {
			errs = append(errs, fmt.Errorf("%s.url: host %s is IPv4; the request leaves from the tunnel's IPv6 local address", path, a))
		}
	}
	switch {
	case p.Username == "":
		errs = append(errs, fmt.Errorf("%s.username: required", path))
	case strings.ContainsFunc(p.Username, func(r rune) bool { return r < ' ' || r == 0x7f }):
		errs = append(errs, fmt.Errorf("%s.username: has control characters", path))
	}
	switch {
	case p.PasswordFile == "":
		errs = append(errs, fmt.Errorf("%s.password-file: required (a file of mode 0600 holding the password)", path))
	case !filepath.IsAbs(p.PasswordFile):
		errs = append(errs, fmt.Errorf("%s.password-file: %q is not an absolute path", path, p.PasswordFile))
	}
	return errors.Join(errs...)
}

// ReadPassword reads a password file as ssh reads a private key: only
// if no one but its owner can read or write it. One trailing newline is
// not part of the password (echo secret > file).
func ReadPassword(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("provisioning.password-file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path: what is checked is what is read.
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("provisioning.password-file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("provisioning.password-file: %s is not a regular file", file)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("provisioning.password-file: %s is accessible by group or others (mode %04o); "+
			"refusing to use it: chmod 600 %s", file, perm, file)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return "", fmt.Errorf("provisioning.password-file: read %s: %w", file, err)
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("provisioning.password-file: %s is larger than 4 KiB; it should hold the password alone", file)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("provisioning.password-file: %s is empty", file)
	case bytes.ContainsAny(b, "\r\n"):
		return "", fmt.Errorf("provisioning.password-file: %s has more than one line; it should hold the password alone", file)
	}
	return string(b), nil
}
