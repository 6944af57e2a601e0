package lanra

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/xdprouter/xdprouter/control/learned"
)

// An RA the kernel refuses is sent again a second later, and the burst
// a change starts is not used up by refusals: TestHostileWANRAs saw
// sendmsg fail with EINVAL while a WAN RA flood filled the kernel's
// neighbour table (ff02::1 on the LAN could not be resolved for ~3 s),
// and the changed advert then waited for the next unsolicited RA.
func TestRefusedRAIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runRig(t, &Sender{MinDelay: time.Second})
		r.s.Set("lan0", Advert{Prefixes: []learned.Prefix{{Prefix: oldPrefix, Valid: learned.Forever, Preferred: learned.Forever}}, RouterLifetime: 1800 * time.Second})
		r.sleepUntil(time.Minute) // the initial burst
		c := r.conn("lan0")
		c.take()

		c.mu.Lock()
		c.refuse, c.refuseErr = 3, &netErr{syscall.EINVAL}
		c.mu.Unlock()
		changed := time.Now()
		r.s.Set("lan0", Advert{Prefixes: []learned.Prefix{{Prefix: newPrefix, Valid: learned.Forever, Preferred: learned.Forever}}, RouterLifetime: 1800 * time.Second})
		r.sleepUntil(time.Minute + 40*time.Second)
		sent := c.take()
		c.mu.Lock()
		refused := c.refused
		c.mu.Unlock()
		for i, at := range refused {
			if want := changed.Add(time.Duration(i) * time.Second); !at.Equal(want) {
				t.Errorf("attempt %d at +%v, want +%v", i, at.Sub(changed), want.Sub(changed))
			}
		}
		if len(refused) != 3 {
			t.Fatalf("%d attempts refused, want 3", len(refused))
		}
		// The fourth attempt goes out, then the rest of the burst.
		if len(sent) != maxInitialAdverts || !sent[0].at.Equal(changed.Add(3*time.Second)) || prefixes(sent[0].ra)[newPrefix] == nil {
			var at []time.Duration
			for _, s := range sent {
				at = append(at, s.at.Sub(changed))
			}
			t.Fatalf("RAs sent at %v after the change, want %d, the first at 3s with %v", at, maxInitialAdverts, newPrefix)
		}
		st := r.s.Stats().Interfaces[0]
		if st.SendErrors != 3 || !strings.Contains(st.LastSendError, "invalid argument") ||
			!st.LastSendErrorAt.Equal(changed.Add(2*time.Second)) || !st.LastSent.After(st.LastSendErrorAt) {
			t.Errorf("stats %+v: want 3 send errors, the last at +2s, an RA sent since", st)
		}
	})
}

// netErr is how a refused sendmsg reaches the sender.
type netErr struct{ errno syscall.Errno }

func (e *netErr) Error() string {
	return "write ip " + fakeLL.String() + "%lan0->" + netip.MustParseAddr("ff02::1").String() + "%lan0: sendmsg: " + e.errno.Error()
}
