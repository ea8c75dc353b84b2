package transfer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/imgdataset/imgdataset/store"
)

// This file holds the download errors and what each means for a retry.

var (
	// errChanged means the remote object is not the version being assembled.
	errChanged = errors.New("object changed on the server during the download")
	// errVerify wraps every size or checksum mismatch.
	errVerify = errors.New("verification failed")
	// errStalled is the cause of a request cancelled for delivering no bytes.
	errStalled = errors.New("no data received for too long")
	// errSplit stops the single GET of an object of unknown size whose answer
	// announces a large one: the scheduler plans it in ranges instead.
	errSplit = errors.New("large object: fetch in ranges")
)

// localError marks failures of the local disk, which retrying the request
// cannot fix.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }

func (e *localError) Unwrap() error { return e.err }

func local(err error) error {
	if err == nil {
		return nil
	}
	return &localError{err}
}

type errClass int

const (
	errClassPermanent errClass = iota
	errClassRetry
	errClassChanged
	errClassVerify
	errClassCanceled
)

// classify decides what a failure means. retryAfter is the server's
// Retry-After; throttle is set for answers that ask us to slow down.
func classify(err error) (c errClass, retryAfter time.Duration, throttle bool) {
	var le *localError
	var he *store.HTTPError
	var ne net.Error
	switch {
	case errors.Is(err, errChanged):
		return errClassChanged, 0, false
	case errors.Is(err, errVerify):
		return errClassVerify, 0, false
	case errors.As(err, &le):
		return errClassPermanent, 0, false
	case errors.Is(err, errStalled):
		return errClassRetry, 0, false
	case errors.Is(err, context.Canceled):
		return errClassCanceled, 0, false
	case errors.Is(err, store.ErrNotExist), errors.Is(err, store.ErrBadKey), errors.Is(err, store.ErrNotSupported):
		return errClassPermanent, 0, false
	case errors.As(err, &he):
		switch s := he.Status; {
		case s == http.StatusTooManyRequests, s == http.StatusServiceUnavailable:
			return errClassRetry, he.RetryAfter, true
		case s == http.StatusRequestTimeout, s == http.StatusTooEarly, s >= 500 && s != http.StatusNotImplemented && s != http.StatusHTTPVersionNotSupported:
			return errClassRetry, he.RetryAfter, false
		}
		return errClassPermanent, 0, false
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED),
		errors.As(err, &ne):
		return errClassRetry, 0, false
	}
	// Unknown errors are mostly protocol trouble (a lying or flaky server);
	// the retry budget bounds the cost of trying again.
	return errClassRetry, 0, false
}
