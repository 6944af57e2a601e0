package main

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/xdprouter/xdprouter/loader/benchprog"
	"github.com/xdprouter/xdprouter/test/labkit"
)

// TestVXLANEncapNetdevSendsOnlyWhatIsRouted: the encap scenarios' netdev
// carries to the sink exactly the datagrams routed into it, nothing of the
// router's own. The netdev's outer TTL is the one hop the sink counts as
// forwarded, so anything the router sends through it by itself reads as one
// frame more than the generator sent (seen as 500001 of 500000: the MLD
// reports for ff02::2, which a forwarding router's interface joins, sent on
// `up` and once more within the second after).
func TestVXLANEncapNetdevSendsOnlyWhatIsRouted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and loads XDP programs")
	}
	lab := labkit.NewLab(t)
	topo, err := buildTopo(lab)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := benchprog.NewSink(startTTL-1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := lab.Do(topo.sinkNS, func() error { return sink.Attach(topo.s0.index) }); err != nil {
		t.Fatal(err)
	}
	if err := topo.makeVXLANNetdev(scKernelVXLANEncap); err != nil {
		t.Fatal(err)
	}
	// From gen with the default hop limit (startTTL), as the generator's
	// frames: the router forwards them into the netdev.
	const sent = 3
	err = lab.Do(topo.genNS, func() error {
		c, err := net.DialUDP("udp6", nil, &net.UDPAddr{IP: vxlanEncDst.AsSlice(), Port: 9})
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < sent; i++ {
			if _, err := c.Write(make([]byte, 2)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// MLDv2 repeats an unsolicited report within its 1 s interval.
	time.Sleep(2 * time.Second)
	c, err := sink.Counts()
	if err != nil {
		t.Fatal(err)
	}
	if c.HopOK != sent {
		t.Errorf("the sink counted %d frames as forwarded through %s, %d were sent (%d frames in all)", c.HopOK, vxlanEncDev, sent, c.Packets)
	}
}
