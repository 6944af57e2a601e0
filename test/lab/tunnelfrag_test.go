package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/test/labkit"
)

// fragProbe is one injection of ipip6 by the scripted AFTR (aftr.py
// inject) carrying UDP to the LAN host, and what must become of it.
type fragProbe struct {
	name string
	// remote is the outer source ("" is the configured AFTR).
	remote string
	// innerSrc is the inner IPv4 source ("" is the internet host).
	innerSrc string
	size     int // UDP payload bytes
	// fragSize fragments the outer packet (0: not fragmented); reverse
	// sends the fragments last first; encapLimit adds a Linux ip6tnl
	// peer's destination options header.
	fragSize   int
	reverse    bool
	encapLimit bool
	count      int
	// delivered is how many datagrams the host must receive, each with
	// the payload aftr.py sent; counter must rise by want.
	delivered int
	counter   string
	want      uint64
}

// fragPayloadSHA is the SHA-256 of aftr.py's pattern payload of n bytes.
func fragPayloadSHA(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sendFragProbe starts a receiver on the LAN host, injects p from the ISP
// side and returns the SHA-256 of every datagram received and the counter
// deltas. The receiver stops at an "end" marker sent locally once the
// injection is over (scapy's start-up time varies too much for a timeout).
func sendFragProbe(t *testing.T, ctx context.Context, cli labkit.CLI, topo *labkit.TunnelTopology, port int, p fragProbe) ([]string, labkit.Counters) {
	t.Helper()
	root, err := labkit.FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	mac, err := topo.Lab.MAC(topo.Router, labkit.TunWANIf)
	if err != nil {
		t.Fatal(err)
	}
	before := mustCounters(t, ctx, cli)
	recv := topo.Lab.Command(topo.Host, "timeout", "60", "/usr/bin/python3", "-c", fmt.Sprintf(
		"import socket,hashlib,json\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',%d))\n"+
			"got=[]\nwhile True:\n d=s.recvfrom(65535)[0]\n if d==b'end': break\n got.append(hashlib.sha256(d).hexdigest())\n"+
			"print(json.dumps(got))", port))
	out := &strings.Builder{}
	recv.Stdout = out
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	remote, src := p.remote, p.innerSrc
	if remote == "" {
		remote = labkit.AFTR6.String()
	}
	if src == "" {
		src = labkit.Internet4.Addr().String()
	}
	argv := []string{"/usr/bin/python3", filepath.Join(root, "test/aftr/aftr.py"), "inject",
		"--wan", labkit.ISPWANIf, "--dst-mac", mac.String(), "--src", remote, "--dst", labkit.TunRouterWAN6.Addr().String(),
		"--inner-src", src, "--inner-dst", labkit.TunHost4.Addr().String(), "--port", fmt.Sprint(port),
		"--count", fmt.Sprint(p.count), "--size", fmt.Sprint(p.size), "--df"}
	if p.fragSize > 0 {
		argv = append(argv, "--frag-size", fmt.Sprint(p.fragSize))
	}
	if p.reverse {
		argv = append(argv, "--reverse")
	}
	if p.encapLimit {
		argv = append(argv, "--encap-limit", "4")
	}
	if _, err := cli.Runner.InNS(ctx, topo.ISP, argv...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // in flight, and through the daemon's relay
	if _, err := topo.Lab.Exec(topo.Host, "/usr/bin/python3", "-c", fmt.Sprintf(
		"import socket;socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b'end',('127.0.0.1',%d))", port)); err != nil {
		t.Fatal(err)
	}
	if err := recv.Wait(); err != nil {
		t.Fatalf("receiver: %v", err)
	}
	var got []string
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("receiver printed %q: %v", out.String(), err)
	}
	return got, mustCounters(t, ctx, cli).Sub(before)
}

// checkFragProbe sends p and checks what the host received and the counter.
func checkFragProbe(t *testing.T, ctx context.Context, cli labkit.CLI, topo *labkit.TunnelTopology, port int, p fragProbe) labkit.Counters {
	t.Helper()
	got, delta := sendFragProbe(t, ctx, cli, topo, port, p)
	t.Logf("%s: host received %d datagrams; counters: %s", p.name, len(got), delta)
	if len(got) != p.delivered {
		t.Errorf("%s: host received %d datagrams, want %d", p.name, len(got), p.delivered)
	}
	for _, h := range got {
		if h != fragPayloadSHA(p.size) {
			t.Errorf("%s: payload sha256 %s, want %s (the %d bytes sent)", p.name, h, fragPayloadSHA(p.size), p.size)
		}
	}
	if p.counter != "" && delta[p.counter].Packets != p.want {
		t.Errorf("%s: %s +%d, want +%d", p.name, p.counter, delta[p.counter].Packets, p.want)
	}
	return delta
}

// TestTunnelOuterFragments: an AFTR that fragments the outer IPv6 packet
// (RFC 6333 5.3: the B4 reassembles, then decapsulates, as Linux ip6_tnl
// does). Before, such ipip6 was never decapsulated: XDP and TC passed the
// fragments, the kernel reassembled them and, with no ipip6 handler,
// answered the AFTR with a parameter problem. With `apply` alone that is
// still so, and status says it and the fragments are counted
// (pass_tun_fragment). With the daemon, the reassembled packet reaches its
// raw socket and goes back through the data plane's decapsulation
// (tc_decap_reassembled): a 1500-byte inner packet (larger than the tunnel
// MTU of 1460, the usual reason to fragment) arrives whole and intact, as
// do tiny fragments sent last first and a Linux peer's encapsulation limit
// option; fragments from a wrong remote, or carrying a LAN host's or the
// router's address as the inner source, are dropped and counted, as are
// unfragmented ones with a spoofed source (XDP). Unfragmented ipip6, which
// the data plane decapsulates itself, is delivered exactly once: the raw
// socket never sees it.
func TestTunnelOuterFragments(t *testing.T) {
	topo, cli, ctx := newDaemonTunnelLab(t)
	r := cli.Runner
	cfg := writeTunnelConfig(t, topo, tunnelConfig(""))
	big := fragProbe{name: "1500-byte inner packet in 1280-byte fragments", size: 1472, fragSize: 1280, count: 2,
		delivered: 2, counter: "tc_decap_reassembled", want: 2}

	t.Run("apply alone: counted, not decapsulated, said in status", func(t *testing.T) {
		cli := cli.WithLog(t)
		mustCLI(t, ctx, cli, "apply", "--config", cfg)
		st := mustStatus(t, ctx, cli)
		if !strings.Contains(st.OuterFragments, "not decapsulated") || !strings.Contains(st.OuterFragments, "pass_tun_fragment") {
			t.Errorf("status ipip6_outer_fragments %q: want it to say they are not decapsulated without the daemon and how they are counted", st.OuterFragments)
		}
		p := big
		p.delivered, p.counter, p.want = 0, "pass_tun_fragment", 4
		checkFragProbe(t, ctx, cli, topo, 9700, p)
		res := mustCLI(t, ctx, cli, "status")
		if !strings.Contains(res.Stdout, "outer-fragmented ipip6: not decapsulated") {
			t.Errorf("status does not say outer-fragmented ipip6 is not decapsulated:\n%s", res.Stdout)
		}
	})

	startDaemon(t, ctx, cli, cfg)
	st := waitFor(t, ctx, cli, "the reassembly relay", func(st labkit.Status) bool {
		return strings.Contains(st.OuterFragments, "decapsulated through")
	})
	t.Logf("ipip6_outer_fragments: %s; inner sources dropped: %+v", st.OuterFragments, st.TunnelSourceFilter)
	if _, err := r.Ping(ctx, topo.Host, labkit.Internet4.Addr(), 2); err != nil {
		t.Fatalf("ping the internet host through the tunnel: %v", err)
	}

	for i, p := range []fragProbe{
		big,
		{name: "odd AFTR: 200 bytes in 48-byte fragments, last first", size: 172, fragSize: 96, reverse: true, count: 1,
			delivered: 1, counter: "tc_decap_reassembled", want: 1},
		{name: "Linux peer: encapsulation limit option in the fragmentable part", size: 1472, fragSize: 1280, encapLimit: true, count: 1,
			delivered: 1, counter: "tc_decap_reassembled", want: 1},
		{name: "fragments from a wrong remote", remote: "2001:db8:f::99", size: 1472, fragSize: 1280, count: 1,
			counter: "tc_drop_unknown_endpoint", want: 1},
		{name: "fragments with a LAN host as the inner source", innerSrc: "192.168.1.77", size: 1472, fragSize: 1280, count: 1,
			counter: "tc_drop_src_lan", want: 1},
		{name: "fragments with the router's LAN address as the inner source", innerSrc: labkit.TunRouterLAN4.Addr().String(),
			size: 1472, fragSize: 1280, count: 1, counter: "tc_drop_src_local", want: 1},
		{name: "unfragmented with a LAN host as the inner source", innerSrc: "192.168.1.77", size: 100, count: 3,
			counter: "drop_tun_src_lan", want: 3},
		{name: "unfragmented with a loopback inner source", innerSrc: "127.0.0.2", size: 100, count: 3,
			counter: "drop_tun_src_local", want: 3},
	} {
		t.Run(p.name, func(t *testing.T) {
			checkFragProbe(t, ctx, cli.WithLog(t), topo, 9710+i, p)
		})
	}

	t.Run("unfragmented ipip6 is delivered once, not relayed", func(t *testing.T) {
		cli := cli.WithLog(t)
		p := fragProbe{name: "unfragmented", size: 1000, count: 3, delivered: 3}
		delta := checkFragProbe(t, ctx, cli, topo, 9730, p)
		if n := delta["tc_decap_reassembled"].Packets; n != 0 {
			t.Errorf("tc_decap_reassembled +%d for unfragmented ipip6, want 0", n)
		}
		if n := delta["tun_decap"].Packets + delta["tc_decap"].Packets; n != 3 {
			t.Errorf("tun_decap + tc_decap = %d, want the 3 packets sent", n)
		}
	})

	res := mustCLI(t, ctx, cli, "status")
	if !strings.Contains(res.Stdout, "outer-fragmented ipip6: reassembled by the kernel, decapsulated through xdpr-frag") {
		t.Errorf("status does not say how outer-fragmented ipip6 is decapsulated:\n%s", res.Stdout)
	}
}
