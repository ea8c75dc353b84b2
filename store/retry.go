package store

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// This file is the one retry policy of the project: what a failure means
// (Classify, RetryAfter) for every layer that retries — RetryDriver and
// RetryTransport here, and the transfer scheduler — and the loop the two
// blocking layers share.

// Class is what a failure means to whoever considers trying again.
type Class int

const (
	// Permanent failures do not go away by asking again: a refused request
	// (4xx), an unsafe key, an unsupported operation, a local file system
	// error, a cancelled context.
	Permanent Class = iota
	// Temporary failures may: 408, 425, 429, 5xx (but 501 and 505), timeouts,
	// connection resets, truncated bodies, and errors nothing marks, which are
	// mostly protocol trouble of a flaky or lying server; every retry layer
	// bounds its attempts.
	Temporary
	// NotFound means there is no such object (404, 410, NoSuchKey,
	// ErrNotExist). Permanent, but callers often treat it apart.
	NotFound
	// Corrupt means the bytes contradict what they claim to be (ErrCorrupt,
	// ErrBadZip, a checksum mismatch). Reading the same bytes again cannot
	// help; fetching them again over the network may, once.
	Corrupt
)

// String names the class.
func (c Class) String() string {
	switch c {
	case Permanent:
		return "permanent"
	case Temporary:
		return "temporary"
	case NotFound:
		return "not found"
	case Corrupt:
		return "corrupt"
	}
	return "unknown"
}

// Classify tells what err, returned by a store operation, means for a retry.
// A nil error is Permanent: there is nothing to retry. A deadline counts as
// Temporary (a timeout of one request); retry layers stop anyway once their
// own context is done.
func Classify(err error) Class {
	var he *HTTPError
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return Permanent
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrBadZip):
		return Corrupt
	case errors.Is(err, ErrNotExist), errors.Is(err, fs.ErrNotExist):
		return NotFound
	case errors.Is(err, ErrBadKey), errors.Is(err, ErrNotSupported), errors.Is(err, ErrTooLarge):
		return Permanent
	case errors.As(err, &he):
		switch s := he.Status; {
		case s == http.StatusRequestTimeout, s == http.StatusTooEarly, s == http.StatusTooManyRequests,
			s >= 500 && s != http.StatusNotImplemented && s != http.StatusHTTPVersionNotSupported:
			return Temporary
		}
		return Permanent
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return Temporary
	case errors.As(err, new(*fs.PathError)), errors.As(err, new(*os.LinkError)):
		// The local file system (a file store, a disk): asking again soon does
		// not fix permissions, full disks or I/O errors. Checked before
		// net.Error, which every syscall.Errno satisfies.
		return Permanent
	case errors.As(err, &ne):
		return Temporary
	}
	return Temporary
}

// RetryAfter is how long the server behind err asked the client to wait
// before it tries again (its Retry-After, 0 when it said nothing), and
// whether its answer asks the client to slow down altogether (429 Too Many
// Requests, 503 Service Unavailable). The header is parsed once, by the
// driver that received it (see HTTPError.RetryAfter).
func RetryAfter(err error) (wait time.Duration, throttled bool) {
	var he *HTTPError
	if !errors.As(err, &he) {
		return 0, false
	}
	return he.RetryAfter, he.Status == http.StatusTooManyRequests || he.Status == http.StatusServiceUnavailable
}

// retrier is the retry loop of the blocking retry layers.
type retrier struct {
	attempts        int           // total attempts, ≥ 1
	delay, maxDelay time.Duration // first back-off; cap on one wait
}

// do runs op until it succeeds, fails with an error that is not Temporary,
// has run attempts times or ctx is done, and returns op's last error.
func (p retrier) do(ctx context.Context, op func() error) error {
	for i := 0; ; i++ {
		err := op()
		if err == nil || Classify(err) != Temporary || i+1 >= p.attempts || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(p.wait(i, err))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// wait is the pause before retry i+1: exponential back-off with jitter, but
// never shorter than the server's Retry-After, and never above maxDelay.
func (p retrier) wait(i int, err error) time.Duration {
	d := p.maxDelay
	if i < 30 && p.delay<<i < p.maxDelay {
		d = p.delay << i
	}
	d = d/2 + rand.N(d/2+1)
	if after, _ := RetryAfter(err); after > d {
		d = min(after, p.maxDelay)
	}
	return d
}

// RetryDriver decorates a driver (restic style) so that metadata calls — Stat,
// List and the opening of a ReadRange — survive Temporary failures (see
// Classify), with exponential back-off and jitter that honours Retry-After.
// Bulk transfers do not use it: the transfer scheduler retries ranges itself
// and needs to see 429s to slow down.
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

func (r *RetryDriver) do(ctx context.Context, op func() error) error {
	return retrier{attempts: r.Attempts, delay: r.Delay, maxDelay: r.MaxDelay}.do(ctx, op)
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

// RetryTransport is an http.RoundTripper decorator that retries idempotent
// requests (GET and HEAD without a body) whose answer or error is Temporary
// (see Classify), with the back-off of RetryDriver. Resolvers use it for
// their metadata requests (listings, APIs, pages); bulk downloads do not,
// because the transfer scheduler retries them itself and must see 429s to
// slow down. When the attempts are used up, the last answer is returned as
// it came, so the caller sees the server's status.
type RetryTransport struct {
	Base     http.RoundTripper // default http.DefaultTransport
	Attempts int               // total attempts, default 5
	Delay    time.Duration     // first back-off, default 300 ms
	MaxDelay time.Duration     // cap on one wait, default 30 s
}

func (t *RetryTransport) base() http.RoundTripper {
	if t.Base == nil {
		return http.DefaultTransport
	}
	return t.Base
}

// RoundTrip implements http.RoundTripper.
func (t *RetryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base()
	if (req.Method != http.MethodGet && req.Method != http.MethodHead) || (req.Body != nil && req.Body != http.NoBody) {
		return base.RoundTrip(req)
	}
	p := retrier{attempts: t.Attempts, delay: t.Delay, maxDelay: t.MaxDelay}
	if p.attempts <= 0 {
		p.attempts = 5
	}
	if p.delay <= 0 {
		p.delay = 300 * time.Millisecond
	}
	if p.maxDelay <= 0 {
		p.maxDelay = 30 * time.Second
	}
	var resp *http.Response
	err := p.do(req.Context(), func() error {
		if resp != nil {
			discard(resp) // a retry follows
		}
		var err error
		if resp, err = base.RoundTrip(req); err != nil {
			return err
		}
		if resp.StatusCode < 400 {
			return nil
		}
		return newHTTPError(req.URL.Redacted(), resp, nil)
	})
	switch {
	case resp == nil:
		return nil, err
	case err != nil && req.Context().Err() != nil:
		discard(resp)
		return nil, req.Context().Err()
	}
	return resp, nil
}

// CloseIdleConnections closes the idle connections of the base transport, so
// that http.Client.CloseIdleConnections (and Store.Close) reach them.
func (t *RetryTransport) CloseIdleConnections() {
	if c, ok := t.base().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// discard reads a little of an unwanted answer, so its connection can be
// reused, and closes it.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
}
