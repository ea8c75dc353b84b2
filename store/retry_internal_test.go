package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestRetrierWait: back-off grows from delay with jitter, a Retry-After is a
// floor, and maxDelay caps both.
func TestRetrierWait(t *testing.T) {
	p := retrier{attempts: 40, delay: 100 * time.Millisecond, maxDelay: 2 * time.Second}
	plain := errors.New("reset")
	after := func(d time.Duration) error {
		return fmt.Errorf("x: %w", &HTTPError{Status: 429, RetryAfter: d})
	}
	cases := []struct {
		name   string
		i      int
		err    error
		lo, hi time.Duration
	}{
		{"first", 0, plain, 50 * time.Millisecond, 100 * time.Millisecond},
		{"third", 2, plain, 200 * time.Millisecond, 400 * time.Millisecond},
		{"capped", 10, plain, time.Second, 2 * time.Second},
		{"no overflow", 39, plain, time.Second, 2 * time.Second},
		{"Retry-After is a floor", 0, after(time.Second), time.Second, time.Second},
		{"Retry-After capped", 0, after(time.Hour), 2 * time.Second, 2 * time.Second},
	}
	for _, c := range cases {
		for range 20 {
			if w := p.wait(c.i, c.err); w < c.lo || w > c.hi {
				t.Errorf("%s: wait %s outside [%s, %s]", c.name, w, c.lo, c.hi)
				break
			}
		}
	}
}
