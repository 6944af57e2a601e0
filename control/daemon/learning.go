package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/xdprouter/xdprouter/control"
	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/control/dhcp6pd"
	"github.com/xdprouter/xdprouter/control/endpoint"
	"github.com/xdprouter/xdprouter/control/lanra"
	"github.com/xdprouter/xdprouter/control/learned"
	"github.com/xdprouter/xdprouter/control/ndpwake"
	"github.com/xdprouter/xdprouter/control/reasm"
	"github.com/xdprouter/xdprouter/control/wanra"
)

// LearningOptions configure the tasks that learn from the network.
type LearningOptions struct {
	// Disabled runs no such task (unit tests of the daemon's other
	// parts, which have no network to learn from).
	Disabled bool
	// StateDir keeps what must survive a restart (the DHCPv6 DUID).
	StateDir string
	// ReleaseOnExit sends a DHCPv6 Release when the daemon stops.
	ReleaseOnExit bool
	// RAMinDelay is the least time between two RAs on a LAN; 0 is
	// lanRAMinDelay.
	RAMinDelay time.Duration
	// FinalRA sends the LANs a last RA with router lifetime 0 when the
	// daemon stops (with --detach-on-exit: the router stops routing);
	// otherwise the hosts keep the router while the data plane forwards.
	FinalRA bool
	// AttachReassembly attaches the data plane's decapsulation of
	// reassembled ipip6 and 6in4 to a device (loader.Dataplane.AttachReassembly);
	// nil runs no reassembly relay.
	AttachReassembly func(ifname string) (io.Closer, error)
}

// lanRAMinDelay lets a renumbering reach the LAN within a second. RFC
// 4861 asks for 3 s between multicast RAs (MIN_DELAY_BETWEEN_RAS) to
// bound their rate; one per second per LAN keeps it bounded and meets
// the promise that a prefix change is seen everywhere within a second.
const lanRAMinDelay = time.Second

// learning runs the tasks the config asks for and connects them to the
// reconciler: what they learn goes in through the inbox; what the
// reconciler puts in force comes back through inForce (LAN adverts).
type learning struct {
	opt   LearningOptions
	log   *slog.Logger
	inbox *inbox
	sup   *supervisor
	lanRA *lanra.Sender
	// dns is the learned DNS servers, shared by the resolver (tunnel
	// remotes given as names) and the provisioner (the update URL's host).
	dns         *endpoint.DNS
	resolver    *endpoint.Resolver
	provisioner *endpoint.Provisioner
	ndpWake     *ndpwake.Waker
	// pd is the DHCPv6 client, which a router starting to advertise
	// M/O restarts.
	pd pdRestarter
	// links asks for a pass when an interface the config names appears
	// or goes (a LAN interface made after the daemon started).
	links *linkWatcher
	// tx asks for a pass when a port's veth peer gains or loses NAPI.
	tx *txWatcher

	mu         sync.Mutex
	gen        uint64
	advertised map[string]bool
}

func newLearning(opt LearningOptions, log *slog.Logger) *learning {
	minDelay := opt.RAMinDelay
	if minDelay == 0 {
		minDelay = lanRAMinDelay
	}
	l := &learning{
		opt: opt, log: log, inbox: newInbox(), sup: newSupervisor(log),
		lanRA:      &lanra.Sender{MinDelay: minDelay, KeepOnStop: !opt.FinalRA, Log: log.With("task", "lan-ra")},
		dns:        endpoint.NewDNS(endpoint.DNSOptions{}),
		ndpWake:    &ndpwake.Waker{Log: log.With("task", "ndp-wake")},
		advertised: map[string]bool{},
	}
	l.resolver = endpoint.NewResolver(endpoint.ResolverOptions{DNS: l.dns, Log: log.With("task", "resolver"),
		Publish: func(r learned.Remote) { l.inbox.put("remote "+r.Name, control.InputChange{Remote: &r}) }})
	l.links = &linkWatcher{log: log.With("task", "links"), waiting: func() []string { return nil },
		retry: func(why string) { l.inbox.put("links", control.InputChange{Retry: why}) }}
	l.tx = &txWatcher{log: log.With("task", "tx-path"),
		retry: func(why string) { l.inbox.put("tx-path", control.InputChange{Retry: why}) }}
	l.provisioner = endpoint.NewProvisioner(endpoint.ProvisionerOptions{DNS: l.dns, Log: log.With("task", "provisioning")})
	return l
}

// specs are the tasks cfg asks for. A task's key holds every setting it
// was made with, so a reload restarts exactly the tasks it changes.
func (l *learning) specs(cfg *config.Config) []taskSpec {
	if l.opt.Disabled {
		return nil
	}
	var out []taskSpec
	if w := cfg.WAN; w != nil {
		ifname := w.Interface
		out = append(out, taskSpec{name: "wan-ra", key: ifname, new: func() task {
			return &wanra.Tracker{Interface: ifname, Log: l.log.With("task", "wan-ra"),
				Publish: func(ra learned.RA) { l.inbox.put("ra", control.InputChange{RA: &ra}) },
				Managed: l.pd.managed}
		}})
		if pd := w.DHCPv6PD; pd != nil {
			hint := pd.PrefixLengthHint
			out = append(out, taskSpec{name: "dhcpv6-pd", key: fmt.Sprintf("%s /%d %s %v", ifname, hint, l.opt.StateDir, l.opt.ReleaseOnExit),
				new: func() task {
					c, err := dhcp6pd.New(dhcp6pd.Config{Interface: ifname, PrefixLengthHint: hint, StateDir: l.opt.StateDir,
						ReleaseOnExit: l.opt.ReleaseOnExit, Logger: l.log.With("task", "dhcpv6-pd"),
						Publish: func(d learned.Delegation) { l.inbox.put("pd", control.InputChange{PD: &d}) }})
					if err != nil {
						return failed{err}
					}
					l.pd.set(c)
					return c
				}})
		}
	}
	// One sender, resolver and provisioner for the daemon's life: what
	// they work on follows the reconciler (inForce), not a restart.
	// Always there, LANs or not: a LAN that goes gets its final RA from
	// Remove, which a stopped sender could not send.
	out = append(out, taskSpec{name: "lan-ra", key: "lan-ra", new: func() task { return l.lanRA }})
	if len(remoteNames(cfg)) > 0 {
		out = append(out, taskSpec{name: "resolver", key: "resolver", new: func() task { return l.resolver }})
	}
	if len(provisioning(cfg)) > 0 {
		out = append(out, taskSpec{name: "provisioning", key: "provisioning", new: func() task { return l.provisioner }})
	}
	out = append(out, taskSpec{name: "links", key: "links", new: func() task { return l.links }})
	out = append(out, taskSpec{name: "tx-path", key: "tx-path", new: func() task { return l.tx }})
	// Outer-fragmented ipip6 and 6in4 reach the kernel's raw sockets
	// only: one relay reads the sockets of the modes configured.
	if len(cfg.Tunnels) > 0 && l.opt.AttachReassembly != nil {
		ipip6 := slices.ContainsFunc(cfg.Tunnels, func(t config.Tunnel) bool { return t.Mode != "6in4" })
		sixInFour := slices.ContainsFunc(cfg.Tunnels, func(t config.Tunnel) bool { return t.Mode == "6in4" })
		out = append(out, taskSpec{name: "tunnel-reassembly", key: fmt.Sprintf("ipip6 %t 6in4 %t", ipip6, sixInFour),
			new: func() task {
				return &reasm.Relay{Attach: l.opt.AttachReassembly, Log: l.log.With("task", "tunnel-reassembly"),
					IPIP6: ipip6, SixInFour: sixInFour}
			}})
	}
	if wantsNDPWake(cfg) {
		out = append(out, taskSpec{name: "ndp-wake", key: "ndp-wake", new: func() task { return l.ndpWake }})
	}
	return out
}

func remoteNames(cfg *config.Config) []string {
	var out []string
	for _, t := range cfg.Tunnels {
		if t.RemoteName != "" {
			out = append(out, t.RemoteName)
		}
	}
	return out
}

func provisioning(cfg *config.Config) map[string]endpoint.Provisioning {
	out := map[string]endpoint.Provisioning{}
	for _, t := range cfg.Tunnels {
		if t.Provisioning != nil {
			out[t.Name] = *t.Provisioning
		}
	}
	return out
}

// inForce is the reconciler's InForce hook: a new config starts and stops
// tasks; every pass hands the LANs what to advertise.
func (l *learning) inForce(in control.Inputs, p control.Plan) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if in.Generation != l.gen {
		l.gen = in.Generation
		l.sup.Sync(l.specs(in.Config))
		l.resolver.SetNames(remoteNames(in.Config))
		l.links.SetNames(in.Config.Interfaces())
		l.tx.SetNames(in.Config.Interfaces())
		l.provisioner.SetConfig(provisioning(in.Config))
	}
	if l.opt.Disabled {
		return
	}
	var servers []netip.Addr
	for _, s := range p.DNS {
		servers = append(servers, s.Addr)
	}
	l.dns.SetServers(servers)
	// A tunnel waiting for its address has none (the provisioner waits);
	// every programmed one has its current local address.
	locals := map[string]netip.Addr{}
	for _, t := range control.ResolvedTunnels(in, p) {
		locals[t.Name] = t.Local
	}
	for name := range provisioning(in.Config) {
		l.provisioner.SetLocal(name, locals[name])
	}
	l.ndpWake.Set(wakeConfig(in, p))
	now := map[string]bool{}
	own := ownAddrs(p)
	for _, ad := range p.Adverts() {
		var fixed []lanra.FixedPrefix
		for _, f := range ad.Fixed {
			fixed = append(fixed, lanra.FixedPrefix{Prefix: f, Valid: control.FixedValid, Preferred: control.FixedPreferred})
		}
		l.lanRA.Set(ad.Interface, lanra.Advert{Prefixes: ad.Prefixes, Fixed: fixed, DNS: ad.DNS, Own: own, DNSSL: ad.DNSSL, MTU: ad.MTU,
			RouterLifetime: ad.RouterLifetime})
		now[ad.Interface] = true
	}
	for ifname := range l.advertised {
		if !now[ifname] {
			l.lanRA.Remove(ifname)
		}
	}
	l.advertised = now
}

// ownAddrs are the router's own addresses under p (WAN, LANs, retired
// LAN addresses): a WAN RA naming one as a DNS server is not passed on to
// the LANs, the router runs no resolver there.
func ownAddrs(p control.Plan) []netip.Addr {
	var out []netip.Addr
	add := func(a control.Addr6) {
		if a.IsValid() {
			out = append(out, a.Prefix.Addr())
		}
	}
	add(p.WANAddr)
	for _, l := range p.LANs {
		add(l.Addr)
		for _, r := range l.RetiredAddrs {
			add(r)
		}
		for _, f := range l.Fixed {
			add(f.Addr)
		}
	}
	return out
}

// stats are the tasks' counters for the status API, by task name.
func (l *learning) stats() map[string]any {
	out := map[string]any{}
	for name, err := range l.sup.Errors() {
		out[name+"-last-error"] = err
	}
	for name, n := range l.sup.Panics() {
		out[name+"-panics"] = n
	}
	for _, name := range []string{"wan-ra", "dhcpv6-pd", "lan-ra", "resolver", "provisioning", "ndp-wake", "tunnel-reassembly"} {
		switch t := l.sup.Task(name).(type) {
		case *dhcp6pd.Client:
			out[name] = t.Stats()
		case *wanra.Tracker:
			out[name] = t.Stats()
		case *lanra.Sender:
			out[name] = t.Stats()
		case *endpoint.Resolver:
			out[name] = t.Stats()
		case *endpoint.Provisioner:
			out[name] = t.Stats()
		case *ndpwake.Waker:
			out[name] = t.Stats()
		case *reasm.Relay:
			out[name] = t.Stats()
		}
	}
	return out
}

// failed is a task that could not be made (bad settings): it reports why
// each time the supervisor starts it.
type failed struct{ err error }

func (f failed) Run(context.Context) error { return f.err }
