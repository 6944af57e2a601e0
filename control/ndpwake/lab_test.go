package ndpwake

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// TestWakesUnknownHost runs the real socket and resolver in namespaces:
// isp -- wan0 [cpe] lan0 -- host, the /64 on-link at the ISP and routed
// to the LAN at the CPE, no XDP. The ISP's solicitation for the host goes
// to a solicited-node group the CPE never joined; the waker must still
// hear it and get the host's address resolved behind lan0.
func TestWakesUnknownHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	lab := labkit.NewLab(t)
	ispNS, err := lab.AddNS("isp", false)
	if err != nil {
		t.Fatal(err)
	}
	cpe, err := lab.AddNS("cpe", true)
	if err != nil {
		t.Fatal(err)
	}
	hostNS, err := lab.AddNS("host", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Veth(ispNS, "isp0", cpe, "wan0"); err != nil {
		t.Fatal(err)
	}
	if err := lab.Veth(cpe, "lan0", hostNS, "eth0"); err != nil {
		t.Fatal(err)
	}
	host := netip.MustParseAddr("2001:db8:aaaa:0:5054:ff:fe12:3456")
	if err := lab.MustExec(ispNS, []string{"ip", "-6", "route", "add", "2001:db8:aaaa::/64", "dev", "isp0"}); err != nil {
		t.Fatal(err)
	}
	if err := lab.MustExec(cpe, []string{"ip", "-6", "route", "add", "2001:db8:aaaa::/64", "dev", "lan0"}); err != nil {
		t.Fatal(err)
	}
	if err := lab.MustExec(hostNS, []string{"ip", "-6", "addr", "add", host.String() + "/64", "dev", "eth0", "nodad"}); err != nil {
		t.Fatal(err)
	}
	inCPE := func(fn func() error) error { return lab.Do(cpe, fn) }
	w := &Waker{Log: quiet,
		Listen: func(ifname string) (c Conn, err error) {
			err = inCPE(func() (err error) { c, err = listenPacket(ifname); return err })
			return c, err
		},
		Resolve: func(ifname string, target netip.Addr) error {
			return inCPE(func() error { return resolveNeigh(ifname, target) })
		},
	}
	w.Set(Config{Proxies: []Proxy{{Interface: "wan0", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:aaaa::/64")}}},
		LANs: []string{"lan0"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); len(w.Stats().Interfaces) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the socket did not open: %+v", w.Stats())
		}
	}

	// No proxy answers, so the ISP's ping fails; its solicitations are
	// what counts.
	start := time.Now()
	ping := lab.Command(ispNS, "ping", "-n", "-c", "1", "-W", "3", host.String())
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	defer ping.Wait()
	var neigh string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		neigh, _ = lab.Exec(cpe, "ip", "-6", "neigh", "show", host.String(), "dev", "lan0")
		if strings.Contains(neigh, "REACHABLE") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host was not resolved behind lan0: %q; waker %+v", neigh, w.Stats())
		}
	}
	t.Logf("resolved behind lan0 %v after the ISP's ping started: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(neigh))
	st := w.Stats()
	if st.NSSeen == 0 || st.Probes == 0 || st.LastTarget != host.String() || st.ProbeErrors != 0 {
		t.Errorf("stats %+v", st)
	}
	maddr, _ := lab.Exec(cpe, "ip", "-6", "maddr", "show", "dev", "wan0")
	if strings.Contains(maddr, "ff02::1:ff12:3456") {
		t.Errorf("the CPE joined the host's solicited-node group, so this proves nothing:\n%s", maddr)
	}
}
