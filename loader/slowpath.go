package loader

import (
	"os"
)

// AttachNPTSlowPath attaches the TC programs that translate what XDP hands
// to the kernel on the NPT outside interface ifname: DNPT at TC ingress
// (before the kernel routes), SNPT at TC egress (after it), through TCX or
// clsact (ResolveTCMode). They are pinned as tc_dnpt_<ifindex> and
// tc_snpt_<ifindex>, so detaching the interface removes them with its XDP
// link. Idempotent like Attach.
func (d *Dataplane) AttachNPTSlowPath(ifname string) (string, error) {
	ifindex, err := ifindexByName(ifname)
	if err != nil {
		return "", err
	}
	mode, err := ResolveTCMode()
	if err != nil {
		return "", err
	}
	settings := "tc " + string(mode)
	pins := []string{d.pinPath("tc_dnpt", ifindex), d.pinPath("tc_snpt", ifindex)}
	if stillVerified(settings, pins...) {
		return "unchanged", nil
	}
	objs, err := loadTCPrograms(&d.maps, mode)
	if err != nil {
		return "", err
	}
	defer objs.Close()
	in, err := d.attachTC("tc_dnpt", ifindex, objs.XdprTcDnpt)
	if err != nil {
		return "", err
	}
	out, err := d.attachTC("tc_snpt", ifindex, objs.XdprTcSnpt)
	if err != nil {
		return "", err
	}
	for _, pin := range pins {
		remember(pin, settings)
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
		if err := removePin(d.dir, pin); err != nil {
			return removed, err
		}
		removed = true
	}
	return removed, nil
}
