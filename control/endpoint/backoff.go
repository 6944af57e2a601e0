package endpoint

import (
	"math/rand/v2"
	"time"
)

// Backoff is an exponential retry schedule: Initial after the first
// failure, doubling up to Max. Jitter (0..1) shortens each delay by a
// random fraction up to Jitter, so routers that failed together (an ISP
// outage) do not retry together.
type Backoff struct {
	Initial, Max time.Duration
	Jitter       float64
	// Rand returns a number in [0, 1); nil means math/rand.
	Rand func() float64
}

// Delay is the wait after the n-th consecutive failure (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter > 0 {
		r := b.Rand
		if r == nil {
			r = rand.Float64
		}
		d -= time.Duration(float64(d) * b.Jitter * r())
	}
	return d
}
