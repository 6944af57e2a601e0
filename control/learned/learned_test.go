package learned

import (
	"testing"
	"time"
)

func TestLifetimes(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	if d := Deadline(now, Infinite); !d.Equal(Forever) {
		t.Errorf("infinite lifetime: deadline %v", d)
	}
	if r := Remaining(Forever, now); r != Infinite {
		t.Errorf("Remaining(Forever) = %v", r)
	}
	d := Deadline(now, 90*time.Minute)
	for _, tc := range []struct {
		at   time.Time
		want time.Duration
		left string
	}{
		{now, 90 * time.Minute, "1h30m0s"},
		{now.Add(1500 * time.Millisecond), 90*time.Minute - 2*time.Second, "1h29m58s"},
		{d, 0, "0s"},
		{d.Add(time.Hour), 0, "0s"},
	} {
		if got := Remaining(d, tc.at); got != tc.want {
			t.Errorf("Remaining at %v = %v, want %v", tc.at.Sub(now), got, tc.want)
		}
		if got := Left(d, tc.at); got != tc.left {
			t.Errorf("Left at %v = %q, want %q", tc.at.Sub(now), got, tc.left)
		}
	}
	if Left(Forever, now) != "forever" {
		t.Error("Left(Forever)")
	}
}
