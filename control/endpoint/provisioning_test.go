package endpoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProvisioningValidate(t *testing.T) {
	good := Provisioning{URL: "http://update.transix.jp/request", Username: "u", PasswordFile: "/etc/xdprouter/transix.password"}
	if err := good.Validate("tunnels[0].provisioning"); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*Provisioning)
		want []string
	}{
		{"no url", func(p *Provisioning) { p.URL = "" }, []string{"tunnels[0].provisioning.url: required"}},
		{"ftp", func(p *Provisioning) { p.URL = "ftp://update.transix.jp/" }, []string{".url:", "http or https"}},
		{"no host", func(p *Provisioning) { p.URL = "http:///request" }, []string{".url:", "no host"}},
		{"userinfo", func(p *Provisioning) { p.URL = "http://u:secret@update.transix.jp/" }, []string{".url: has credentials"}},
		{"password in query", func(p *Provisioning) { p.URL = "http://update.transix.jp/request?password=x" }, []string{".url: has a username or password parameter"}},
		{"ipv4 host", func(p *Provisioning) { p.URL = "http://192.0.2.1/request" }, []string{".url: host 192.0.2.1 is IPv4"}},
		{"no username", func(p *Provisioning) { p.Username = "" }, []string{".username: required"}},
		{"control character", func(p *Provisioning) { p.Username = "u\n" }, []string{".username: has control characters"}},
		{"no password file", func(p *Provisioning) { p.PasswordFile = "" }, []string{".password-file: required"}},
		{"relative password file", func(p *Provisioning) { p.PasswordFile = "transix.password" }, []string{".password-file:", "not an absolute path"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := good
			c.edit(&p)
			err := p.Validate("tunnels[0].provisioning")
			if err == nil {
				t.Fatalf("%+v accepted", p)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the URL's password", err)
			}
		})
	}
	// An IPv6 literal host is fine: the seed's workaround, before DNS.
	p := good
	p.URL = "http://[2404:8e00::feed:400]/request"
	if err := p.Validate("p"); err != nil {
		t.Errorf("IPv6 literal refused: %v", err)
	}
}

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, content string
		mode          os.FileMode
		want, err     string
	}{
		{"newline", "pw\n", 0o600, "pw", ""},
		{"crlf", "pw\r\n", 0o400, "pw", ""},
		{"no newline", "p w", 0o600, "p w", ""},
		{"group readable", "pw\n", 0o640, "", "accessible by group or others (mode 0640)"},
		{"world readable", "pw\n", 0o604, "", "mode 0604"},
		{"group writable", "pw\n", 0o620, "", "mode 0620"},
		{"empty", "\n", 0o600, "", "is empty"},
		{"two lines", "pw\nmore\n", 0o600, "", "more than one line"},
		{"huge", strings.Repeat("x", 5000), 0o600, "", "larger than 4 KiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			writePassword(t, f, c.content, c.mode)
			got, err := ReadPassword(f)
			switch {
			case c.err == "" && (err != nil || got != c.want):
				t.Errorf("got %q, %v; want %q", got, err, c.want)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "provisioning.password-file")):
				t.Errorf("got %q, %v; want an error naming the field and saying %q", got, err, c.err)
			}
		})
	}
	if _, err := ReadPassword(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadPassword(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 2 * time.Second, Max: 5 * time.Minute}
	want := []time.Duration{2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
	for i, w := range want {
		if got := b.Delay(i + 1); got != w*time.Second {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w*time.Second)
		}
	}
	if got := b.Delay(1000); got != 5*time.Minute {
		t.Errorf("Delay(1000) = %v, want the 5 min cap", got)
	}
	b.Jitter, b.Rand = 0.2, func() float64 { return 0.5 }
	if got := b.Delay(3); got != 8*time.Second-800*time.Millisecond {
		t.Errorf("with 20%% jitter at 0.5: %v, want 7.2s", got)
	}
	b.Rand = nil
	for range 100 {
		if got := b.Delay(2); got > 4*time.Second || got <= 3200*time.Millisecond-time.Nanosecond {
			t.Fatalf("jittered delay %v outside (3.2s, 4s]", got)
		}
	}
}
