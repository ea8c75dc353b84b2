package transfer

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/imgdataset/imgdataset/store"
)

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

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// work runs one task in a worker goroutine. It touches only the task, the
// object's file and store, and the atomic counters.
func (r *run) work(ctx context.Context, t *task) *taskResult {
	res := &taskResult{t: t}
	o := t.obj
	switch t.kind {
	case kStat, kCheck:
		res.info, res.err = r.stat(ctx, o)
	case kSmall:
		res.err = r.fetchSmall(ctx, t, res)
	case kRange:
		res.err = r.fetchRange(ctx, t, res)
	case kFinish:
		res.err = r.finish(ctx, o)
	}
	return res
}

// stat asks for the object's metadata, giving up after StallTimeout.
func (r *run) stat(ctx context.Context, o *object) (store.ObjectInfo, error) {
	g := newStallGuard(ctx, r.opt.StallTimeout)
	info, err := o.st.Stat(g.ctx, o.key)
	return info, g.stop(err)
}

// stallGuard cancels a request that stops delivering bytes.
type stallGuard struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	d      time.Duration
}

func newStallGuard(ctx context.Context, d time.Duration) *stallGuard {
	g := &stallGuard{d: d}
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	g.timer = time.AfterFunc(d, func() { g.cancel(errStalled) })
	return g
}

func (g *stallGuard) alive() { g.timer.Reset(g.d) }

// stop releases the guard and turns a stall-caused error into errStalled.
func (g *stallGuard) stop(err error) error {
	g.timer.Stop()
	stalled := errors.Is(context.Cause(g.ctx), errStalled)
	g.cancel(nil)
	if err != nil && stalled {
		return fmt.Errorf("%w: %w", errStalled, err)
	}
	return err
}

// fetchSmall downloads a whole object in one request into a temp file,
// hashing as it writes, then verifies and commits it. The host's slot is
// freed as soon as the body is in: the fsync, rename and journal record that
// follow must not keep a connection idle.
func (r *run) fetchSmall(ctx context.Context, t *task, res *taskResult) (err error) {
	o := t.obj
	o.haveBytes.Store(0)
	f, err := os.OpenFile(o.partPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return local(err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(o.partPath)
		}
	}()
	sha := sha256.New()
	var md, crc hash.Hash
	hs := []io.Writer{sha}
	wantMD5 := r.wantMD5(o)
	if wantMD5 != nil {
		md = md5.New()
		hs = append(hs, md)
	}
	if o.hasCRC && !r.opt.NoVerify {
		crc = crc32.New(crcTable)
		hs = append(hs, crc)
	}
	written, info, err := r.receive(ctx, t, f, io.MultiWriter(hs...), res)
	if err != nil {
		if errors.Is(err, errSplit) {
			res.info = info
		}
		return err
	}
	etag := o.etag
	if etag == "" {
		// Unknown until now (a listing without validators): the answer's
		// ETag lets the next run tell whether the object changed.
		etag = cleanETag(info.ETag)
	}
	r.notes <- note{t: t, released: true}
	res.released = true
	if o.size >= 0 && written != o.size {
		return fmt.Errorf("%w: got %d bytes, want %d", errVerify, written, o.size)
	}
	if err := r.verifySums(o, md, crc, wantMD5); err != nil {
		return err
	}
	select {
	case r.commits <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.commits }()
	committed = true
	return r.commit(o, f, written, hex.EncodeToString(sha.Sum(nil)), etag)
}

// receive copies the whole body of t's object into f and through hs. It also
// returns what the response said of the object, when the store tells.
func (r *run) receive(ctx context.Context, t *task, f *os.File, hs io.Writer, res *taskResult) (int64, store.ObjectInfo, error) {
	o := t.obj
	buf := r.getBuf()
	defer r.putBuf(buf)
	g := newStallGuard(ctx, r.opt.StallTimeout)
	n := o.size // ≥ 0 asks a ranged read, which keeps the bytes as stored
	info := store.ObjectInfo{Size: -1}
	rc, err := o.st.ReadRange(g.ctx, o.key, 0, n)
	if err != nil {
		return 0, info, g.stop(err)
	}
	defer rc.Close()
	if ir, ok := rc.(store.InfoReader); ok {
		info = ir.ObjectInfo()
	}
	if o.size < 0 && info.Size > r.ckpt {
		// Sized by nothing but this answer, and too big for one stream: the
		// headers were the Stat; ranges over several connections follow.
		return 0, info, errSplit
	}
	r.notes <- note{t: t, started: true}
	var written int64
	for {
		m, rerr := rc.Read(buf)
		if m > 0 {
			if _, werr := f.Write(buf[:m]); werr != nil {
				return written, info, g.stop(local(werr))
			}
			hs.Write(buf[:m])
			written += int64(m)
			res.progress = written
			r.fetched.Add(int64(m))
			o.fetched.Add(int64(m))
			o.haveBytes.Add(int64(m))
			g.alive()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return written, info, g.stop(rerr)
		}
	}
	return written, info, g.stop(nil)
}

// fetchRange downloads [t.off, t.end) into the part file, journaling every
// r.ckpt bytes so that a crash loses at most that much per request. On error,
// t.off is advanced past what is safely written, and the retry continues there.
func (r *run) fetchRange(ctx context.Context, t *task, res *taskResult) error {
	o := t.obj
	buf := r.getBuf()
	defer r.putBuf(buf)
	start := t.off
	pos, ck := start, start
	res.done = interval{start, start}
	checkpoint := func() error {
		if pos == ck {
			return nil
		}
		if err := o.file.Sync(); err != nil {
			return local(err)
		}
		rec := record{T: recPart, Dataset: o.ds.name, Path: o.path, Off: ck, Len: pos - ck, Size: o.size, ETag: o.etag}
		if err := r.j.append(rec); err != nil {
			return local(err)
		}
		r.notes <- note{t: t, done: interval{ck, pos}, gen: t.gen}
		ck = pos
		res.done.hi = pos
		t.off = pos
		return nil
	}
	g := newStallGuard(ctx, r.opt.StallTimeout)
	rc, err := o.st.ReadRange(g.ctx, o.key, start, t.end-start)
	if err != nil {
		return g.stop(err)
	}
	defer rc.Close()
	r.notes <- note{t: t, started: true}
	for pos < t.end && err == nil {
		m, rerr := rc.Read(buf[:min(int64(len(buf)), t.end-pos)])
		if m > 0 {
			if _, werr := o.file.WriteAt(buf[:m], pos); werr != nil {
				err = local(werr)
				break
			}
			pos += int64(m)
			res.progress = pos - start
			r.fetched.Add(int64(m))
			o.fetched.Add(int64(m))
			o.haveBytes.Add(int64(m))
			g.alive()
			if pos-ck >= r.ckpt {
				err = checkpoint()
			}
		}
		switch {
		case rerr == io.EOF && pos < t.end:
			err = fmt.Errorf("range [%d,%d) ended at %d: %w", start, t.end, pos, io.ErrUnexpectedEOF)
		case rerr != nil && rerr != io.EOF:
			err = rerr
		case rerr == io.EOF:
			pos = max(pos, t.end) // loop ends
		}
	}
	err = g.stop(err)
	// Keep whatever arrived intact, even on failure: the retry (or the next
	// run) continues from there.
	if cerr := checkpoint(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		o.haveBytes.Add(-(pos - ck)) // written but not journaled: will be fetched again
	}
	return err
}

// finish verifies a fully assembled part file and moves it into place. The
// final Stat catches an object replaced while its ranges were being fetched.
func (r *run) finish(ctx context.Context, o *object) error {
	info, err := r.stat(ctx, o)
	if err != nil {
		return err
	}
	if r.changedFrom(o, info) {
		return fmt.Errorf("%w: size %d → %d, ETag %q → %q", errChanged, o.size, info.Size, o.etag, cleanETag(info.ETag))
	}
	wantMD5 := r.wantMD5(o)
	// The hasher has followed the ranges as they arrived; only the bytes that
	// came last are left to hash.
	sum, md, crc, n, err := o.hash.wait(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return local(err)
	}
	if n != o.size {
		return fmt.Errorf("%w: part file holds %d bytes, want %d", errVerify, n, o.size)
	}
	if err := r.verifySums(o, md, crc, wantMD5); err != nil {
		return err
	}
	f := o.file
	o.file = nil
	return r.commit(o, f, o.size, sum, o.etag)
}

// wantMD5 is the MD5 the content must have, if known.
func (r *run) wantMD5(o *object) []byte {
	if r.opt.NoVerify {
		return nil
	}
	if len(o.md5) == 16 {
		return o.md5
	}
	if o.s3 {
		return etagMD5(o.etag)
	}
	return nil
}

func (r *run) verifySums(o *object, md, crc hash.Hash, wantMD5 []byte) error {
	if md != nil {
		if got := md.Sum(nil); !bytes.Equal(got, wantMD5) {
			return fmt.Errorf("%w: MD5 %x, want %x", errVerify, got, wantMD5)
		}
	}
	if crc != nil {
		if got := crc.(hash.Hash32).Sum32(); got != o.crc {
			return fmt.Errorf("%w: CRC32C %08x, want %08x", errVerify, got, o.crc)
		}
	}
	return nil
}

// hashReader streams r once through sha256 and optionally MD5 and CRC32C.
func hashReader(ctx context.Context, rd io.Reader, withMD5, withCRC bool, buf []byte) (sum string, md, crc hash.Hash, n int64, err error) {
	sha := sha256.New()
	ws := []io.Writer{sha}
	if withMD5 {
		md = md5.New()
		ws = append(ws, md)
	}
	if withCRC {
		crc = crc32.New(crcTable)
		ws = append(ws, crc)
	}
	w := io.MultiWriter(ws...)
	for {
		if err := ctx.Err(); err != nil {
			return "", nil, nil, n, err
		}
		m, rerr := rd.Read(buf)
		if m > 0 {
			w.Write(buf[:m])
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", nil, nil, n, rerr
		}
	}
	return hex.EncodeToString(sha.Sum(nil)), md, crc, n, nil
}

// commit makes a verified file final: fsync, rename into place (refusing
// symlinked directories on the way), fsync the directory, journal it.
func (r *run) commit(o *object, f *os.File, size int64, sum, etag string) error {
	tmp := f.Name()
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ensureDir(r.out, o.ds.name+"/"+parentRel(o.path))
	}
	if err == nil {
		if fi, lerr := os.Lstat(o.final); lerr == nil && fi.IsDir() {
			err = fmt.Errorf("%s is a directory", o.final)
		}
	}
	if err == nil {
		err = os.Rename(tmp, o.final)
	}
	// The directory is fsynced once at the end of the run, not per file: if a
	// crash loses the rename, the journal's done record fails doneValid and the
	// object is fetched again, which is safe.
	if err == nil {
		r.dirtyDir(filepath.Dir(o.final))
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = os.Lstat(o.final)
	}
	if err != nil {
		os.Remove(tmp)
		return local(fmt.Errorf("commit %s: %w", o.final, err))
	}
	if err := r.j.append(record{T: recDone, Dataset: o.ds.name, Path: o.path, Size: size, SHA256: sum, ETag: etag, MTime: fi.ModTime().UnixNano()}); err != nil {
		return local(err)
	}
	o.res.Size = size
	o.res.SHA256 = sum
	o.haveBytes.Store(size)
	return nil
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
