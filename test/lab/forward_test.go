package lab

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// bulkSize is the TCP payload per address family: large enough that the
// connection's few slow-path packets (SYN before the neighbour is known,
// ARP/ND) are noise next to it.
const bulkSize = 10 << 20

// TestForwarding attaches xdprouter to both router ports and checks that
// IPv4 and IPv6 between the hosts work and that the XDP path, not the
// kernel, carried the bulk of a TCP transfer.
func TestForwarding(t *testing.T) {
	topo, cli, ctx := newLab(t)
	r := cli.Runner

	out := mustCLI(t, ctx, cli, "attach", labkit.RouterIfA, labkit.RouterIfB, "--role", "lan")
	for _, dev := range []string{labkit.RouterIfA, labkit.RouterIfB} {
		if !xdpProgOn(t, ctx, r, topo.Router, dev) {
			t.Fatalf("after attach, `ip -d link show %s` shows no XDP program:\n%s", dev, out.Stdout)
		}
	}
	// A separate `ip netns exec` sees the state attach pinned: it survived
	// the command (and its throwaway mount namespace) that created it.
	st := mustStatus(t, ctx, cli)
	for _, dev := range []string{labkit.RouterIfA, labkit.RouterIfB} {
		if i := mustIface(t, st, dev); i.LinkID == 0 || i.Role != "lan" {
			t.Errorf("status for %s: link %d role %q, want a link and role lan", dev, i.LinkID, i.Role)
		}
	}

	for _, dst := range []netip.Addr{labkit.HostB4.Addr(), labkit.HostB6.Addr()} {
		if _, err := r.Ping(ctx, topo.HostA, dst, 3); err != nil {
			t.Fatalf("ping host-b: %v", err)
		}
	}

	for _, tc := range []struct {
		name    string
		dst     netip.Addr
		counter string
	}{
		{"IPv4", labkit.HostB4.Addr(), "fwd_ipv4"},
		{"IPv6", labkit.HostB6.Addr(), "fwd_ipv6"},
	} {
		t.Run("TCP-"+tc.name, func(t *testing.T) {
			cli := cli.WithLog(t)
			before, err := cli.Counters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			res, err := labkit.Transfer(ctx, topo.Lab, topo.HostA, topo.HostB, tc.dst, bulkSize)
			if err != nil {
				t.Fatal(err)
			}
			after, err := cli.Counters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			delta := after.Sub(before)
			fwd := delta[tc.counter]
			t.Logf("TCP %s -> [%s]: %d bytes in %v (%.0f Mbit/s), sha256 %s on both ends",
				tc.name, tc.dst, res.Bytes, res.Elapsed.Round(time.Millisecond), res.Throughput(), res.RecvSHA)
			t.Logf("TCP segments: host-a sent %d (%d with data, %d retransmitted), host-b sent %d",
				res.SenderTCP.SegsOut, res.SenderTCP.DataSegsOut, res.SenderTCP.TotalRetrans, res.RecvTCP.SegsOut)
			t.Logf("counters during the transfer: %s", delta)

			if res.Bytes != bulkSize || res.SentSHA != res.RecvSHA {
				t.Fatalf("content: sent %d bytes %s, received %d bytes %s", int64(bulkSize), res.SentSHA, res.Bytes, res.RecvSHA)
			}
			// fwd_* counts both directions (the ACKs too), so the data
			// direction alone is the bound the contract names, and the bytes
			// show that the large segments, not only ACKs, took the XDP path.
			if want := uint64(res.SenderTCP.SegsOut) * 9 / 10; fwd.Packets < want {
				t.Errorf("%s: %d packets forwarded in XDP, want >= 90%% of the %d TCP segments host-a sent (%d)",
					tc.counter, fwd.Packets, res.SenderTCP.SegsOut, want)
			}
			// Both directions cross the router, so all their segments are
			// the fair reference for a counter that cannot tell them apart.
			both := uint64(res.SenderTCP.SegsOut) + uint64(res.RecvTCP.SegsOut)
			if want := both * 9 / 10; fwd.Packets < want {
				t.Errorf("%s: %d packets forwarded in XDP, want >= 90%% of the %d TCP segments both hosts sent (%d)",
					tc.counter, fwd.Packets, both, want)
			}
			if fwd.Bytes < bulkSize {
				t.Errorf("%s: %d bytes forwarded in XDP, want >= %d (the payload alone)", tc.counter, fwd.Bytes, bulkSize)
			}
		})
	}

	all, err := cli.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("counters at the end: %s", all)
	if _, err := cli.Run(ctx, "stats"); err != nil {
		t.Error(err)
	}
}
