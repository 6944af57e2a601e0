package labkit

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/xdprouter/xdprouter/test/netlab"
)

// streamPort is where host-b receives the sequenced UDP stream.
const streamPort = 9999

// Stream is a steady UDP stream from one namespace to another, each
// datagram carrying a sequence number, so that loss is counted exactly:
// what a daemon restart or reload must not disturb.
//
// Before the stream starts, the receiver answers one hello datagram, so
// conntrack holds the flow as replied (SEEN_REPLY) and the conntrack gate
// of a router on the way carries the sequenced datagrams in XDP: a
// one-way flow stays unreplied and goes through the kernel for good
// (pass_ct_unreplied).
type Stream struct {
	send, recv *net.UDPConn
	stop       chan struct{}
	started    time.Time
	elapsed    time.Duration
	sent       uint64
	sendErr    error
	senderDone chan struct{}

	mu       sync.Mutex
	seen     map[uint64]bool
	dups     int
	lastRecv time.Time
	recvDone chan struct{}
}

// StreamResult counts one stream.
type StreamResult struct {
	Sent, Received, Lost, Duplicates int
	Elapsed                          time.Duration
}

func (r StreamResult) String() string {
	return fmt.Sprintf("sent %d, received %d, lost %d, duplicates %d in %v (%.0f pkt/s)",
		r.Sent, r.Received, r.Lost, r.Duplicates, r.Elapsed.Round(time.Millisecond), float64(r.Sent)/r.Elapsed.Seconds())
}

// StartStream sends pps datagrams per second from srcNS to dst, which must
// be an address of dstNS, until Stop.
func StartStream(lab *netlab.Lab, srcNS, dstNS string, dst netip.Addr, pps int) (*Stream, error) {
	s := &Stream{stop: make(chan struct{}), senderDone: make(chan struct{}), recvDone: make(chan struct{}), seen: map[uint64]bool{}}
	laddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, streamPort))
	// Sockets keep the namespace they were opened in, so only opening
	// them needs the namespace switch.
	if err := lab.Do(dstNS, func() (err error) {
		s.recv, err = net.ListenUDP("udp", laddr)
		return err
	}); err != nil {
		return nil, fmt.Errorf("stream receiver in %s: %w", dstNS, err)
	}
	// Room for seconds of traffic: a slow reader must not look like loss.
	if err := s.recv.SetReadBuffer(8 << 20); err != nil {
		s.recv.Close()
		return nil, err
	}
	if err := lab.Do(srcNS, func() (err error) {
		s.send, err = net.DialUDP("udp", nil, laddr)
		return err
	}); err != nil {
		s.recv.Close()
		return nil, fmt.Errorf("stream sender in %s: %w", srcNS, err)
	}
	if err := s.handshake(); err != nil {
		s.recv.Close()
		s.send.Close()
		return nil, err
	}
	s.started = time.Now()
	go s.receive()
	go s.transmit(pps)
	return s, nil
}

// streamDatagramLen is the length of a sequenced datagram; receive
// ignores any other (a late copy of the handshake's hello).
const streamDatagramLen = 64

// streamHello is the handshake's datagram.
var streamHello = []byte("xdprouter lab stream hello......")

// handshake sends hello datagrams until the receiver's answer comes back
// to the sender (a few tries: the first may wait for a neighbour).
func (s *Stream) handshake() error {
	buf := make([]byte, 64)
	var last error
	for try := 0; try < 5; try++ {
		if _, err := s.send.Write(streamHello); err != nil {
			return fmt.Errorf("stream hello: %w", err)
		}
		_ = s.recv.SetReadDeadline(time.Now().Add(time.Second))
		n, from, err := s.recv.ReadFromUDPAddrPort(buf)
		if err != nil {
			last = err
			continue
		}
		if n != len(streamHello) {
			continue
		}
		if _, err := s.recv.WriteToUDPAddrPort(streamHello, from); err != nil {
			return fmt.Errorf("stream hello answer to %s: %w", from, err)
		}
		_ = s.send.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := s.send.Read(buf); err != nil {
			last = err
			continue
		}
		_ = s.recv.SetReadDeadline(time.Time{})
		_ = s.send.SetReadDeadline(time.Time{})
		return nil
	}
	return fmt.Errorf("stream handshake: no answer after 5 tries: %w", last)
}

func (s *Stream) transmit(pps int) {
	defer close(s.senderDone)
	buf := make([]byte, streamDatagramLen)
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			// Catch up to the rate however late the tick was.
			due := uint64(now.Sub(start).Seconds() * float64(pps))
			for ; s.sent < due; s.sent++ {
				binary.BigEndian.PutUint64(buf, s.sent)
				if _, err := s.send.Write(buf); err != nil {
					s.sendErr = fmt.Errorf("send datagram %d: %w", s.sent, err)
					return
				}
			}
		}
	}
}

func (s *Stream) receive() {
	defer close(s.recvDone)
	buf := make([]byte, 2048)
	for {
		n, err := s.recv.Read(buf)
		if err != nil {
			return // closed by Stop
		}
		if n != streamDatagramLen {
			continue
		}
		seq := binary.BigEndian.Uint64(buf)
		s.mu.Lock()
		if s.seen[seq] {
			s.dups++
		}
		s.seen[seq] = true
		s.lastRecv = time.Now()
		s.mu.Unlock()
	}
}

// Received is how many distinct datagrams arrived so far.
func (s *Stream) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// Stop ends the stream, waits for datagrams still in flight and counts.
func (s *Stream) Stop() (StreamResult, error) {
	close(s.stop)
	<-s.senderDone
	s.elapsed = time.Since(s.started)
	// In flight means milliseconds; wait until nothing has arrived for
	// half a second, or everything has.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		done := uint64(len(s.seen)) >= s.sent || time.Since(s.lastRecv) > 500*time.Millisecond
		s.mu.Unlock()
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.recv.Close()
	s.send.Close()
	<-s.recvDone
	s.mu.Lock()
	defer s.mu.Unlock()
	res := StreamResult{Sent: int(s.sent), Received: len(s.seen), Duplicates: s.dups, Elapsed: s.elapsed}
	res.Lost = res.Sent - res.Received
	return res, s.sendErr
}
