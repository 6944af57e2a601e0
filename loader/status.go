package loader

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// InterfaceStatus describes one attached interface.
type InterfaceStatus struct {
	Name    string `json:"name"`
	Ifindex int    `json:"ifindex"`
	Present bool   `json:"present"` // false when the interface is gone but still recorded
	Role    string `json:"role"`
	Mode    string `json:"xdp_mode"`
	// CTGate is the conntrack gate the program was loaded with: on or off.
	CTGate      string `json:"ct_gate"`
	MAC         string `json:"mac"`
	LinkID      uint32 `json:"link_id"`
	ProgramID   uint32 `json:"program_id"`
	ProgramName string `json:"program_name"`
	ProgramTag  string `json:"program_tag"`
	LinkPin     string `json:"link_pin"`
	// Stale is set when the interface's MAC changed since attach: the
	// program compares frames against the MAC it was loaded with, so it now
	// passes everything to the kernel until `attach` runs again.
	Stale bool `json:"stale,omitempty"`
	// TXPath is how frames reach the wire through the port (TXPath); the
	// rest is what the kernel says of it now: TXNote why, TXWarning when
	// XDP cannot reach a veth's peer or cannot tell, TXStale when the peer
	// now calls for another path than the one in force (RefreshTX, which
	// `status` without a daemon, `attach` and the daemon run, moves it).
	TXPath    TXPath `json:"tx_path"`
	TXNote    string `json:"tx_note,omitempty"`
	TXWarning bool   `json:"tx_warning,omitempty"`
	TXStale   bool   `json:"tx_stale,omitempty"`
}

// MapStatus describes one pinned map.
type MapStatus struct {
	Name       string `json:"name"`
	Pin        string `json:"pin"`
	ID         uint32 `json:"id"`
	Type       string `json:"type"`
	MaxEntries uint32 `json:"max_entries"`
}

// Status is what `xdprouter status` prints.
type Status struct {
	BPFFS      string            `json:"bpffs"`
	Interfaces []InterfaceStatus `json:"interfaces"`
	Tunnels    []TunnelStatus    `json:"tunnels"`
	// KernelTunnels are the vxlan netdevs xdprouter created.
	KernelTunnels []KernelTunnelStatus `json:"kernel_tunnels"`
	// VXLANCounters are what XDP did with their traffic (vxlan_encap,
	// vxlan_decap, pass_vxlan_* and pass_tunnel_dev), when there are any.
	VXLANCounters []Counter       `json:"vxlan_counters,omitempty"`
	Maps          []MapStatus     `json:"maps"`
	NPT           []NPTRule       `json:"npt"`
	NDPProxy      []NDPProxyEntry `json:"ndp_proxy"`
	TCLinks       []string        `json:"tc_links"` // pins of the TC links (NPT slow path, replies on TXKernel ports)
	// Features are the xdpr_features bits set ("npt", "ndp_proxy"): the
	// data plane skips the lookups of the others.
	Features []string `json:"features"`
	// TCPBeLiberal is net.netfilter.nf_conntrack_tcp_be_liberal in the
	// caller's network namespace ("" without conntrack); gated attachments
	// turn it on.
	TCPBeLiberal string `json:"nf_conntrack_tcp_be_liberal,omitempty"`
	// TXChanges are the transmit paths the caller changed before reading
	// (RefreshTX), for it to report.
	TXChanges []TXChange `json:"tx_changes,omitempty"`
	// TunnelSourceFilter are the inner IPv4 sources decapsulation drops
	// (besides 0/8, 127/8 and 224/3): the router's own addresses and the
	// LAN subnets.
	TunnelSourceFilter []SourceNet `json:"tunnel_source_filter,omitempty"`
}

// TunnelStatus is one programmed tunnel and its slow-path netdev.
type TunnelStatus struct {
	Tunnel
	Present bool   `json:"present"` // the netdev exists
	TCPin   string `json:"tc_link_pin"`
	TCLink  uint32 `json:"tc_link_id"` // with TCX
	// TCMode is how the encapsulating program is attached ("tcx",
	// "clsact"; "" when it is not), TCProgram the program it runs.
	TCMode    string `json:"tc_mode"`
	TCProgram uint32 `json:"tc_program_id"`
}

// Status reads the attached interfaces, their links and the pinned maps.
func (d *Dataplane) Status() (Status, error) {
	st := Status{BPFFS: d.dir, Interfaces: []InterfaceStatus{}, Tunnels: []TunnelStatus{}, Maps: []MapStatus{},
		TCPBeLiberal: BeLiberal()}
	ifaces, err := d.ifaces()
	if err != nil {
		return st, err
	}
	for _, v := range ifaces {
		is := InterfaceStatus{
			Name:    cString(v.Name[:]),
			Ifindex: int(v.Ifindex),
			Role:    Role(v.Role).String(),
			Mode:    modeName(v.XdpMode),
			CTGate:  string(ctGateOf(v.CtGate)),
			MAC:     net.HardwareAddr(v.Mac[:]).String(),
			LinkPin: d.linkPin(int(v.Ifindex)),
			TXPath:  txPathOf(v.TxPath),
		}
		if ifc, err := net.InterfaceByIndex(is.Ifindex); err == nil {
			is.Present = true
			is.Name = ifc.Name
			is.Stale = ifc.HardwareAddr.String() != is.MAC
			if plan, err := planTX(is.Ifindex); err != nil {
				is.TXNote, is.TXWarning = err.Error(), true
			} else {
				is.TXNote, is.TXWarning, is.TXStale = plan.note, plan.warn, plan.path != is.TXPath
			}
		}
		if l, err := link.LoadPinnedLink(is.LinkPin, nil); err == nil {
			if info, err := l.Info(); err == nil {
				is.LinkID = uint32(info.ID)
				is.ProgramID = uint32(info.Program)
				if p, err := ebpf.NewProgramFromID(info.Program); err == nil {
					if pi, err := p.Info(); err == nil {
						is.ProgramName, is.ProgramTag = pi.Name, pi.Tag
					}
					p.Close()
				}
			}
			l.Close()
		}
		st.Interfaces = append(st.Interfaces, is)
	}
	sort.Slice(st.Interfaces, func(i, j int) bool { return st.Interfaces[i].Ifindex < st.Interfaces[j].Ifindex })
	if st.NPT, err = d.NPTRules(); err != nil {
		return st, err
	}
	if st.NDPProxy, err = d.NDPProxyEntries(); err != nil {
		return st, err
	}
	flags, err := d.features()
	if err != nil {
		return st, err
	}
	if st.Features, err = featureNames(flags); err != nil {
		return st, err
	}
	st.TCLinks = []string{}
	if links, err := os.ReadDir(filepath.Join(d.dir, linksDir)); err == nil {
		for _, l := range links {
			if strings.HasPrefix(l.Name(), "tc_") {
				st.TCLinks = append(st.TCLinks, filepath.Join(d.dir, linksDir, l.Name()))
			}
		}
	}

	tuns, err := d.Tunnels()
	if err != nil {
		return st, err
	}
	for _, t := range tuns {
		ts := TunnelStatus{Tunnel: t, TCPin: d.pinPath("tunegress", t.Ifindex)}
		if ifc, err := net.InterfaceByIndex(t.Ifindex); err == nil && ifc.Name == t.Name {
			ts.Present = true
		}
		if l, err := link.LoadPinnedLink(ts.TCPin, nil); err == nil {
			if info, err := l.Info(); err == nil {
				ts.TCLink = uint32(info.ID)
			}
			l.Close()
			ts.TCMode = string(TCModeTCX)
		} else if isProgramPin(ts.TCPin) {
			ts.TCMode = string(TCModeClsact)
		}
		if prog, err := pinnedProgram(ts.TCPin); err == nil {
			ts.TCProgram = uint32(prog)
		}
		st.Tunnels = append(st.Tunnels, ts)
	}
	if len(tuns) > 0 {
		if st.TunnelSourceFilter, err = d.TunnelSourceFilter(); err != nil {
			return st, err
		}
	}

	if st.KernelTunnels, err = d.kernelTunnelStatus(); err != nil {
		return st, err
	}
	if len(st.KernelTunnels) > 0 {
		if st.VXLANCounters, err = d.vxlanCounters(); err != nil {
			return st, err
		}
	}

	entries, err := os.ReadDir(d.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		pin := filepath.Join(d.dir, e.Name())
		m, err := ebpf.LoadPinnedMap(pin, &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			continue
		}
		ms := MapStatus{Name: e.Name(), Pin: pin, Type: m.Type().String(), MaxEntries: m.MaxEntries()}
		if info, err := m.Info(); err == nil {
			if id, ok := info.ID(); ok {
				ms.ID = uint32(id)
			}
		}
		m.Close()
		st.Maps = append(st.Maps, ms)
	}
	return st, nil
}

// Counter is one data-plane counter summed over CPUs.
type Counter struct {
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// CounterNames returns the counter names in index order, read from the C
// enum's BTF: "XDPR_CNT_PASS_NO_NEIGH" becomes "pass_no_neigh".
func CounterNames() ([]string, error) {
	return enumNames("xdpr_counter", "XDPR_CNT_", "", int(routerXdprCounterXDPR_CNT__MAX))
}

// TCCounterNames are the tunnel slow path's counters, "XDPR_TC_ENCAP"
// becoming "tc_encap".
func TCCounterNames() ([]string, error) {
	return enumNames("xdpr_tc_counter", "XDPR_TC_", "tc_", int(routerXdprTcCounterXDPR_TC__MAX))
}

func enumNames(enum, trim, prefix string, n int) ([]string, error) {
	spec, err := loadRouter()
	if err != nil {
		return nil, err
	}
	var e *btf.Enum
	if err := spec.Types.TypeByName(enum, &e); err != nil {
		return nil, fmt.Errorf("enum %s in BTF: %w", enum, err)
	}
	names := make([]string, n)
	for _, v := range e.Values {
		if v.Value < uint64(len(names)) {
			names[v.Value] = prefix + strings.ToLower(strings.TrimPrefix(v.Name, trim))
		}
	}
	return names, nil
}

// EventNames are the XDP program's event counters (enum xdpr_event, kept
// in xdpr_counters behind the packet counters): "XDPR_EV_CT_REFRESH"
// becomes "ct_refresh". Only their packets field counts (events).
func EventNames() ([]string, error) {
	return enumNames("xdpr_event", "XDPR_EV_", "", int(routerXdprEventXDPR_EV__MAX))
}

// Counters reads every counter, summed over CPUs: the XDP counters in enum
// order (each packet XDP saw is in exactly one), then the XDP events
// (ct_refresh: packets counts the events), then the tunnel slow path's
// tc_* counters.
func (d *Dataplane) Counters() ([]Counter, error) {
	names, err := CounterNames()
	if err != nil {
		return nil, err
	}
	events, err := EventNames()
	if err != nil {
		return nil, err
	}
	tcNames, err := TCCounterNames()
	if err != nil {
		return nil, err
	}
	out, err := readCounters(d.maps.XdprCounters, 0, names, nil)
	if err != nil {
		return nil, err
	}
	if out, err = readCounters(d.maps.XdprCounters, uint32(routerXdprCounterLayoutXDPR_EV_BASE), events, out); err != nil {
		return nil, err
	}
	return readCounters(d.maps.XdprTcCounters, 0, tcNames, out)
}

// readCounters appends the counters of m from index base on, one per name.
func readCounters(m *ebpf.Map, base uint32, names []string, out []Counter) ([]Counter, error) {
	var perCPU []routerXdprCounterVal
	for i, name := range names {
		if err := m.Lookup(base+uint32(i), &perCPU); err != nil {
			return nil, fmt.Errorf("read counter %s: %w", name, err)
		}
		c := Counter{Name: name}
		for _, v := range perCPU {
			c.Packets += v.Packets
			c.Bytes += v.Bytes
		}
		out = append(out, c)
	}
	return out, nil
}
