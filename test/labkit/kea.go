package labkit

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// KeaConfig describes the simulated ISP's DHCPv6 prefix-delegation server.
type KeaConfig struct {
	Namespace string // where kea-dhcp6 runs
	Interface string // the link to the customer, in Namespace
	// Pools are the pd-pools: each delegates prefixes of DelegatedLen out
	// of Prefix (e.g. 2001:db8:100::/48 delegating /56).
	Pools []KeaPool
	// Renew and Rebind are T1 and T2; Preferred and Valid the prefix
	// lifetimes. Zero values take short lab defaults (4 s, 6 s, 20 s, 30 s).
	Renew, Rebind, Preferred, Valid time.Duration
	DNS                             []netip.Addr // the dns-servers option
	// Dir holds the config, the lease file, the pid and lock files and
	// the log; one per server so that parallel tests never collide.
	Dir string
}

// KeaPool is one pd-pool.
type KeaPool struct {
	Prefix       netip.Prefix
	DelegatedLen int
}

// Kea is a running kea-dhcp6 in a namespace. The lease file persists
// across Restart, as on a real server.
type Kea struct {
	cfg    KeaConfig
	conf   string
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
}

// StartKea writes the configuration and starts kea-dhcp6.
func StartKea(cfg KeaConfig) (*Kea, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.Renew, 4*time.Second)
	def(&cfg.Rebind, 6*time.Second)
	def(&cfg.Preferred, 20*time.Second)
	def(&cfg.Valid, 30*time.Second)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	k := &Kea{cfg: cfg, conf: filepath.Join(cfg.Dir, "kea-dhcp6.conf"), log: &syncBuffer{}}
	data, err := json.MarshalIndent(k.config(), "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(k.conf, data, 0o600); err != nil {
		return nil, err
	}
	if err := k.start(); err != nil {
		return nil, err
	}
	return k, nil
}

func secs(d time.Duration) int { return int(d / time.Second) }

func (k *Kea) config() map[string]any {
	var pools []map[string]any
	for _, p := range k.cfg.Pools {
		pools = append(pools, map[string]any{
			"prefix": p.Prefix.Addr().String(), "prefix-len": p.Prefix.Bits(), "delegated-len": p.DelegatedLen,
		})
	}
	var dns []string
	for _, a := range k.cfg.DNS {
		dns = append(dns, a.String())
	}
	subnet := map[string]any{
		"id":        1,
		"subnet":    "2001:db8:ffff::/64",
		"interface": k.cfg.Interface,
		"pd-pools":  pools,
	}
	if len(dns) > 0 {
		subnet["option-data"] = []map[string]any{{"name": "dns-servers", "data": strings.Join(dns, ", ")}}
	}
	return map[string]any{"Dhcp6": map[string]any{
		"interfaces-config": map[string]any{"interfaces": []string{k.cfg.Interface}},
		"lease-database": map[string]any{
			"type": "memfile", "persist": true, "lfc-interval": 0,
			"name": filepath.Join(k.cfg.Dir, "leases6.csv"),
		},
		"renew-timer":        secs(k.cfg.Renew),
		"rebind-timer":       secs(k.cfg.Rebind),
		"preferred-lifetime": secs(k.cfg.Preferred),
		"valid-lifetime":     secs(k.cfg.Valid),
		"server-id": map[string]any{
			"type": "LLT", "persist": true, "htype": 1, "identifier": "020000000099", "time": 700000000,
		},
		"data-directory": k.cfg.Dir,
		"subnet6":        []any{subnet},
		"loggers": []map[string]any{{
			"name": "kea-dhcp6", "severity": "DEBUG", "debuglevel": 40,
			"output_options": []map[string]any{{"output": "stdout"}},
		}},
	}}
}

func (k *Kea) start() error {
	argv := netlab.InNS(k.cfg.Namespace, "/usr/sbin/kea-dhcp6", "-c", k.conf)
	k.cmd = exec.Command(argv[0], argv[1:]...)
	k.cmd.Env = append(os.Environ(),
		"KEA_PIDFILE_DIR="+k.cfg.Dir, "KEA_LOCKFILE_DIR="+k.cfg.Dir, "KEA_LOGGER_DESTINATION=stdout")
	k.cmd.Stdout, k.cmd.Stderr = k.log, k.log
	k.exited = make(chan struct{})
	if err := k.cmd.Start(); err != nil {
		return fmt.Errorf("start kea-dhcp6: %w", err)
	}
	exited := k.exited
	go func() { _ = k.cmd.Wait(); close(exited) }()
	// Kea logs DHCP6_STARTED once its sockets are open.
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(k.log.String(), "DHCP6_STARTED") {
		select {
		case <-exited:
			return fmt.Errorf("kea-dhcp6 exited at start:\n%s", k.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			k.Kill()
			return fmt.Errorf("kea-dhcp6 not started after 15 s:\n%s", k.log.String())
		}
	}
	return nil
}

// Stop ends kea-dhcp6 with SIGTERM (SIGKILL after 5 s).
func (k *Kea) Stop() {
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(5 * time.Second):
		k.Kill()
	}
}

// Kill is kill -9: no goodbye, as when the ISP's server crashes.
func (k *Kea) Kill() {
	_ = k.cmd.Process.Kill()
	<-k.exited
}

// Restart starts kea-dhcp6 again after Stop or Kill, with the same
// configuration and lease file.
func (k *Kea) Restart() error {
	select {
	case <-k.exited:
	default:
		k.Stop()
	}
	// A killed kea leaves its pid file; the pid may be reused by then.
	_ = os.Remove(filepath.Join(k.cfg.Dir, "kea-dhcp6.kea-dhcp6.pid"))
	return k.start()
}

// Log is what kea-dhcp6 wrote, across restarts.
func (k *Kea) Log() string { return k.log.String() }

// Leases is the lease file's content.
func (k *Kea) Leases() string {
	b, _ := os.ReadFile(filepath.Join(k.cfg.Dir, "leases6.csv"))
	return string(b)
}

// Reconfigure restarts kea-dhcp6 with cfg (e.g. other pools: the ISP
// renumbers), keeping its lease file and server ID.
func (k *Kea) Reconfigure(cfg KeaConfig) error {
	k.cfg.Pools, k.cfg.DNS = cfg.Pools, cfg.DNS
	data, err := json.MarshalIndent(k.config(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(k.conf, data, 0o600); err != nil {
		return err
	}
	return k.Restart()
}
