package store

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"
)

// RetryDriver decorates a driver (restic style) so that metadata calls — Stat,
// List and the opening of a ReadRange — survive transient failures: 429, 5xx,
// connection resets and truncated responses, with exponential back-off and
// jitter that honours Retry-After. Bulk transfers do not use it: the transfer
// scheduler retries ranges itself and needs to see 429s to slow down.
type RetryDriver struct {
	Driver
	Attempts int           // total attempts, ≥ 1
	Delay    time.Duration // first back-off
	MaxDelay time.Duration // cap on one wait
}

// WithRetry wraps d; attempts ≤ 1 returns d unchanged.
func WithRetry(d Driver, attempts int, delay time.Duration) Driver {
	if attempts <= 1 {
		return d
	}
	return &RetryDriver{Driver: d, Attempts: attempts, Delay: delay, MaxDelay: 30 * time.Second}
}

// Transient reports whether err is worth retrying.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrNotExist) || errors.Is(err, ErrBadKey) || errors.Is(err, ErrNotSupported) || errors.Is(err, ErrTooLarge) {
		return false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status == 429 || he.Status >= 500
	}
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.EOF) || errors.As(err, &ne)
}

func (r *RetryDriver) do(ctx context.Context, op func() error) error {
	var err error
	for i := 0; i < max(r.Attempts, 1); i++ {
		if err = op(); !Transient(err) || i == r.Attempts-1 {
			return err
		}
		wait := r.Delay << i
		var he *HTTPError
		if errors.As(err, &he) && he.RetryAfter > 0 {
			wait = he.RetryAfter
		}
		wait = min(wait, r.MaxDelay)
		wait = wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
	return err
}

// Unwrap implements Unwrapper: writing, public URLs and closing are the
// wrapped driver's, found with As.
func (r *RetryDriver) Unwrap() Driver { return r.Driver }

// Stat implements Driver.
func (r *RetryDriver) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	var oi ObjectInfo
	err := r.do(ctx, func() error {
		var err error
		oi, err = r.Driver.Stat(ctx, key)
		return err
	})
	return oi, err
}

// List implements Driver. A retried listing restarts from the beginning, so
// keys already delivered (they arrive in lexical order) are skipped.
func (r *RetryDriver) List(ctx context.Context, prefix, delim string, fn func(ObjectInfo) error) error {
	last, started := "", false
	var fnErr error
	err := r.do(ctx, func() error {
		return r.Driver.List(ctx, prefix, delim, func(oi ObjectInfo) error {
			if started && oi.Key <= last {
				return nil
			}
			if err := fn(oi); err != nil {
				fnErr = err
				return err
			}
			last, started = oi.Key, true
			return nil
		})
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

// ReadRange implements Driver; only opening the range is retried (a body that
// fails mid-stream is the caller's to retry).
func (r *RetryDriver) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := r.do(ctx, func() error {
		var err error
		rc, err = r.Driver.ReadRange(ctx, key, off, n)
		return err
	})
	return rc, err
}
