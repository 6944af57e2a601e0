package benchprog

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Swappable is an XDP link that xdprouter pinned, opened so that a
// measurement can run the bare forwarder in its place for a while: the same
// link on the same interface, only the program differs, and swapping is one
// BPF_LINK_UPDATE (no detach, no dispatcher rebuild, no gap in traffic).
type Swappable struct {
	l   link.Link
	own *ebpf.Program
}

// OpenSwappable opens the link pinned at pin and remembers its program.
func OpenSwappable(pin string) (*Swappable, error) {
	l, err := link.LoadPinnedLink(pin, nil)
	if err != nil {
		return nil, fmt.Errorf("open pinned link %s: %w", pin, err)
	}
	info, err := l.Info()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("link %s info: %w", pin, err)
	}
	own, err := ebpf.NewProgramFromID(info.Program)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("program %d of link %s: %w", info.Program, pin, err)
	}
	return &Swappable{l: l, own: own}, nil
}

// UseBare runs the bare forwarder on the link.
func (s *Swappable) UseBare(b *BareForwarder) error {
	if err := s.l.Update(b.objs.XdpBareFwd); err != nil {
		return fmt.Errorf("swap in the bare forwarder: %w", err)
	}
	return nil
}

// UsePass runs XDP_PASS on the link: the kernel handles everything, while
// whatever else xdprouter set up (TC programs, tunnel netdevs) stays.
func (s *Swappable) UsePass(p *Pass) error {
	if err := s.l.Update(p.objs.XdpPass); err != nil {
		return fmt.Errorf("swap in xdp_pass: %w", err)
	}
	return nil
}

// UseOwn puts the link's own program back.
func (s *Swappable) UseOwn() error {
	if err := s.l.Update(s.own); err != nil {
		return fmt.Errorf("swap back program %s: %w", s.own, err)
	}
	return nil
}

// Close puts the own program back and releases the handles; the link stays
// pinned and attached.
func (s *Swappable) Close() error {
	return errors.Join(s.UseOwn(), s.l.Close(), s.own.Close())
}
