package loader

import (
	"os"

	"github.com/cilium/ebpf"
)

// AttachNPTSlowPath attaches the TC programs that translate what XDP hands
// to the kernel on the NPT outside interface ifname: DNPT at TCX ingress
// (before the kernel routes), SNPT at TCX egress (after it). The links are
// pinned as tc_dnpt_<ifindex> and tc_snpt_<ifindex>, so detaching the
// interface removes them with its XDP link. Idempotent like Attach.
func (d *Dataplane) AttachNPTSlowPath(ifname string) (string, error) {
	ifindex, err := ifindexByName(ifname)
	if err != nil {
		return "", err
	}
	pins := []string{d.pinPath("tc_dnpt", ifindex), d.pinPath("tc_snpt", ifindex)}
	if stillVerified("tc", pins...) {
		return "unchanged", nil
	}
	objs, err := loadTCPrograms(&d.maps)
	if err != nil {
		return "", err
	}
	defer objs.Close()
	in, err := d.attachTCX("tc_dnpt", ifindex, objs.XdprTcDnpt, ebpf.AttachTCXIngress)
	if err != nil {
		return "", err
	}
	out, err := d.attachTCX("tc_snpt", ifindex, objs.XdprTcSnpt, ebpf.AttachTCXEgress)
	if err != nil {
		return "", err
	}
	for _, pin := range pins {
		remember(pin, "tc")
	}
	if in == out {
		return in, nil
	}
	return "ingress " + in + ", egress " + out, nil
}

// DetachNPTSlowPath removes the NPT slow path from ifname (its rules are
// gone): the TC programs would only cost time there. It says whether
// there was one to remove.
func (d *Dataplane) DetachNPTSlowPath(ifname string) (bool, error) {
	ifindex, err := ifindexByName(ifname)
	if err != nil {
		return false, err
	}
	removed := false
	for _, kind := range []string{"tc_dnpt", "tc_snpt"} {
		pin := d.pinPath(kind, ifindex)
		if _, err := os.Stat(pin); err != nil {
			continue
		}
		if err := unpinLink(pin); err != nil {
			return removed, err
		}
		removed = true
	}
	return removed, nil
}
