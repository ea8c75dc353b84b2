// Package httpretry is an http.RoundTripper decorator that retries idempotent
// requests (GET, HEAD) on 429, 502, 503, 504 and connection errors, with
// exponential back-off and jitter, honouring Retry-After. Resolvers use it for
// their metadata requests (listings, APIs, pages); bulk downloads do not, because
// the transfer scheduler retries them itself and must see 429s to slow down.
package httpretry

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Transport retries idempotent requests.
type Transport struct {
	Base     http.RoundTripper
	Attempts int           // total attempts, default 5
	Delay    time.Duration // first back-off, default 300 ms
	MaxDelay time.Duration // cap on one wait, default 30 s
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return base.RoundTrip(req)
	}
	attempts, delay, maxDelay := t.Attempts, t.Delay, t.MaxDelay
	if attempts <= 0 {
		attempts = 5
	}
	if delay <= 0 {
		delay = 300 * time.Millisecond
	}
	if maxDelay <= 0 {
		maxDelay = 30 * time.Second
	}
	var lastErr error
	for i := 0; ; i++ {
		resp, err := base.RoundTrip(req)
		wait := delay << i
		retry := false
		switch {
		case err != nil:
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			retry, lastErr = true, err
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable ||
			resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout:
			retry = true
			if ra := retryAfter(resp.Header.Get("Retry-After")); ra > 0 {
				wait = ra
			}
		}
		if !retry || i+1 >= attempts {
			if err != nil {
				return nil, err
			}
			return resp, nil
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		wait = min(wait, maxDelay)
		wait = wait/2 + rand.N(wait/2+1)
		select {
		case <-req.Context().Done():
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, req.Context().Err()
		case <-time.After(wait):
		}
	}
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
