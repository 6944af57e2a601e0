package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// portStats are the veth counters of gen's port that say where frames sent
// to the router went: into one of r0's RX rings and through its XDP program,
// or dropped because the ring was full.
type portStats struct {
	// XmitErrors: live frames (XDP redirects from g0) r0's ring had no
	// room for (g0's tx_queue_N_xdp_xmit_errors, summed).
	XmitErrors uint64 `json:"xdp_xmit_errors"`
	// TxDropped: skbs (the AF_PACKET flood) r0's ring had no room for.
	TxDropped uint64 `json:"tx_dropped"`
	// RxXDP: frames r0's XDP program ran on, per RX queue.
	RxXDP [portQueues]uint64 `json:"rx_xdp_packets"`
}

func (t *topo) portStats() (portStats, error) {
	var p portStats
	g0, err := ethtoolStats(t, t.genNS, "g0")
	if err != nil {
		return p, err
	}
	r0, err := ethtoolStats(t, t.rtrNS, "r0")
	if err != nil {
		return p, err
	}
	for q := range portQueues {
		p.XmitErrors += g0[fmt.Sprintf("tx_queue_%d_xdp_xmit_errors", q)]
		p.RxXDP[q] = r0[fmt.Sprintf("rx_queue_%d_xdp_packets", q)]
	}
	out, err := t.lab.Exec(t.genNS, "ip", "-j", "-s", "link", "show", "dev", "g0")
	if err != nil {
		return p, err
	}
	var links []struct {
		Stats struct {
			TX struct {
				Dropped uint64 `json:"dropped"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return p, fmt.Errorf("g0 link statistics %q: %v", out, err)
	}
	p.TxDropped = links[0].Stats.TX.Dropped
	return p, nil
}

func (p portStats) sub(q portStats) portStats {
	d := portStats{XmitErrors: p.XmitErrors - q.XmitErrors, TxDropped: p.TxDropped - q.TxDropped}
	for i := range p.RxXDP {
		d.RxXDP[i] = p.RxXDP[i] - q.RxXDP[i]
	}
	return d
}

// ethtoolStats reads `ethtool -S dev` in namespace ns.
func ethtoolStats(t *topo, ns, dev string) (map[string]uint64, error) {
	out, err := t.lab.Exec(ns, "ethtool", "-S", dev)
	if err != nil {
		return nil, fmt.Errorf("ethtool -S %s: %w", dev, err)
	}
	return parseEthtoolStats(out), nil
}

// parseEthtoolStats takes the "     name: value" lines of `ethtool -S`.
func parseEthtoolStats(out string) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		name, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64); err == nil {
			m[name] = v
		}
	}
	return m
}
