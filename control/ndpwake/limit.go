package ndpwake

import (
	"net/netip"
	"time"
)

// Defaults of the Waker's limits.
const (
	// DefaultTargetInterval is the least time between two probes for one
	// target: the ISP retransmits its NS every second (RFC 4861
	// RETRANS_TIMER), and the kernel's own resolution already retries
	// for a few seconds once started.
	DefaultTargetInterval = time.Second
	// DefaultRate and DefaultBurst cap probes across all targets, so an
	// NS flood for random addresses in a /64 makes at most this many
	// kernel neighbour entries (and LAN solicitations) a second.
	DefaultRate  = 20
	DefaultBurst = 20
	// DefaultTableSize bounds the targets remembered for the per-target
	// interval. The global cap means at most rate + burst of them are
	// ever younger than the interval, so a table this large is never
	// full of live entries with the defaults.
	DefaultTableSize = 1024
)

// verdict is what the limiter says of one probe.
type verdict int

const (
	allowed verdict = iota
	limitedTarget
	limitedGlobal
	tableFull
)

// limiter decides whether a target may be probed now: at most once per
// interval per target, and a token bucket (rate per second, burst) over
// all targets. It remembers at most size targets.
type limiter struct {
	interval time.Duration
	rate     float64
	burst    float64
	size     int

	tokens float64
	filled time.Time
	last   map[netip.Addr]time.Time
}

func newLimiter(interval time.Duration, rate, burst, size int) *limiter {
	return &limiter{interval: interval, rate: float64(rate), burst: float64(burst), size: size,
		tokens: float64(burst), last: map[netip.Addr]time.Time{}}
}

func (l *limiter) allow(target netip.Addr, now time.Time) verdict {
	if t, ok := l.last[target]; ok && now.Sub(t) < l.interval {
		return limitedTarget
	}
	if !l.filled.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.filled).Seconds()*l.rate)
	}
	l.filled = now
	if l.tokens < 1 {
		return limitedGlobal
	}
	if _, ok := l.last[target]; !ok && len(l.last) >= l.size {
		l.forget(now)
		if len(l.last) >= l.size {
			return tableFull
		}
	}
	l.tokens--
	l.last[target] = now
	return allowed
}

// forget drops the targets whose interval has passed: they would be
// allowed again anyway.
func (l *limiter) forget(now time.Time) {
	for a, t := range l.last {
		if now.Sub(t) >= l.interval {
			delete(l.last, a)
		}
	}
}
