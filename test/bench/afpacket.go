package main

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// packetSender transmits one frame template out of an interface through an
// AF_PACKET socket, in sendmmsg batches, paced to a rate. Unlike a
// live-frames test run it needs no XDP dispatcher switch to start or stop
// (each of those waits for RCU and stalls the forwarding measured on the
// other CPU), and it can send a steady trickle instead of bursts.
type packetSender struct {
	fd    int
	msgs  []mmsghdr
	iov   unix.Iovec
	frame []byte
}

// mmsghdr is struct mmsghdr; x/sys/unix has no sendmmsg wrapper.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// newPacketSender opens the socket on ifindex, which must be in the calling
// thread's network namespace (the socket stays in it afterwards). batch is
// the most frames one sendmmsg hands the kernel.
func newPacketSender(ifindex int, frame []byte, batch int) (*packetSender, error) {
	// Protocol 0: the socket sends only, so no receive hook is installed
	// and nothing is copied to it.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind AF_PACKET socket to ifindex %d: %w", ifindex, err)
	}
	// Straight to the driver: a veth has no qdisc worth measuring, and
	// the bypass keeps the sender's own cost small.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("PACKET_QDISC_BYPASS: %w", err)
	}
	s := &packetSender{fd: fd, frame: append([]byte(nil), frame...), msgs: make([]mmsghdr, batch)}
	s.iov.Base = &s.frame[0]
	s.iov.SetLen(len(s.frame))
	for i := range s.msgs {
		s.msgs[i].hdr.Iov = &s.iov
		s.msgs[i].hdr.SetIovlen(1)
	}
	return s, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Close closes the socket.
func (s *packetSender) Close() error { return unix.Close(s.fd) }

// send hands n (at most the batch size) copies of the frame to the kernel
// and returns how many it took.
func (s *packetSender) send(n int) (int, error) {
	for {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd),
			uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(n), 0, 0, 0)
		runtime.KeepAlive(s)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.ENOBUFS || errno == unix.EAGAIN:
			return 0, nil // the device pushed back: those frames are not sent
		case errno != 0:
			return 0, fmt.Errorf("sendmmsg: %w", errno)
		}
		return int(r), nil
	}
}

// pace sends at rate frames per second until stop closes, in batches of at
// most the socket's batch size, and returns the frames the kernel accepted
// and the time it took.
func (s *packetSender) pace(rate float64, stop <-chan struct{}) (uint64, time.Duration, error) {
	return paced(rate, len(s.msgs), stop, s.send)
}

// paced calls send with batches of at most batch frames so that rate frames
// per second go out on average, until stop closes. It sleeps between
// batches, so at 100k/s with batches of at most 32 the load is a steady
// trickle (a batch of ~25 frames every ~0.25 ms), not bursts; frames send
// did not take are not asked for again later (catching up would be a burst).
func paced(rate float64, batch int, stop <-chan struct{}, send func(n int) (int, error)) (uint64, time.Duration, error) {
	var accepted, due uint64
	start := time.Now()
	// Half a batch's worth: with the ~70 µs a wake-up takes beyond the
	// request, one wake-up finds about half a batch to several frames due.
	// nanosleep, not time.Sleep: Go's timers wake about every 1 ms here,
	// which would make the flood 100-frame bursts.
	nap := unix.NsecToTimespec(int64(float64(batch) / rate / 2 * float64(time.Second)))
	for {
		select {
		case <-stop:
			return accepted, time.Since(start), nil
		default:
		}
		now := uint64(time.Since(start).Seconds() * rate)
		if now <= due {
			if err := unix.Nanosleep(&nap, nil); err != nil && err != unix.EINTR {
				return accepted, time.Since(start), fmt.Errorf("nanosleep: %w", err)
			}
			continue
		}
		ask := min(now-due, uint64(batch))
		n, err := send(int(ask))
		if err != nil {
			return accepted, time.Since(start), err
		}
		due += ask
		accepted += uint64(n)
	}
}
