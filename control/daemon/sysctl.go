package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/xdprouter/xdprouter/control/sysctl"

	"github.com/xdprouter/xdprouter/control/config"
)

// Sysctls reads and writes kernel parameters, named by their path under
// /proc/sys ("net/ipv6/conf/eth0.100/accept_ra": an interface name may
// hold dots, so the path form, not sysctl's dotted one).
type Sysctls interface {
	Get(path string) (string, error)
	Set(path, value string) error
}

// ProcSysctls is the kernel's, through /proc/sys (of the network
// namespace the daemon runs in).
type ProcSysctls struct{}

func (ProcSysctls) Get(path string) (string, error) { return sysctl.Get(path) }

func (ProcSysctls) Set(path, value string) error { return sysctl.Set(path, value) }

func sysctlName(path string) string { return sysctl.Name(path) }

// A router needs the kernel to forward, and its ports to be routers: a
// daemon that logged "ready" and advertised itself as the LANs' default
// router while the kernel forwarded nothing (only the data plane's
// pass_fwd_disabled said why), and whose own LAN port configured itself
// from its own RAs, was the alternative. sysctlKeeper sets what the
// config needs and records what it found, so that --detach-on-exit puts
// it back:
//
//   - net.ipv6.conf.all.forwarding=1 when the config routes IPv6 (LANs,
//     NPT), net.ipv4.ip_forward=1 when it routes IPv4 (a LAN with ipv4,
//     tunnels). Set before the first pass; a daemon that cannot set them
//     refuses to start, naming the sysctl.
//   - On each LAN port: forwarding=1 (the router's Neighbor Advertisements
//     carry the Router flag) and accept_ra=0 (the router does not
//     configure itself from its own RAs, or another router's).
//   - On the WAN port: accept_ra=0. The daemon reads the WAN's RAs on its
//     own socket and installs the address and default route itself; with
//     forwarding on, accept_ra=1 is ignored by the kernel anyway, and the
//     accept_ra=2 of seed 003's recipe would make the kernel add a second
//     default route and SLAAC addresses the daemon does not manage.
//
// Per-port values are applied on every pass, so a LAN interface that
// appears later is set when it is attached. The values found are kept in
// a file beside the state file, so that a daemon started after a crash or
// a stop without --detach-on-exit still restores what was there before
// the first one. A value someone changed while the daemon ran is left as
// they set it.
type sysctlKeeper struct {
	s    Sysctls
	log  *slog.Logger
	file string // "" keeps the originals in memory only

	mu    sync.Mutex
	saved []savedSysctl // in the order first changed
}

type savedSysctl struct {
	Path string `json:"path"`
	Was  string `json:"was"` // the value found
	Set  string `json:"set"` // the value the daemon wrote
}

func newSysctlKeeper(s Sysctls, stateFile string, log *slog.Logger) *sysctlKeeper {
	k := &sysctlKeeper{s: s, log: log}
	if stateFile != "" {
		k.file = strings.TrimSuffix(stateFile, filepath.Ext(stateFile)) + ".sysctl.json"
		if b, err := os.ReadFile(k.file); err == nil {
			if err := json.Unmarshal(b, &k.saved); err != nil {
				log.Warn("sysctl record unreadable; what the daemon changes now is recorded afresh", "file", k.file, "error", err)
				k.saved = nil
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("sysctl record unreadable", "file", k.file, "error", err)
		}
	}
	return k
}

type wantSysctl struct {
	path, value string
	// global ones must be set for the daemon to start; a per-port one
	// whose interface does not exist yet waits for it.
	global bool
}

// wanted is what cfg needs.
func wantedSysctls(cfg *config.Config) []wantSysctl {
	var out []wantSysctl
	v4 := len(cfg.Tunnels) > 0 || slices.ContainsFunc(cfg.LAN, func(l config.LAN) bool { return l.IPv4.IsValid() })
	v6 := len(cfg.LAN) > 0 || len(cfg.NPT) > 0
	if v6 {
		out = append(out, wantSysctl{"net/ipv6/conf/all/forwarding", "1", true})
	}
	if v4 {
		out = append(out, wantSysctl{"net/ipv4/ip_forward", "1", true})
	}
	if cfg.WAN != nil {
		out = append(out, wantSysctl{"net/ipv6/conf/" + cfg.WAN.Interface + "/accept_ra", "0", false})
	}
	for _, l := range cfg.LAN {
		out = append(out,
			wantSysctl{"net/ipv6/conf/" + l.Interface + "/forwarding", "1", false},
			wantSysctl{"net/ipv6/conf/" + l.Interface + "/accept_ra", "0", false})
	}
	return out
}

// ensure sets what cfg needs. The error names a global sysctl that could
// not be set; per-port failures are logged.
func (k *sysctlKeeper) ensure(cfg *config.Config) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var errs []error
	changed := false
	for _, w := range wantedSysctls(cfg) {
		cur, err := k.s.Get(w.path)
		if err != nil {
			if w.global {
				errs = append(errs, fmt.Errorf("cannot read %s: %w", sysctlName(w.path), err))
			} else if !errors.Is(err, fs.ErrNotExist) {
				k.log.Warn("sysctl unreadable", "sysctl", sysctlName(w.path), "error", err)
			}
			continue // a port that does not exist yet
		}
		if cur == w.value {
			continue
		}
		if err := k.s.Set(w.path, w.value); err != nil {
			if w.global {
				errs = append(errs, fmt.Errorf("%s is %s and could not be set to %s (the router forwards nothing without it; set it yourself, e.g. in /etc/sysctl.d): %w",
					sysctlName(w.path), cur, w.value, err))
			} else {
				k.log.Warn("sysctl could not be set", "sysctl", sysctlName(w.path), "is", cur, "want", w.value, "error", err)
			}
			continue
		}
		k.log.Info("sysctl set", "sysctl", sysctlName(w.path), "was", cur, "now", w.value)
		if i := slices.IndexFunc(k.saved, func(s savedSysctl) bool { return s.Path == w.path }); i >= 0 {
			k.saved[i].Set = w.value // the first value found stays the one to restore
		} else {
			k.saved = append(k.saved, savedSysctl{Path: w.path, Was: cur, Set: w.value})
		}
		changed = true
	}
	if changed {
		k.write()
	}
	return errors.Join(errs...)
}

func (k *sysctlKeeper) write() {
	if k.file == "" {
		return
	}
	b, _ := json.MarshalIndent(k.saved, "", "  ")
	tmp := k.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		err = os.Rename(tmp, k.file)
		if err == nil {
			return
		}
	}
	k.log.Warn("cannot record the sysctls changed; a daemon started after a crash will not know what to restore", "file", k.file)
}

// restore puts back what the daemon changed, latest first; one changed
// by someone else since is left as it is.
func (k *sysctlKeeper) restore() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var errs []error
	for _, s := range slices.Backward(k.saved) {
		cur, err := k.s.Get(s.Path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("restore %s: %w", sysctlName(s.Path), err))
			}
			continue // the interface went away
		}
		if cur != s.Set {
			k.log.Info("sysctl changed by someone else; left as it is", "sysctl", sysctlName(s.Path), "is", cur, "daemon_set", s.Set)
			continue
		}
		if err := k.s.Set(s.Path, s.Was); err != nil {
			errs = append(errs, fmt.Errorf("restore %s to %s: %w", sysctlName(s.Path), s.Was, err))
			continue
		}
		k.log.Info("sysctl restored", "sysctl", sysctlName(s.Path), "to", s.Was)
	}
	if len(errs) == 0 {
		k.saved = nil
		if k.file != "" {
			_ = os.Remove(k.file)
		}
	}
	return errors.Join(errs...)
}
