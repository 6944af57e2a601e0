package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// Traffic the demo makes itself where labkit's transfers do not fit: flows
// that must be refused, connections whose addresses each end reports, and
// one held open while conntrack is read.

// pingBlocked sends two echo requests from ns to dst and fails if one is
// answered: what the firewall is shown dropping must really be dropped.
func pingBlocked(ctx context.Context, sh labkit.Runner, ns string, dst netip.Addr) error {
	res, err := sh.InNS(ctx, ns, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", dst.String())
	if err == nil || !strings.Contains(res.Stdout, " 0 received") {
		return fmt.Errorf("%s: want no reply (blocked), got:\n%s%s", res.Cmdline, res.Stdout, res.Stderr)
	}
	return nil
}

// connectBlocked listens on dst in toNS and connects to it from fromNS; the
// connection must time out (its SYNs dropped) and nothing may be accepted.
func connectBlocked(ctx context.Context, lab *netlab.Lab, fromNS, toNS string, dst netip.Addr) error {
	var ln net.Listener
	if err := lab.Do(toNS, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	addr := ln.Addr().String()
	fmt.Printf("$ (in %s) connect to %s, 2 s timeout\n", fromNS, addr)
	var c net.Conn
	err := lab.Do(fromNS, func() (err error) {
		d := net.Dialer{Timeout: 2 * time.Second}
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	ln.Close()
	if c := <-accepted; c != nil {
		c.Close()
	}
	if err == nil {
		c.Close()
		return fmt.Errorf("%s connected to %s: the firewall should have dropped it", fromNS, addr)
	}
	var nerr net.Error
	if !errors.As(err, &nerr) || !nerr.Timeout() {
		return fmt.Errorf("connect from %s to %s: want a timeout (SYN dropped), got %w", fromNS, addr, err)
	}
	fmt.Printf("timed out: no SYN-ACK came back\n\n")
	return nil
}

// connResult is one verified TCP connection as each end saw it.
type connResult struct {
	ClientLocal, ClientRemote netip.AddrPort
	ServerLocal, ServerRemote netip.AddrPort
	ClientSegs, ServerSegs    uint32 // TCP_INFO segments sent
	Bytes                     int
	SHA                       [sha256.Size]byte
}

func (r connResult) print(client, server string) {
	fmt.Printf("  %-10s connected from %-28s to %s\n", client+":", r.ClientLocal, r.ClientRemote)
	fmt.Printf("  %-10s accepted  from %-28s on %s\n", server+":", r.ServerRemote, r.ServerLocal)
	fmt.Printf("  %d bytes, sha256 %x… identical on both ends; %s sent %d TCP segments, %s %d\n\n",
		r.Bytes, r.SHA[:8], client, r.ClientSegs, server, r.ServerSegs)
}

// connect opens a TCP connection from clientNS (from src, when valid) to
// a listener on dst in serverNS, sends size random bytes and checks the
// sha256 the server sends back; each end reports the addresses it sees.
func connect(ctx context.Context, lab *netlab.Lab, clientNS string, src netip.Addr, serverNS string, dst netip.Addr, size int) (connResult, error) {
	var r connResult
	var ln net.Listener
	if err := lab.Do(serverNS, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
		return err
	}); err != nil {
		return r, fmt.Errorf("listen in %s: %w", serverNS, err)
	}
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	type server struct {
		local, remote netip.AddrPort
		segs          uint32
		err           error
	}
	done := make(chan server, 1)
	go func() {
		var s server
		defer func() { done <- s }()
		c, err := ln.Accept()
		if err != nil {
			s.err = fmt.Errorf("accept: %w", err)
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		s.local, s.remote = addrPort(c.LocalAddr()), addrPort(c.RemoteAddr())
		h := sha256.New()
		if _, err := io.CopyN(h, c, int64(size)); err != nil {
			s.err = fmt.Errorf("receive: %w", err)
			return
		}
		if _, s.err = c.Write(h.Sum(nil)); s.err != nil {
			return
		}
		// Wait for the client's close, so that TCP_INFO counts it all.
		_, _ = io.Copy(io.Discard, c)
		var st labkit.TCPStats
		st, s.err = labkit.ConnTCPStats(c)
		s.segs = st.SegsOut
	}()
	var c net.Conn
	if err := lab.Do(clientNS, func() (err error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		c, err = d.DialContext(ctx, "tcp", ln.Addr().String())
		return err
	}); err != nil {
		ln.Close()
		<-done
		return r, fmt.Errorf("connect from %s to %s: %w", clientNS, ln.Addr(), err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r.ClientLocal, r.ClientRemote = addrPort(c.LocalAddr()), addrPort(c.RemoteAddr())
	data := make([]byte, size)
	_, _ = rand.Read(data)
	r.SHA, r.Bytes = sha256.Sum256(data), size
	got := make([]byte, sha256.Size)
	_, werr := c.Write(data)
	if werr == nil {
		_, werr = io.ReadFull(c, got)
	}
	if werr == nil {
		var st labkit.TCPStats
		st, werr = labkit.ConnTCPStats(c)
		r.ClientSegs = st.SegsOut
	}
	c.Close()
	s := <-done
	r.ServerLocal, r.ServerRemote, r.ServerSegs = s.local, s.remote, s.segs
	if err := errors.Join(werr, s.err); err != nil {
		return r, fmt.Errorf("TCP %s -> %s: %w", clientNS, ln.Addr(), err)
	}
	if string(got) != string(r.SHA[:]) {
		return r, fmt.Errorf("TCP %s -> %s: digest %x, want %x", clientNS, ln.Addr(), got, r.SHA)
	}
	return r, nil
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// heldFlow is a TCP connection from the LAN kept open, the client writing
// 1 KB every 20 ms, while the demo looks at conntrack.
type heldFlow struct {
	client, server net.Conn
	Port           uint16
	Writes         int
	stop, done     chan struct{}
	err            error
}

func holdFlow(ctx context.Context, lab *netlab.Lab, clientNS, serverNS string, dst netip.Addr) (*heldFlow, error) {
	var ln net.Listener
	if err := lab.Do(serverNS, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
		return err
	}); err != nil {
		return nil, err
	}
	defer ln.Close()
	f := &heldFlow{Port: uint16(ln.Addr().(*net.TCPAddr).Port), stop: make(chan struct{}), done: make(chan struct{})}
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	if err := lab.Do(clientNS, func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		f.client, err = d.DialContext(ctx, "tcp", ln.Addr().String())
		return err
	}); err != nil {
		return nil, err
	}
	select {
	case f.server = <-acc:
	case <-time.After(5 * time.Second):
	}
	if f.server == nil {
		f.client.Close()
		return nil, errors.New("the held connection was not accepted")
	}
	go func() { _, _ = io.Copy(io.Discard, f.server) }()
	go func() {
		defer close(f.done)
		buf := make([]byte, 1024)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-ctx.Done():
				f.err = ctx.Err()
				return
			case <-t.C:
			}
			if _, err := f.client.Write(buf); err != nil {
				f.err = err
				return
			}
			f.Writes++
		}
	}()
	return f, nil
}

// Close stops writing and closes both ends; it returns a write error.
func (f *heldFlow) Close() error {
	close(f.stop)
	<-f.done
	f.client.Close()
	f.server.Close()
	return f.err
}

var ctTimeoutRE = regexp.MustCompile(`(?m)^tcp\s+6\s+(\d+)\s+ESTABLISHED\s`)

// conntrackTimeout lists the TCP flows to port in ns (`conntrack -L`) and
// returns the timeout of the established one.
func conntrackTimeout(ctx context.Context, sh labkit.Runner, ns string, port uint16) (int, error) {
	res, err := sh.InNS(ctx, ns, "conntrack", "-L", "-p", "tcp", "--dport", strconv.Itoa(int(port)))
	if err != nil {
		return 0, err
	}
	m := ctTimeoutRE.FindStringSubmatch(res.Stdout)
	if m == nil {
		return 0, fmt.Errorf("%s: no ESTABLISHED entry:\n%s", res.Cmdline, res.Stdout)
	}
	return strconv.Atoi(m[1])
}

// firewallCounters reads the firewall's named counters from `status --json`.
func firewallCounters(ctx context.Context, cli labkit.CLI) (map[string]uint64, error) {
	q := cli
	q.Log = nil
	res, err := q.Run(ctx, "status", "--json")
	if err != nil {
		return nil, err
	}
	var st struct {
		Firewall *struct {
			Mode     string `json:"mode"`
			Counters []struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
			} `json:"counters"`
		} `json:"firewall"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		return nil, fmt.Errorf("decode %s: %w", res.Cmdline, err)
	}
	if st.Firewall == nil || st.Firewall.Mode != "default" {
		return nil, fmt.Errorf("%s: want firewall mode default, got %+v", res.Cmdline, st.Firewall)
	}
	out := map[string]uint64{}
	for _, c := range st.Firewall.Counters {
		out[c.Name] += c.Packets
	}
	return out, nil
}

// grepCLI runs the CLI with args and prints the lines that match re, as
// `| grep -E re` would.
func grepCLI(ctx context.Context, cli labkit.CLI, re string, args ...string) error {
	m, err := regexp.Compile(re)
	if err != nil {
		return err
	}
	fmt.Printf("$ %s | grep -E '%s'\n", labkit.Cmdline(nil, cli.Argv(args...)), re)
	res, err := cli.WithLog(nil).Run(ctx, args...)
	if err != nil {
		return err
	}
	for _, l := range strings.Split(res.Stdout, "\n") {
		if m.MatchString(l) {
			fmt.Println(l)
		}
	}
	fmt.Println()
	return nil
}

// sumPackets adds up the named counters.
func sumPackets(c labkit.Counters, names ...string) uint64 {
	var n uint64
	for _, name := range names {
		n += c[name].Packets
	}
	return n
}

// printDeltas prints the named counters' increase, one a line.
func printDeltas(d labkit.Counters, names ...string) {
	for _, n := range names {
		fmt.Printf("  %-18s +%d\n", n, d[n].Packets)
	}
	fmt.Println()
}
