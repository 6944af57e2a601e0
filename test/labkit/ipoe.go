package labkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The IPoE lab: an ISP that behaves like NTT FLET'S + transix, and a
// router that is told nothing but its interfaces and token.
//
//	host (LAN) — router (xdprouter run) — isp (radvd, kea, DNS, AFTR, update server) — internet
//
// The ISP advertises the WAN /64 with RAs (radvd) and delegates a /56
// from a pool (kea-dhcp6-server); its DNS server names the AFTR and the
// provisioning server. The router's WAN address, default route, LAN
// prefix and tunnel endpoints all come from those.
var (
	IPoEWAN1     = netip.MustParsePrefix("2001:db8:1::/64") // the WAN /64 first advertised
	IPoEWAN2     = netip.MustParsePrefix("2001:db8:2::/64") // after renumbering
	IPoEPool1    = netip.MustParsePrefix("2001:db8:100::/48")
	IPoEPool2    = netip.MustParsePrefix("2001:db8:200::/48")
	IPoEDNS      = netip.MustParseAddr("2001:db8:53::53")
	IPoEUpdate   = netip.MustParseAddr("2001:db8:f::80") // the provisioning server
	ISPNet6      = netip.MustParsePrefix("2001:db8:e::1/64")
	Internet6    = netip.MustParsePrefix("2001:db8:e::2/64")
	IPoEToken    = "::feed"
	AFTRName     = "aftr.isp.example"
	UpdateName   = "update.isp.example"
	IPoEUsername = "lab-user"
	IPoEPassword = "s3cret-lab-password"
)

// IPoETopology is the tunnel topology with a learning router and an ISP
// that teaches.
type IPoETopology struct {
	*TunnelTopology
	Radvd  *Radvd
	Kea    *Kea
	DNS    *DNSServer
	Update *UpdateServer
	// PasswordFile holds IPoEPassword for the provisioning request.
	PasswordFile string
	keaCfg       KeaConfig
}

// NewIPoETopology builds the lab and starts the ISP's servers (not the
// AFTR: StartAFTR). On error everything made so far is removed.
func NewIPoETopology() (*IPoETopology, error) {
	tt, err := newTunnelTopology(true)
	if err != nil {
		return nil, err
	}
	t := &IPoETopology{TunnelTopology: tt}
	if err := t.build(); err != nil {
		if cerr := t.Close(); cerr != nil {
			err = fmt.Errorf("%w (and %v)", err, cerr)
		}
		return nil, fmt.Errorf("build the IPoE ISP: %w", err)
	}
	return t, nil
}

func (t *IPoETopology) build() error {
	lab := t.Lab
	// The tunnel topology gave the ISP its WAN address, the AFTR and the
	// IPv4 internet; add the DNS and update servers and the IPv6 internet.
	if err := lab.MustExec(t.ISP,
		[]string{"ip", "-6", "addr", "add", IPoEDNS.String() + "/128", "dev", "lo"},
		[]string{"ip", "-6", "addr", "add", IPoEUpdate.String() + "/128", "dev", "lo"},
		v6addr(ISPNet6, ISPNetIf)); err != nil {
		return err
	}
	if err := lab.MustExec(t.Internet,
		v6addr(Internet6, InternetIf),
		[]string{"ip", "-6", "route", "add", "default", "via", ISPNet6.Addr().String()}); err != nil {
		return err
	}
	// The LAN host configures IPv6 from the router's RAs only.
	if err := lab.MustExec(t.Host,
		[]string{"sysctl", "-qw", "net.ipv6.conf." + TunHostIf + ".accept_ra=1"},
		[]string{"sysctl", "-qw", "net.ipv6.conf." + TunHostIf + ".autoconf=1"}); err != nil {
		return err
	}
	var err error
	if t.DNS, err = StartDNS(lab, t.ISP, IPoEDNS); err != nil {
		return err
	}
	t.DNS.Set(AFTRName, time.Minute, AFTR6)
	t.DNS.Set(UpdateName, time.Minute, IPoEUpdate)
	if t.Update, err = StartUpdateServer(lab, t.ISP, IPoEUpdate); err != nil {
		return err
	}
	t.PasswordFile = filepath.Join(lab.RunDir(), "update.password")
	if err := os.WriteFile(t.PasswordFile, []byte(IPoEPassword+"\n"), 0o600); err != nil {
		return err
	}
	if t.Radvd, err = StartRadvd(lab, t.ISP, t.RadvdConfig(IPoEWAN1, netip.Prefix{}, 5400*time.Second)); err != nil {
		return err
	}
	t.keaCfg = KeaConfig{Namespace: t.ISP, Interface: ISPWANIf, Pools: []KeaPool{{Prefix: IPoEPool1, DelegatedLen: 56}},
		Renew: 4 * time.Second, Rebind: 6 * time.Second, Preferred: 30 * time.Second, Valid: 60 * time.Second,
		DNS: []netip.Addr{IPoEDNS}, Dir: filepath.Join(lab.RunDir(), "kea")}
	if t.Kea, err = StartKea(t.keaCfg); err != nil {
		return err
	}
	return nil
}

// RadvdConfig is what the ISP advertises on the WAN: wan as the /64, old
// (if valid) withdrawn with lifetime 0, the DNS server, and a router
// lifetime (5400 s like FLET'S; 0 withdraws the default route).
func (t *IPoETopology) RadvdConfig(wan, old netip.Prefix, routerLifetime time.Duration) RadvdConfig {
	c := RadvdConfig{Interface: ISPWANIf, RDNSS: []netip.Addr{IPoEDNS}, RDNSSLifetime: time.Hour,
		MinInterval: 3 * time.Second, MaxInterval: 4 * time.Second, RouterLifetime: routerLifetime,
		Prefixes: []RadvdPrefix{{Prefix: wan, Valid: 2 * time.Hour, Preferred: time.Hour}}}
	if old.IsValid() {
		c.Prefixes = append(c.Prefixes, RadvdPrefix{Prefix: old, Withdraw: true})
	}
	return c
}

// Config is the router's config: nothing but interfaces, the token, PD,
// and a fixed-IPv4 tunnel whose AFTR and update server are names.
func (t *IPoETopology) Config() string {
	return fmt.Sprintf(`wan:
  interface: %s
  token: "%s"
  dhcpv6-pd: { prefix-length-hint: 56 }
lan:
  - interface: %s
    sla-id: 1
    ipv4: %s
tunnels:
  - name: %s
    remote: %s
    local: auto
    ipv4-address: %s
    nat44: true
    routes: [0.0.0.0/0]
    provisioning:
      url: http://%s/request
      username: %s
      password-file: %s
`, TunWANIf, IPoEToken, TunLANIf, TunRouterLAN4, TunnelName, AFTRName, FixedIPv4, UpdateName, IPoEUsername, t.PasswordFile)
}

// RouteDelegated routes the ISP's delegation pools to the router's
// link-local address, as the ISP's edge does for each binding.
func (t *IPoETopology) RouteDelegated() error {
	ll, err := t.RouterLinkLocal()
	if err != nil {
		return err
	}
	for _, p := range []netip.Prefix{IPoEPool1, IPoEPool2} {
		if _, err := t.Lab.Exec(t.ISP, "ip", "-6", "route", "replace", p.String(), "via", ll.String(), "dev", ISPWANIf); err != nil {
			return err
		}
	}
	return nil
}

// RouterLinkLocal is the router's WAN link-local address.
func (t *IPoETopology) RouterLinkLocal() (netip.Addr, error) {
	out, err := t.Lab.Exec(t.Router, "ip", "-6", "-o", "addr", "show", "dev", TunWANIf, "scope", "link")
	if err != nil {
		return netip.Addr{}, err
	}
	m := regexp.MustCompile(`inet6 (fe80::[0-9a-f:]+)/64`).FindStringSubmatch(out)
	if m == nil {
		return netip.Addr{}, fmt.Errorf("no link-local address on the router's %s: %q", TunWANIf, out)
	}
	return netip.ParseAddr(m[1])
}

// Renumber makes the ISP hand out another /64 and pool: radvd advertises
// wan (and old with lifetime 0), kea delegates from pool only, so a Renew
// gets the old prefix with lifetime 0 and a new one.
func (t *IPoETopology) Renumber(wan, old, pool netip.Prefix) error {
	if _, err := t.Lab.Exec(t.ISP, "ip", "-6", "addr", "add", netip.PrefixFrom(wan.Addr().Next(), 64).String(), "dev", ISPWANIf, "nodad"); err != nil &&
		!strings.Contains(err.Error(), "exists") {
		return err
	}
	if err := t.Radvd.Reload(t.RadvdConfig(wan, old, 5400*time.Second)); err != nil {
		return err
	}
	t.keaCfg.Pools = []KeaPool{{Prefix: pool, DelegatedLen: 56}}
	return t.Kea.Reconfigure(t.keaCfg)
}

// Close stops the servers and removes the lab.
func (t *IPoETopology) Close() error {
	var errs []error
	if t.Radvd != nil {
		t.Radvd.Stop()
	}
	if t.Kea != nil {
		t.Kea.Stop()
	}
	if t.DNS != nil {
		errs = append(errs, t.DNS.Stop())
	}
	if t.Update != nil {
		errs = append(errs, t.Update.Close())
	}
	return errors.Join(append(errs, t.TunnelTopology.Close())...)
}

// UpdateServer is the ISP's provisioning endpoint (transix's update URL):
// it records each request's source address and credentials.
type UpdateServer struct {
	srv *http.Server
	mu  sync.Mutex
	got []UpdateRequest
}

// UpdateRequest is one request as the server saw it.
type UpdateRequest struct {
	Source             netip.Addr
	Username, Password string
	Time               time.Time
}

// StartUpdateServer serves http://[addr]:80/request in namespace ns.
func StartUpdateServer(lab interface {
	Do(string, func() error) error
}, ns string, addr netip.Addr) (*UpdateServer, error) {
	var ln net.Listener
	if err := lab.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp6", netip.AddrPortFrom(addr, 80).String())
		return err
	}); err != nil {
		return nil, fmt.Errorf("update server in %s: %w", ns, err)
	}
	u := &UpdateServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /request", func(w http.ResponseWriter, r *http.Request) {
		ap, _ := netip.ParseAddrPort(r.RemoteAddr)
		q := r.URL.Query()
		u.mu.Lock()
		u.got = append(u.got, UpdateRequest{Source: ap.Addr(), Username: q.Get("username"), Password: q.Get("password"), Time: time.Now()})
		u.mu.Unlock()
		fmt.Fprintf(w, "OK: %s is now bound to %s\n", ap.Addr(), FixedIPv4)
	})
	u.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go u.srv.Serve(ln)
	return u, nil
}

// Requests returns what was requested so far.
func (u *UpdateServer) Requests() []UpdateRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]UpdateRequest(nil), u.got...)
}

// Close stops the server.
func (u *UpdateServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return u.srv.Shutdown(ctx)
}
