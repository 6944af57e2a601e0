package labkit

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// RadvdConfig is what a radvd in a lab namespace advertises on one
// interface. Zero durations take radvd's defaults, except RouterLifetime
// whose zero means "not a default router" (AdvDefaultLifetime 0, how an
// ISP withdraws its default route).
type RadvdConfig struct {
	Interface string
	Prefixes  []RadvdPrefix
	RDNSS     []netip.Addr
	// RDNSSLifetime also serves the DNSSL option; radvd wants it at
	// least MaxInterval.
	RDNSSLifetime time.Duration
	DNSSL         []string
	MTU           int // 0: no MTU option
	// RouterLifetime is AdvDefaultLifetime: 0 or between MaxInterval
	// and 9000 s.
	RouterLifetime time.Duration
	// MinInterval and MaxInterval are MinRtrAdvInterval and
	// MaxRtrAdvInterval (radvd: MaxInterval at least 4 s, MinInterval at
	// most 0.75 of it).
	MinInterval, MaxInterval time.Duration
	// Managed and Other are the M and O flags (AdvManagedFlag,
	// AdvOtherConfigFlag): addresses or other configuration by DHCPv6.
	Managed, Other bool
}

// RadvdPrefix is one prefix option; lifetimes of learned.Infinite or more
// are written as "infinity".
type RadvdPrefix struct {
	Prefix           netip.Prefix
	Valid, Preferred time.Duration
	// NotOnLink and NotAutonomous clear the L and A flags (set by
	// default, as an ISP's WAN prefix has them).
	NotOnLink, NotAutonomous bool
	// Withdraw advertises valid and preferred lifetime 0: the ISP takes
	// the prefix back after a renumbering.
	Withdraw bool
}

const infiniteLifetime = 0xffffffff * time.Second

func seconds(d time.Duration) string {
	if d >= infiniteLifetime {
		return "infinity"
	}
	return fmt.Sprintf("%g", d.Seconds())
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// String is the radvd.conf text.
func (c RadvdConfig) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "interface %s {\n\tAdvSendAdvert on;\n", c.Interface)
	if c.MaxInterval > 0 {
		fmt.Fprintf(&b, "\tMaxRtrAdvInterval %s;\n", seconds(c.MaxInterval))
	}
	if c.MinInterval > 0 {
		fmt.Fprintf(&b, "\tMinRtrAdvInterval %s;\n", seconds(c.MinInterval))
	}
	fmt.Fprintf(&b, "\tAdvDefaultLifetime %s;\n", seconds(c.RouterLifetime))
	if c.Managed {
		b.WriteString("\tAdvManagedFlag on;\n")
	}
	if c.Other {
		b.WriteString("\tAdvOtherConfigFlag on;\n")
	}
	if c.MTU > 0 {
		fmt.Fprintf(&b, "\tAdvLinkMTU %d;\n", c.MTU)
	}
	for _, p := range c.Prefixes {
		fmt.Fprintf(&b, "\tprefix %s {\n\t\tAdvOnLink %s;\n\t\tAdvAutonomous %s;\n", p.Prefix, onOff(!p.NotOnLink), onOff(!p.NotAutonomous))
		if p.Withdraw {
			b.WriteString("\t\tAdvValidLifetime 0;\n\t\tAdvPreferredLifetime 0;\n")
		}
		if p.Valid > 0 && !p.Withdraw {
			fmt.Fprintf(&b, "\t\tAdvValidLifetime %s;\n", seconds(p.Valid))
		}
		if p.Preferred > 0 && !p.Withdraw {
			fmt.Fprintf(&b, "\t\tAdvPreferredLifetime %s;\n", seconds(p.Preferred))
		}
		b.WriteString("\t};\n")
	}
	if len(c.RDNSS) > 0 {
		var addrs []string
		for _, a := range c.RDNSS {
			addrs = append(addrs, a.String())
		}
		fmt.Fprintf(&b, "\tRDNSS %s {\n", strings.Join(addrs, " "))
		if c.RDNSSLifetime > 0 {
			fmt.Fprintf(&b, "\t\tAdvRDNSSLifetime %s;\n", seconds(c.RDNSSLifetime))
		}
		b.WriteString("\t};\n")
	}
	if len(c.DNSSL) > 0 {
		fmt.Fprintf(&b, "\tDNSSL %s {\n", strings.Join(c.DNSSL, " "))
		if c.RDNSSLifetime > 0 {
			fmt.Fprintf(&b, "\t\tAdvDNSSLLifetime %s;\n", seconds(c.RDNSSLifetime))
		}
		b.WriteString("\t};\n")
	}
	b.WriteString("};\n")
	return b.String()
}

// Radvd is a radvd running in a lab namespace.
type Radvd struct {
	NS      string
	Config  string // path of its config file
	Cmdline string
	cmd     *exec.Cmd
	log     *syncBuffer
	exited  chan struct{}
	waitErr error
}

var radvdSeq atomic.Uint32

// StartRadvd checks cfg with `radvd --configtest`, then runs
// `radvd -n -C FILE -p PIDFILE -m stderr` in ns until Stop (register
// Stop with t.Cleanup; the lab's Close also ends it with the namespace's
// interfaces gone, but only Stop reaps it). It returns once radvd wrote
// its pid file, i.e. is about to send its first RA.
func StartRadvd(lab *netlab.Lab, ns string, cfg RadvdConfig) (*Radvd, error) {
	base := filepath.Join(lab.RunDir(), fmt.Sprintf("radvd-%s-%d", ns, radvdSeq.Add(1)))
	r := &Radvd{NS: ns, Config: base + ".conf", log: &syncBuffer{}, exited: make(chan struct{})}
	if err := r.write(cfg); err != nil {
		return nil, err
	}
	pidfile := base + ".pid"
	r.cmd = lab.Command(ns, "radvd", "-n", "-C", r.Config, "-p", pidfile, "-m", "stderr")
	r.Cmdline = Cmdline(nil, r.cmd.Args)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", r.Cmdline, err)
	}
	go func() { r.waitErr = r.cmd.Wait(); close(r.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(pidfile); err == nil {
			return r, nil
		}
		select {
		case <-r.exited:
			return nil, fmt.Errorf("%s exited: %v\n%s", r.Cmdline, r.waitErr, r.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("%s: no pid file after 10 s\n%s", r.Cmdline, r.Log())
		}
	}
}

// write checks cfg and puts it in the config file.
func (r *Radvd) write(cfg RadvdConfig) error {
	tmp := r.Config + ".new"
	if err := os.WriteFile(tmp, []byte(cfg.String()), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("radvd", "--configtest", "-C", tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("radvd rejects the config: %v: %s\n%s", err, bytes.TrimSpace(out), cfg)
	}
	return os.Rename(tmp, r.Config)
}

// Reload makes the running radvd advertise cfg (new config file, SIGHUP;
// radvd sends RAs with the new config at once).
func (r *Radvd) Reload(cfg RadvdConfig) error {
	if err := r.write(cfg); err != nil {
		return err
	}
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("radvd reload: %w\n%s", err, r.Log())
	}
	return nil
}

// Log is what radvd wrote so far.
func (r *Radvd) Log() string { return r.log.String() }

// Stop ends radvd (SIGTERM: it sends its final RAs with router lifetime
// 0) and waits for it; it is safe to call twice.
func (r *Radvd) Stop() error {
	select {
	case <-r.exited:
		return nil
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
		return errors.New("radvd did not stop within 10 s of SIGTERM")
	}
	return nil
}
