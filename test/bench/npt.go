package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The NPT scenarios translate the IPv6 frames' source (gen's prefix, the
// inside) to the outside prefix as they leave by r1, the WAN: LAN->WAN
// SNPT, the direction every outbound flow takes. rfc6296 mode, the one the
// kernel implements.
const (
	nptInside  = "fd00:b1::/64"
	nptOutside = "fd00:b9::/64"
)

func (b *liveBench) setupNPT(sc string) (func() error, error) {
	t := b.t
	if sc == scKernelNPT {
		// As the kernel scenario (XDP_PASS keeps the veths in XDP mode),
		// plus the ip6tables rule.
		detach, err := t.attachRouterPorts(b.pass.Attach)
		if err != nil {
			return nil, err
		}
		undo := func() error {
			_, err := t.lab.Exec(t.rtrNS, "ip6tables", "-t", "mangle", "-F", "POSTROUTING")
			return errors.Join(detach(), err)
		}
		if _, err := t.lab.Exec(t.rtrNS, "ip6tables", "-t", "mangle", "-A", "POSTROUTING", "-o", "r1", "-s", nptInside,
			"-j", "SNPT", "--src-pfx", nptInside, "--dst-pfx", nptOutside); err != nil {
			return nil, errors.Join(err, undo())
		}
		return undo, nil
	}
	cfg := filepath.Join(t.lab.RunDir(), "npt.yaml")
	text := fmt.Sprintf("wan: {interface: r1}\nlan: [{interface: r0}]\nnpt: [{interface: r1, inside: %q, outside: %q}]\n",
		nptInside, nptOutside)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return nil, err
	}
	detach := func() error {
		if _, err := t.lab.Exec(t.rtrNS, b.cfg.xdprouter, "--bpffs", b.bpffs, "detach", "--all"); err != nil {
			return fmt.Errorf("xdprouter detach: %w", err)
		}
		return nil
	}
	if _, err := t.lab.Exec(t.rtrNS, b.cfg.xdprouter, "--bpffs", b.bpffs, "apply", "--config", cfg); err != nil {
		return nil, errors.Join(fmt.Errorf("xdprouter apply: %w", err), detach())
	}
	return detach, nil
}

// snptRulePackets reads how many packets the kernel scenario's SNPT rule
// translated, so a kernel-npt figure cannot silently be plain forwarding.
func (b *liveBench) snptRulePackets() (uint64, error) {
	out, err := b.t.lab.Exec(b.t.rtrNS, "ip6tables", "-t", "mangle", "-L", "POSTROUTING", "-v", "-n", "-x")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "SNPT" {
			return strconv.ParseUint(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no SNPT rule in:\n%s", out)
}
