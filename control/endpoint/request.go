package endpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// response is what an attempt got back, already redacted.
type response struct {
	status int
	body   string // first line, at most 200 bytes
}

// requestURL is cfg.URL with the credentials appended to the query, in
// the order transix documents (username, then password).
func requestURL(cfg Provisioning, username, password string) string {
	u, _ := url.Parse(cfg.URL) // Validate accepted it
	q := "username=" + url.QueryEscape(username) + "&password=" + url.QueryEscape(password)
	if u.RawQuery != "" {
		q = u.RawQuery + "&" + q
	}
	u.RawQuery = q
	return u.String()
}

// safeURL is the URL as logs and status show it.
func safeURL(cfg Provisioning) string { return requestURL(cfg, Redacted, Redacted) }

// attempt makes the provisioning request once, from local. Its error and
// response carry no credential.
func (p *Provisioner) attempt(ctx context.Context, cfg Provisioning, local netip.Addr) (response, error) {
	password, err := ReadPassword(cfg.PasswordFile)
	if err != nil {
		return response{}, err
	}
	sec := newSecrets(password, cfg.Username)
	shown := safeURL(cfg)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, requestURL(cfg, cfg.Username, password), nil)
	if err != nil {
		return response{}, fmt.Errorf("GET %s: %w", shown, sec.redactErr(err, shown))
	}
	req.Header.Set("User-Agent", "xdprouter")
	client := &http.Client{
		Transport: &http.Transport{
			// No proxy from the environment: the ISP must see the
			// tunnel's address, and the credentials must not go elsewhere.
			Proxy:               nil,
			DialContext:         p.dialFrom(local),
			DisableKeepAlives:   true,
			TLSHandshakeTimeout: p.o.Timeout,
		},
		Timeout: p.o.Timeout,
		// A redirect would carry the request somewhere the config does not
		// name; it counts as a failure with its status shown.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, sec.redactErr(err, shown)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, body: sec.redact(firstLine(resp.Body))}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("GET %s: HTTP %s", shown, sec.redact(resp.Status))
		if r.body != "" {
			msg += ": " + r.body
		}
		return r, errors.New(msg)
	}
	return r, nil
}

// firstLine is the body's first line, cut to 200 bytes on a character
// boundary: enough to show "OK" or an ISP's error message in status.
func firstLine(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 4096))
	line, _, _ := bytes.Cut(b, []byte("\n"))
	s := strings.TrimSpace(string(line))
	if len(s) > 200 {
		s = s[:200]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(s, "?")
}

// dialFrom connects from local, resolving the URL's host through the
// learned DNS servers: the system resolver may not know the ISP's names
// (RA alone gives it no server).
func (p *Provisioner) dialFrom(local netip.Addr) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0)), Timeout: 10 * time.Second}
	return func(ctx context.Context, _, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		var ips []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{a}
		} else {
			ans, _, _, err := p.o.DNS.LookupAAAA(ctx, host)
			if err != nil {
				return nil, err
			}
			ips = ans.Addrs
		}
		var errs []error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, "tcp6", net.JoinHostPort(ip.String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
}
