package dhcp6pd

import (
	"context"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// MinRestartGap is the least time between two Restarts that act: a link
// that flaps, or RAs with the M flag from many sources on a shared WAN
// link, cannot make the client solicit faster than this.
const MinRestartGap = 10 * time.Second

// restartAfter is how far away the next Solicit must be for a Restart to
// act: one due sooner than this is as prompt as a restart would be.
const restartAfter = 2 * time.Second

// Restart asks a client that is still looking for a server to solicit
// again at once, rather than when its backed-off retransmission timer
// says (RFC 8415's Solicit timeout doubles up to SOL_MAX_RT, an hour:
// a client that started before the home gateway's DHCPv6 server would
// otherwise wait a minute or more after the server came up). The daemon
// calls it when a router begins to advertise the M or O flag; the client
// itself when its link comes up (a new link may have a new server, RFC
// 8415 18.2.12's spirit). A client that is requesting or holds a binding
// is left alone. why is logged.
func (c *Client) Restart(why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	select {
	case c.kick <- struct{}{}: // a closed socket is retried now
	default:
	}
	if c.state != StateSoliciting || c.ex == nil {
		c.log.Debug("dhcpv6-pd: restart not needed", "reason", why, "state", c.state)
		return
	}
	if !c.ex.next.After(now.Add(restartAfter)) {
		c.log.Debug("dhcpv6-pd: restart not needed, a Solicit is due soon", "reason", why, "due", c.ex.next.Sub(now).Round(time.Millisecond))
		return
	}
	if !c.lastRestart.IsZero() && now.Sub(c.lastRestart) < MinRestartGap {
		c.stats.RestartsSkipped++
		c.log.Debug("dhcpv6-pd: restart skipped, one just happened", "reason", why, "last", c.lastRestart)
		return
	}
	c.lastRestart = now
	c.stats.Restarts++
	c.failures = 0
	c.log.Info("dhcpv6-pd: soliciting again now", "reason", why,
		"instead_of_in", c.ex.next.Sub(now).Round(time.Millisecond), "solicits_so_far", c.stats.Sent["solicit"])
	c.startSolicit(now, c.randDelay(solMaxDelay))
	if c.rcancel != nil {
		c.rcancel()
	}
}

// watchLink starts following the interface's link (unless turned off):
// each time it comes up, Restart.
func (c *Client) watchLink(ctx context.Context) {
	if c.cfg.NoLinkWatch {
		return
	}
	watch := c.cfg.WatchLink
	if watch == nil {
		watch = NetlinkWatchLink
	}
	go func() {
		if err := watch(ctx, c.cfg.Interface, func() { c.Restart("link up") }); err != nil && ctx.Err() == nil {
			c.log.Warn("dhcpv6-pd: cannot follow the link state; solicitation restarts only on RAs", "error", err)
		}
	}()
}

// NetlinkWatchLink calls up each time ifname goes from not running (no
// carrier, or down) to running, until ctx ends; it watches the network
// namespace of the calling thread. It is Config.WatchLink's default.
func NetlinkWatchLink(ctx context.Context, ifname string, up func()) error {
	updates := make(chan netlink.LinkUpdate, 16)
	if err := netlink.LinkSubscribeWithOptions(updates, ctx.Done(), netlink.LinkSubscribeOptions{}); err != nil {
		return err
	}
	running := false
	if l, err := netlink.LinkByName(ifname); err == nil {
		running = l.Attrs().RawFlags&unix.IFF_RUNNING != 0
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				return nil
			}
			if u.Attrs().Name != ifname {
				continue
			}
			now := u.Header.Type != unix.RTM_DELLINK && u.IfInfomsg.Flags&unix.IFF_RUNNING != 0
			if now && !running {
				up()
			}
			running = now
		}
	}
}
