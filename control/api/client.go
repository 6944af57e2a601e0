package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/xdprouter/xdprouter/loader"
)

// Client reads a daemon's status API.
type Client struct {
	path  string
	bpffs string
	http  *http.Client
}

// NewClient returns a client for the socket at path. With bpffs set, a
// daemon that manages another directory counts as no daemon (ErrNoDaemon).
func NewClient(path, bpffs string) *Client {
	return &Client{path: path, bpffs: bpffs, http: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// Status asks for the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.get(ctx, "/v1/status", &st)
}

// Counters asks for the data-plane counters.
func (c *Client) Counters(ctx context.Context) ([]loader.Counter, error) {
	var cs []loader.Counter
	return cs, c.get(ctx, "/v1/stats", &cs)
}

func (c *Client) get(ctx context.Context, path string, v any) error {
	u := url.URL{Scheme: "http", Host: "xdprouter", Path: path}
	if c.bpffs != "" {
		u.RawQuery = url.Values{"bpffs": {c.bpffs}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// No socket, or one whose daemon died (kill -9 leaves the file),
		// or not root: then the pinned maps will say so.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("%w (no daemon on %s)", ErrNoDaemon, c.path)
		}
		return fmt.Errorf("daemon on %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict {
		return fmt.Errorf("%w for %s (the daemon on %s manages another directory)", ErrNoDaemon, c.bpffs, c.path)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.NewDecoder(resp.Body).Decode(&eb) == nil && eb.Error != "" {
			return fmt.Errorf("daemon on %s: %s", c.path, eb.Error)
		}
		return fmt.Errorf("daemon on %s: %s", c.path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode reply from %s: %w", c.path, err)
	}
	return nil
}
