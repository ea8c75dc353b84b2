package transfer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imgdataset/imgdataset/store"
)

// This file holds the download errors and what each means for a retry.

var (
	// errChanged means the remote object is not the version being assembled.
	errChanged = errors.New("object changed on the server during the download")
	// errVerify wraps every size or checksum mismatch: corrupt bytes.
	errVerify = fmt.Errorf("verification failed (%w)", store.ErrCorrupt)
	// errStalled is the cause of a request cancelled for delivering too few
	// bytes (Options.MinRate over Options.StallTimeout).
	errStalled = errors.New("data arriving too slowly (below the minimum rate)")
	// errTooLarge means an object's bytes exceed what its listing or the
	// options allow: a body that never ends must not fill the disk.
	errTooLarge = errors.New("object larger than allowed")
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

// classify decides what a failure means for the object: transfer's own
// errors first, then the store's classification, the one every retry layer
// shares (store.Classify). retryAfter is the server's Retry-After; throttle
// is set for answers that ask us to slow down.
func classify(err error) (c errClass, retryAfter time.Duration, throttle bool) {
	var le *localError
	switch {
	case errors.Is(err, errChanged):
		return errClassChanged, 0, false
	case errors.As(err, &le), errors.Is(err, errTooLarge):
		// A retry would get the same oversized answer.
		return errClassPermanent, 0, false
	case errors.Is(err, errStalled):
		// Before Canceled: a stall cancels the request's context.
		return errClassRetry, 0, false
	case errors.Is(err, context.Canceled):
		return errClassCanceled, 0, false
	}
	switch store.Classify(err) {
	case store.Temporary:
		after, throttle := store.RetryAfter(err)
		return errClassRetry, after, throttle
	case store.Corrupt:
		// Bytes that fail verification were most likely damaged on the
		// way: fetching them again may cure it.
		return errClassVerify, 0, false
	}
	return errClassPermanent, 0, false
}
