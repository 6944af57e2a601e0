package wanra

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// TestRadvd runs the tracker on a veth whose other end, in another
// namespace, has a real radvd, with the kernel told to ignore RAs
// (accept_ra 0, forwarding 1): the tracker reads them on its own.
func TestRadvd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and runs radvd")
	}
	if _, err := exec.LookPath("radvd"); err != nil {
		t.Skipf("needs radvd (make test installs it): %v", err)
	}
	lab, isp, cpe := labkit.PairLab(t, labkit.End{NS: "isp", If: "to-cpe", Forwarding: true}, labkit.End{NS: "cpe", If: "wan0", Forwarding: true})
	if err := lab.MustExec(cpe, []string{"sysctl", "-qw", "net.ipv6.conf.wan0.accept_ra=0"}); err != nil {
		t.Fatal(err)
	}
	ispMAC := macOf(t, lab, isp, "to-cpe")
	wanPrefix := netip.MustParsePrefix("2001:db8:1:2::/64")
	dns := netip.MustParseAddr("2001:db8::53")
	cfg := labkit.RadvdConfig{
		Interface:      "to-cpe",
		Prefixes:       []labkit.RadvdPrefix{{Prefix: wanPrefix, Valid: 7200 * time.Second, Preferred: 3600 * time.Second}},
		RDNSS:          []netip.Addr{dns},
		RDNSSLifetime:  600 * time.Second,
		DNSSL:          []string{"isp.example"},
		MTU:            1460,
		RouterLifetime: 5400 * time.Second,
		MinInterval:    3 * time.Second,
		MaxInterval:    4 * time.Second,
	}
	rd, err := labkit.StartRadvd(lab, isp, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rd.Stop()
		t.Logf("radvd log:\n%s", rd.Log())
	})
	t.Logf("$ %s\n%s", rd.Cmdline, cfg)

	pubs := make(chan learned.RA, 100)
	tr := &Tracker{
		Interface: "wan0",
		Publish:   func(ra learned.RA) { pubs <- ra },
		Listen: func(ifname string) (Conn, error) {
			var c Conn
			err := lab.Do(cpe, func() error {
				var err error
				c, err = openConn(ifname)
				return err
			})
			return c, err
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	ra := waitRA(t, pubs, "radvd's RA", func(ra learned.RA) bool { return len(ra.Routers) > 0 })
	heard := time.Now()
	t.Logf("snapshot: %+v", ra)
	if len(ra.Routers) != 1 || !ra.Routers[0].Addr.IsLinkLocalUnicast() || net.HardwareAddr(ra.Routers[0].MAC).String() != ispMAC ||
		!near(ra.Routers[0].Until, heard.Add(5400*time.Second)) {
		t.Errorf("routers %+v, want radvd's link-local with MAC %s, lifetime 5400 s", ra.Routers, ispMAC)
	}
	if len(ra.Prefixes) != 1 || ra.Prefixes[0].Prefix != wanPrefix || !ra.Prefixes[0].OnLink || !ra.Prefixes[0].Autonomous ||
		!near(ra.Prefixes[0].Valid, heard.Add(7200*time.Second)) || !near(ra.Prefixes[0].Preferred, heard.Add(3600*time.Second)) {
		t.Errorf("prefixes %+v, want %s valid 7200 s preferred 3600 s", ra.Prefixes, wanPrefix)
	}
	if len(ra.DNS) != 1 || ra.DNS[0].Addr != dns || !near(ra.DNS[0].Until, heard.Add(600*time.Second)) {
		t.Errorf("dns %+v", ra.DNS)
	}
	if !slices.Equal(ra.DNSSL, []string{"isp.example"}) || ra.MTU != 1460 {
		t.Errorf("dnssl %v mtu %d", ra.DNSSL, ra.MTU)
	}
	// The kernel did not act on the RA: everything the router knows of
	// it, it knows from the tracker.
	if out, err := lab.Exec(cpe, "ip", "-6", "route", "show", "default"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("kernel default route %q (%v), want none with accept_ra=0", out, err)
	}

	// The ISP stops being a default router.
	cfg.RouterLifetime = 0
	if err := rd.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	ra = waitRA(t, pubs, "the router gone after AdvDefaultLifetime 0", func(ra learned.RA) bool { return len(ra.Routers) == 0 })
	if len(ra.Prefixes) != 1 {
		t.Errorf("prefixes %+v: a router lifetime of 0 keeps the prefix", ra.Prefixes)
	}
	st := tr.Stats()
	t.Logf("stats: %+v", st)
	if st.Accepted < 2 || len(st.Rejected) != 0 || st.RSSent < 1 || st.Routers != 0 || st.Prefixes != 1 {
		t.Errorf("stats %+v", st)
	}
}

func openConn(ifname string) (Conn, error) {
	t := &Tracker{Interface: ifname}
	return t.listen()
}

func waitRA(t *testing.T, pubs <-chan learned.RA, what string, ok func(learned.RA) bool) learned.RA {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ra := <-pubs:
			if ok(ra) {
				return ra
			}
		case <-timeout:
			t.Fatalf("no snapshot with %s within 30 s", what)
		}
	}
}

// near says whether a deadline is within 2 s of what was expected.
func near(got, want time.Time) bool {
	d := got.Sub(want)
	return d > -2*time.Second && d < 2*time.Second
}

func macOf(t *testing.T, lab *netlab.Lab, ns, dev string) string {
	t.Helper()
	var mac string
	err := lab.Do(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mac
}
