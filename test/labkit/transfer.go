package labkit

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/xdprouter/xdprouter/test/netlab"
	"golang.org/x/sys/unix"
)

// TransferResult describes one verified TCP transfer.
type TransferResult struct {
	Bytes     int64  // bytes the receiver read
	SentSHA   string // sha256 of what the sender wrote, hex
	RecvSHA   string // sha256 of what the receiver read, hex
	Elapsed   time.Duration
	SenderTCP TCPStats // the data direction
	RecvTCP   TCPStats // the ACK direction
	// Client is the connecting end's address as the listening end's
	// accept saw it: what NAT or NPT on the way made of its source.
	Client netip.AddrPort
}

// TCPStats are the kernel's per-connection segment counts (TCP_INFO): every
// segment either end sent crossed the router, so they are the reference for
// how many packets the data plane should have seen.
type TCPStats struct {
	SegsOut      uint32 // all segments sent, GSO super-packets counted per MSS
	DataSegsOut  uint32
	SegsIn       uint32
	TotalRetrans uint32
}

// Throughput is in megabits per second.
func (r TransferResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) * 8 / r.Elapsed.Seconds() / 1e6
}

const transferTimeout = 60 * time.Second

// listenIn opens a TCP listener on addr (any port) inside namespace ns; it
// closes when ctx ends or when the returned func is called.
// dialIn connects to addr from namespace ns, from source address src
// when it is valid (else the kernel's choice); the socket stays in ns.
func dialIn(ctx context.Context, lab *netlab.Lab, ns string, src netip.Addr, addr net.Addr) (net.Conn, error) {
	var conn net.Conn
	err := lab.Do(ns, func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		if src.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		var err error
		conn, err = d.DialContext(ctx, "tcp", addr.String())
		return err
	})
	return conn, err
}

func listenIn(ctx context.Context, lab *netlab.Lab, ns string, addr netip.Addr) (net.Listener, func(), error) {
	return listenInPort(ctx, lab, ns, netip.AddrPortFrom(addr, 0))
}

func listenInPort(ctx context.Context, lab *netlab.Lab, ns string, addr netip.AddrPort) (net.Listener, func(), error) {
	var ln net.Listener
	err := lab.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s in %s: %w", addr, ns, err)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	return ln, func() { stop(); ln.Close() }, nil
}

// Transfer sends size random bytes over TCP from namespace fromNS to
// address to in namespace toNS. The receiver hashes what it reads and sends
// the digest back; the transfer fails unless both ends agree on the length
// and the digest. It is bounded by ctx and by a one-minute deadline.
func Transfer(ctx context.Context, lab *netlab.Lab, fromNS, toNS string, to netip.Addr, size int64) (TransferResult, error) {
	return TransferVia(ctx, lab, fromNS, toNS, netip.AddrPort{}, netip.AddrPortFrom(to, 0), size)
}

// TransferVia is Transfer to a listener on listen in toNS, connected to at
// dial from fromNS: the two differ where a port forward (DNAT) lies
// between them. An invalid dial means the listener's own address.
func TransferVia(ctx context.Context, lab *netlab.Lab, fromNS, toNS string, dial, listen netip.AddrPort, size int64) (TransferResult, error) {
	return transfer(ctx, lab, fromNS, netip.Addr{}, toNS, dial, listen, size)
}

// TransferFrom is Transfer from source address src (of a host with more
// than one: which one it sends from decides the way out).
func TransferFrom(ctx context.Context, lab *netlab.Lab, fromNS string, src netip.Addr, toNS string, to netip.Addr, size int64) (TransferResult, error) {
	return transfer(ctx, lab, fromNS, src, toNS, netip.AddrPort{}, netip.AddrPortFrom(to, 0), size)
}

func transfer(ctx context.Context, lab *netlab.Lab, fromNS string, src netip.Addr, toNS string, dial, listen netip.AddrPort, size int64) (TransferResult, error) {
	var res TransferResult
	ln, closeLn, err := listenInPort(ctx, lab, toNS, listen)
	if err != nil {
		return res, err
	}
	defer closeLn()
	target := ln.Addr()
	if dial.IsValid() {
		target = net.TCPAddrFromAddrPort(dial)
	}

	type recvOut struct {
		n      int64
		sum    []byte
		tcp    TCPStats
		client netip.AddrPort
		err    error
	}
	recvDone := make(chan recvOut, 1)
	go func() {
		var out recvOut
		defer func() { recvDone <- out }()
		c, err := ln.Accept()
		if err != nil {
			out.err = fmt.Errorf("accept: %w", err)
			return
		}
		defer c.Close()
		out.client = c.RemoteAddr().(*net.TCPAddr).AddrPort()
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
		_ = c.SetDeadline(time.Now().Add(transferTimeout))
		h := sha256.New()
		if out.n, err = io.Copy(h, c); err != nil {
			out.err = fmt.Errorf("receive: %w", err)
			return
		}
		out.sum = h.Sum(nil)
		// The digest goes back on the same connection so the sender also
		// checks, end to end, what arrived.
		if _, err := c.Write(out.sum); err != nil {
			out.err = fmt.Errorf("send digest back: %w", err)
			return
		}
		out.tcp, out.err = ConnTCPStats(c)
	}()

	start := time.Now()
	conn, err := dialIn(ctx, lab, fromNS, src, target)
	if err != nil {
		ln.Close()
		<-recvDone
		return res, fmt.Errorf("connect from %s to %s: %w", fromNS, target, err)
	}
	sent, sendTCP, sendErr := send(ctx, conn.(*net.TCPConn), size)
	out := <-recvDone
	res.Elapsed = time.Since(start)
	res.Bytes, res.RecvTCP, res.SenderTCP, res.Client = out.n, out.tcp, sendTCP, out.client
	res.SentSHA, res.RecvSHA = hex.EncodeToString(sent), hex.EncodeToString(out.sum)
	if err := errors.Join(sendErr, out.err); err != nil {
		return res, fmt.Errorf("TCP %s -> %s: %w", fromNS, target, err)
	}
	if res.Bytes != size || res.SentSHA != res.RecvSHA {
		return res, fmt.Errorf("TCP %s -> %s: sent %d bytes sha256 %s, received %d bytes sha256 %s",
			fromNS, target, size, res.SentSHA, res.Bytes, res.RecvSHA)
	}
	return res, nil
}

// send writes size bytes of a seeded random stream, half-closes, and reads
// the receiver's digest, which it compares with its own.
func send(ctx context.Context, c *net.TCPConn, size int64) (sum []byte, st TCPStats, err error) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(transferTimeout))

	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, st, fmt.Errorf("seed: %w", err)
	}
	src := rand.NewChaCha8(seed)
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for left := size; left > 0; {
		chunk := buf[:min(int64(len(buf)), left)]
		_, _ = src.Read(chunk) // ChaCha8.Read never fails
		h.Write(chunk)
		if _, err := c.Write(chunk); err != nil {
			return nil, st, fmt.Errorf("send: %w", err)
		}
		left -= int64(len(chunk))
	}
	sum = h.Sum(nil)
	if err := c.CloseWrite(); err != nil {
		return sum, st, fmt.Errorf("half-close: %w", err)
	}
	peer := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, peer); err != nil {
		return sum, st, fmt.Errorf("read the receiver's digest: %w", err)
	}
	if !bytes.Equal(peer, sum) {
		return sum, st, fmt.Errorf("receiver's digest %x differs from the sender's %x", peer, sum)
	}
	st, err = ConnTCPStats(c)
	return sum, st, err
}

// ConnTCPStats reads TCP_INFO of c.
func ConnTCPStats(c net.Conn) (TCPStats, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return TCPStats{}, fmt.Errorf("not a TCP connection: %T", c)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return TCPStats{}, fmt.Errorf("tcp_info: %w", err)
	}
	var info *unix.TCPInfo
	var ierr error
	if err := raw.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return TCPStats{}, fmt.Errorf("tcp_info: %w", err)
	}
	if ierr != nil {
		return TCPStats{}, fmt.Errorf("tcp_info: %w", ierr)
	}
	return TCPStats{
		SegsOut:      info.Segs_out,
		DataSegsOut:  info.Data_segs_out,
		SegsIn:       info.Segs_in,
		TotalRetrans: info.Total_retrans,
	}, nil
}

// Download is Transfer the other way round on the same connection: a
// client in clientNS connects to a server listening on to in serverNS,
// which sends size random bytes; the client checks length and digest. It
// is the traffic shape of a LAN host behind NAT fetching from the internet.
func Download(ctx context.Context, lab *netlab.Lab, clientNS, serverNS string, to netip.Addr, size int64) (TransferResult, error) {
	return DownloadFrom(ctx, lab, clientNS, netip.Addr{}, serverNS, to, size)
}

// DownloadFrom is Download with the client's connection from source
// address src (invalid: the kernel's choice).
func DownloadFrom(ctx context.Context, lab *netlab.Lab, clientNS string, src netip.Addr, serverNS string, to netip.Addr, size int64) (TransferResult, error) {
	var res TransferResult
	ln, closeLn, err := listenIn(ctx, lab, serverNS, to)
	if err != nil {
		return res, err
	}
	defer closeLn()

	type sendOut struct {
		sum    []byte
		tcp    TCPStats
		client netip.AddrPort
		err    error
	}
	sent := make(chan sendOut, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sent <- sendOut{err: fmt.Errorf("accept: %w", err)}
			return
		}
		client := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		sum, tcp, err := send(ctx, c.(*net.TCPConn), size)
		sent <- sendOut{sum: sum, tcp: tcp, client: client, err: err}
	}()

	start := time.Now()
	conn, err := dialIn(ctx, lab, clientNS, src, ln.Addr())
	if err != nil {
		ln.Close()
		<-sent
		return res, fmt.Errorf("connect from %s to %s: %w", clientNS, ln.Addr(), err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(transferTimeout))
	h := sha256.New()
	n, rerr := io.Copy(h, conn)
	sum := h.Sum(nil)
	var werr error
	if rerr == nil {
		_, werr = conn.Write(sum) // the sender checks the digest too
	}
	out := <-sent
	res.Elapsed = time.Since(start)
	res.Bytes, res.SenderTCP, res.Client = n, out.tcp, out.client
	res.SentSHA, res.RecvSHA = hex.EncodeToString(out.sum), hex.EncodeToString(sum)
	if err := errors.Join(rerr, werr, out.err); err != nil {
		return res, fmt.Errorf("TCP download %s <- %s: %w", clientNS, ln.Addr(), err)
	}
	if res.Bytes != size || res.SentSHA != res.RecvSHA {
		return res, fmt.Errorf("TCP download %s <- %s: sent %d bytes sha256 %s, received %d bytes sha256 %s",
			clientNS, ln.Addr(), size, res.SentSHA, res.Bytes, res.RecvSHA)
	}
	return res, nil
}
