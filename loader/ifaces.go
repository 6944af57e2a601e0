package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

func (d *Dataplane) iface(ifindex int) (routerXdprIface, bool) {
	var v routerXdprIface
	err := d.maps.XdprIfaces.Lookup(uint32(ifindex), &v)
	return v, err == nil
}

func (d *Dataplane) putIface(v routerXdprIface) error {
	if err := d.maps.XdprIfaces.Put(v.Ifindex, v); err != nil {
		return fmt.Errorf("record interface %d in xdpr_ifaces: %w", v.Ifindex, err)
	}
	return nil
}

func (d *Dataplane) deleteIface(ifindex int) error {
	for _, m := range []*ebpf.Map{d.maps.XdprIfaces, d.maps.XdprTxPorts, d.maps.XdprTxPortsMb} {
		if err := m.Delete(uint32(ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("remove interface %d from %s: %w", ifindex, m, err)
		}
	}
	return nil
}

func (d *Dataplane) ifaces() ([]routerXdprIface, error) {
	var (
		out []routerXdprIface
		k   uint32
		v   routerXdprIface
	)
	it := d.maps.XdprIfaces.Iterate()
	for it.Next(&k, &v) {
		out = append(out, v)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read xdpr_ifaces: %w", err)
	}
	return out, nil
}

func cString(b []int8) string {
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	s := make([]byte, n)
	for i := range s {
		s[i] = byte(b[i])
	}
	return string(s)
}
