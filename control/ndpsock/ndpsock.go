// Package ndpsock opens the ICMPv6 socket through which the WAN RA tracker
// and the LAN RA sender speak Neighbor Discovery. The socket is bound to
// the interface's link-local address (the source every RA and RS must
// carry) and reads the hop limit of each message, so receivers can apply
// RFC 4861's hop-limit-255 check themselves: nothing here depends on the
// kernel's accept_ra or forwarding sysctls.
package ndpsock

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// Conn is one interface's NDP socket.
type Conn struct {
	c    *ndp.Conn
	ifi  *net.Interface
	addr netip.Addr
}

// Open opens the socket on ifname, receiving only the ICMPv6 types in
// accept, and joins the multicast groups (e.g. ff02::2 to hear Router
// Solicitations). It fails while the interface has no usable link-local
// address (absent, or still tentative during DAD); callers retry.
func Open(ifname string, accept []ipv6.ICMPType, groups ...netip.Addr) (*Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("ndp socket on %s: %w", ifname, err)
	}
	c, addr, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return nil, fmt.Errorf("ndp socket on %s: %w", ifname, err)
	}
	conn := &Conn{c: c, ifi: ifi, addr: addr.WithZone("")}
	if err := conn.setup(accept, groups); err != nil {
		c.Close()
		return nil, fmt.Errorf("ndp socket on %s: %w", ifname, err)
	}
	return conn, nil
}

func (c *Conn) setup(accept []ipv6.ICMPType, groups []netip.Addr) error {
	var f ipv6.ICMPFilter
	f.SetAll(true)
	for _, t := range accept {
		f.Accept(t)
	}
	if err := c.c.SetICMPFilter(&f); err != nil {
		return fmt.Errorf("icmp filter: %w", err)
	}
	if err := c.c.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
		return fmt.Errorf("receive hop limit: %w", err)
	}
	for _, g := range groups {
		if err := c.c.JoinGroup(g); err != nil {
			return fmt.Errorf("join %s: %w", g, err)
		}
	}
	return nil
}

// ReadRaw reads one ICMPv6 message into b and returns its length, the IPv6
// hop limit it arrived with (-1 if the kernel did not say) and its source
// address without zone.
func (c *Conn) ReadRaw(b []byte) (int, int, netip.Addr, error) {
	n, cm, src, err := c.c.ReadRaw(b)
	if err != nil {
		return 0, 0, netip.Addr{}, err
	}
	hop := -1
	if cm != nil {
		hop = cm.HopLimit
	}
	return n, hop, src.WithZone(""), nil
}

// WriteTo sends m to dst from the link-local address with hop limit 255.
func (c *Conn) WriteTo(m ndp.Message, dst netip.Addr) error {
	return c.c.WriteTo(m, nil, dst)
}

// Addr is the link-local address the socket sends from.
func (c *Conn) Addr() netip.Addr { return c.addr }

// MAC is the interface's hardware address (nil on interfaces without one).
func (c *Conn) MAC() net.HardwareAddr { return c.ifi.HardwareAddr }

// Close closes the socket; a blocked ReadRaw returns an error.
func (c *Conn) Close() error { return c.c.Close() }
