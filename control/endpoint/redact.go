package endpoint

import (
	"errors"
	"net/url"
	"strings"
)

// Redacted stands for a credential in logs, errors and status.
const Redacted = "REDACTED"

// secrets are the strings that must not leave the provisioner: the
// password and the username, as written and as escaped in a URL.
type secrets []string

func newSecrets(ss ...string) secrets {
	var out secrets
	for _, s := range ss {
		if s == "" {
			continue
		}
		out = append(out, s, url.QueryEscape(s), url.PathEscape(s))
	}
	return out
}

func (s secrets) redact(text string) string {
	for _, x := range s {
		text = strings.ReplaceAll(text, x, Redacted)
	}
	return text
}

// redactErr makes err safe to log and show. net/http puts the whole URL,
// query included, in its errors: the URL is replaced by safeURL, and a
// cause that still carries a secret is flattened to redacted text. Only
// what came from elsewhere is redacted, not safeURL: a short username
// could otherwise match inside the word "username".
func (s secrets) redactErr(err error, safeURL string) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: safeURL, Err: s.redactErr(ue.Err, safeURL)}
	}
	if msg := err.Error(); s.redact(msg) != msg {
		return errors.New(s.redact(msg))
	}
	return err
}
