package daemon

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/xdprouter/xdprouter/control/dhcp6pd"
)

// pdRestarter hands the WAN RA tracker's news to the DHCPv6 client: a
// router that begins to advertise the M or O flag (a home gateway back
// from a power cut, its DHCPv6 server up later than this router) makes a
// client still soliciting do so at once, rather than after its backoff.
// It has its own lock: the tracker calls it from its goroutine, which the
// supervisor may be waiting for while holding its own.
type pdRestarter struct {
	mu sync.Mutex
	c  *dhcp6pd.Client
}

func (p *pdRestarter) set(c *dhcp6pd.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c = c
}

// managed is wanra.Tracker.Managed.
func (p *pdRestarter) managed(router netip.Addr, m, o bool) {
	p.mu.Lock()
	c := p.c
	p.mu.Unlock()
	if c != nil {
		c.Restart(fmt.Sprintf("RA from %s with managed=%v other=%v", router, m, o))
	}
}
