package dhcp6pd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"
)

// Ports and the multicast group of RFC 8415 section 7.
const (
	ClientPort = 546
	ServerPort = 547
)

// AllServers is All_DHCP_Relay_Agents_and_Servers.
var AllServers = netip.MustParseAddr("ff02::1:2")

// errTimeout is what Conn.Receive returns when the deadline passes first.
var errTimeout = errors.New("receive deadline passed")

// Conn is the client's UDP socket on the WAN interface: it sends to the
// servers' multicast group and receives the servers' unicast answers.
type Conn interface {
	// Send transmits one message to ff02::1:2 port 547 on the interface.
	Send(b []byte) error
	// Receive waits for one datagram until deadline (errTimeout) or until
	// ctx ends (ctx.Err()).
	Receive(ctx context.Context, buf []byte, deadline time.Time) (int, netip.Addr, error)
	Close() error
}

// Clock is the time source; Conn.Receive deadlines are in its time.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// udpConn is a socket bound to the interface's link-local address, port
// 546: servers answer to the source address of the request, and RFC 8415
// wants that to be the link-local one.
type udpConn struct {
	c   *net.UDPConn
	dst *net.UDPAddr
}

// ListenUDP opens the client socket on ifname. It fails while the
// interface has no usable link-local address (down, or DAD running).
func ListenUDP(ifname string) (Conn, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("dhcpv6 socket: %w", err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, fmt.Errorf("dhcpv6 socket: addresses of %s: %w", ifname, err)
	}
	var lastErr error = fmt.Errorf("%s has no IPv6 link-local address", ifname)
	// The zone by index, not name: the net package caches name -> index
	// for up to a minute, and an interface made again under the same name
	// (a USB NIC plugged back, a namespace rebuilt) has a new index.
	zone := strconv.Itoa(ifc.Index)
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() != nil || !ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: ipn.IP, Port: ClientPort, Zone: zone})
		if err != nil {
			lastErr = err
			continue
		}
		dst := &net.UDPAddr{IP: AllServers.AsSlice(), Port: ServerPort, Zone: zone}
		return &udpConn{c: c, dst: dst}, nil
	}
	return nil, fmt.Errorf("dhcpv6 socket on %s: %w", ifname, lastErr)
}

func (u *udpConn) Send(b []byte) error {
	_, err := u.c.WriteToUDP(b, u.dst)
	return err
}

func (u *udpConn) Receive(ctx context.Context, buf []byte, deadline time.Time) (int, netip.Addr, error) {
	if err := u.c.SetReadDeadline(deadline); err != nil {
		return 0, netip.Addr{}, err
	}
	// Registered after the deadline is set, so a cancellation racing with
	// it still wins: it moves the deadline into the past.
	stop := context.AfterFunc(ctx, func() { _ = u.c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	n, from, err := u.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		if ctx.Err() != nil {
			return 0, netip.Addr{}, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, netip.Addr{}, errTimeout
		}
		return 0, netip.Addr{}, err
	}
	return n, from.Addr().WithZone(""), nil
}

func (u *udpConn) Close() error { return u.c.Close() }
