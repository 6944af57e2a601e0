package main

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
	"github.com/xdprouter/xdprouter/test/netlab"
)

// fakeSend records when each batch was asked for and takes every other
// frame when half is set.
type fakeSend struct {
	mu    sync.Mutex
	asked []int
	at    []time.Time
	half  bool
}

func (f *fakeSend) send(n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, n)
	f.at = append(f.at, time.Now())
	if f.half {
		return n / 2, nil
	}
	return n, nil
}

func runPaced(t *testing.T, f *fakeSend, rate float64, batch int, d time.Duration) (uint64, time.Duration) {
	t.Helper()
	stop := make(chan struct{})
	time.AfterFunc(d, func() { close(stop) })
	got, took, err := paced(rate, batch, stop, f.send)
	if err != nil {
		t.Fatal(err)
	}
	return got, took
}

func TestPacedKeepsTheRateInSmallBatches(t *testing.T) {
	f := &fakeSend{}
	const rate, batch = 100_000, 32
	got, took := runPaced(t, f, rate, batch, 300*time.Millisecond)
	want := rate * took.Seconds()
	if float64(got) < 0.95*want || float64(got) > 1.01*want {
		t.Errorf("sent %d frames in %v, want about %.0f", got, took, want)
	}
	// A trickle, not bursts: most batches are apart by a wake-up (~0.25
	// ms); a late wake-up is made up in back-to-back batches, which must
	// stay the exception.
	var gaps []float64
	for i := 1; i < len(f.at); i++ {
		gaps = append(gaps, float64(f.at[i].Sub(f.at[i-1])))
	}
	t.Logf("%d batches, median gap %v", len(f.asked), time.Duration(median(gaps)))
	if m := time.Duration(median(gaps)); m < 100*time.Microsecond {
		t.Errorf("median gap between batches %v, want about 0.25 ms", m)
	}
	for i, n := range f.asked {
		if n < 1 || n > batch {
			t.Fatalf("batch %d asked for %d frames, want 1..%d", i, n, batch)
		}
	}
}

func TestPacedDoesNotRetryRefusedFrames(t *testing.T) {
	f := &fakeSend{half: true}
	got, took := runPaced(t, f, 50_000, 16, 200*time.Millisecond)
	var asked int
	for _, n := range f.asked {
		asked += n
	}
	want := 50_000 * took.Seconds()
	if float64(asked) > 1.01*want {
		t.Errorf("asked for %d frames in %v at 50k/s: refused frames were asked for again", asked, took)
	}
	if got > uint64(asked)/2+uint64(len(f.asked)) {
		t.Errorf("counted %d accepted of %d asked, when the fake took half", got, asked)
	}
}

func TestPacedStopsOnSendError(t *testing.T) {
	boom := errors.New("boom")
	_, _, err := paced(1000, 8, make(chan struct{}), func(int) (int, error) { return 0, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the send error", err)
	}
}

func TestParseEthtoolStats(t *testing.T) {
	out := "NIC statistics:\n     peer_ifindex: 7\n     rx_queue_0_xdp_packets: 1234\n" +
		"     tx_queue_1_xdp_xmit_errors: 99\n     weird line\n     bad: x\n"
	m := parseEthtoolStats(out)
	want := map[string]uint64{"peer_ifindex": 7, "rx_queue_0_xdp_packets": 1234, "tx_queue_1_xdp_xmit_errors": 99}
	if len(m) != len(want) {
		t.Fatalf("parsed %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %d, want %d", k, m[k], v)
		}
	}
}

// TestPacketSenderOnVeth sends through a real AF_PACKET socket into a
// two-queue veth and counts what the peer received.
func TestPacketSenderOnVeth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	lab := labkit.NewLab(t)
	a, err := lab.AddNS("psa", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := lab.AddNS("psb", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.VethQueues(a, "pa", b, "pb", 2); err != nil {
		t.Fatal(err)
	}
	ch, err := lab.Exec(b, "ethtool", "-l", "pb")
	if err != nil {
		t.Fatal(err)
	}
	if cur := ch[strings.Index(ch, "Current"):]; !strings.Contains(cur, "RX:\t\t2") {
		t.Fatalf("pb does not use 2 RX queues:\n%s", ch)
	}
	pa, err := lookupIface(lab, a, "pa")
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 64)
	copy(frame, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(frame[6:], pa.mac)
	frame[12], frame[13] = 0x88, 0xb5 // local experimental EtherType
	var s *packetSender
	if err := lab.Do(a, func() error {
		s, err = newPacketSender(pa.index, frame, 8)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := rxPackets(t, lab, b, "pb")
	var sent int
	for sent < 100 {
		n, err := s.send(8)
		if err != nil {
			t.Fatal(err)
		}
		sent += n
	}
	time.Sleep(50 * time.Millisecond)
	if got := rxPackets(t, lab, b, "pb") - before; got < uint64(sent) {
		t.Fatalf("pb received %d frames of %d sent", got, sent)
	}
}

// rxPackets reads dev's receive counter through netlink (`ip -s`): /sys
// shows the namespace's devices only under `ip netns exec`, not where the
// lab enters namespaces with nsenter (a chroot, a fresh root).
func rxPackets(t *testing.T, lab *netlab.Lab, ns, dev string) uint64 {
	t.Helper()
	out, err := lab.Exec(ns, "ip", "-j", "-s", "link", "show", "dev", dev)
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		Stats struct {
			RX struct {
				Packets uint64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j -s link show dev %s: %v: %s", dev, err, out)
	}
	return links[0].Stats.RX.Packets
}

func TestCountsRuns(t *testing.T) {
	for _, c := range []struct {
		got, want   uint64
		interrupted int
		ok          bool
	}{
		{11000000, 11000000, 0, true},
		{11000001, 11000000, 0, false}, // an extra packet with no interrupted run
		{11000001, 11000000, 1, true},  // a run cut short after one repetition, then redone
		{12000000, 11000000, 1, true},
		{12000001, 11000000, 1, false},
		{10999999, 11000000, 3, false}, // a repetition missing is never excused
	} {
		if got := countsRuns(c.got, c.want, c.interrupted, 1000000); got != c.ok {
			t.Errorf("countsRuns(%d, %d, %d) = %v", c.got, c.want, c.interrupted, got)
		}
	}
}
