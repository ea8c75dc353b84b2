package transfer

import (
	"bytes"
	"context"
	"io"
	"os"

	"github.com/imgdataset/imgdataset/store"
)

// This file holds what failed attempts at a small object leave for the next
// one, so that a retry asks only for the bytes still missing.

// partial is the temp file of a small object: its first n bytes, their
// checksums so far, and the validator of the answer they came from. A retry
// asks for the rest with a Range request and keeps the bytes only when the
// new answer has the same validator; without one nothing can tell that the
// object did not change in between, and the retry starts over.
type partial struct {
	f                *os.File
	n                int64
	sums             *sums
	etag             string // of the answer the bytes came from; "" cannot be resumed
	size             int64  // of the whole object, as that answer said; -1 unknown
	withMD5, withCRC bool
}

// newPartial creates (or empties) the temp file at path.
func newPartial(path string, withMD5, withCRC bool) (*partial, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &partial{f: f, sums: newSums(withMD5, withCRC), size: -1, withMD5: withMD5, withCRC: withCRC}, nil
}

// write appends b to the bytes in place.
func (p *partial) write(b []byte) error {
	if _, err := p.f.WriteAt(b, p.n); err != nil {
		return err
	}
	p.sums.Write(b)
	p.n += int64(len(b))
	return nil
}

// resumable reports whether the bytes in place can be continued with the
// answer described by info.
func (p *partial) resumable(info store.ObjectInfo) bool {
	return p.etag != "" && store.CleanETag(info.ETag) == p.etag && (info.Size < 0 || p.size < 0 || info.Size == p.size)
}

// restart forgets the bytes in place, for a start from byte 0.
func (p *partial) restart() error {
	if err := p.f.Truncate(0); err != nil {
		return err
	}
	p.n, p.etag, p.size = 0, "", -1
	p.sums = newSums(p.withMD5, p.withCRC)
	return nil
}

// drop closes and removes the temp file.
func (p *partial) drop() {
	p.f.Close()
	os.Remove(p.f.Name())
}

// openRest opens the part of o that p lacks, and returns what the answer said
// of the object. An answer of another version, or one that cannot tell,
// makes p start over from byte 0.
func (r *run) openRest(ctx context.Context, o *object, p *partial) (io.ReadCloser, store.ObjectInfo, error) {
	for {
		off := p.n
		if off > 0 && p.etag == "" {
			if err := p.restart(); err != nil {
				return nil, store.ObjectInfo{}, local(err)
			}
			continue
		}
		n := int64(-1)
		if o.size >= 0 {
			n = o.size - off // ≥ 0 asks a ranged read, which keeps the bytes as stored
		}
		if off > 0 && n == 0 {
			// An earlier attempt got every byte and failed after them.
			return io.NopCloser(bytes.NewReader(nil)), store.ObjectInfo{Size: p.size, ETag: p.etag}, nil
		}
		rc, err := o.st.ReadRange(ctx, o.key, off, n)
		if err != nil {
			return nil, store.ObjectInfo{Size: -1}, err
		}
		info := store.ObjectInfo{Size: -1}
		if ir, ok := rc.(store.InfoReader); ok {
			info = ir.ObjectInfo()
		}
		if off == 0 {
			p.etag, p.size = store.CleanETag(info.ETag), info.Size
			o.answerLastMod = 0
			if !info.ModTime.IsZero() {
				o.answerLastMod = info.ModTime.Unix()
			}
			return rc, info, nil
		}
		if p.resumable(info) {
			return rc, info, nil
		}
		rc.Close()
		if err := p.restart(); err != nil {
			return nil, info, local(err)
		}
	}
}

// release closes what the object holds open: a ranged object's part file
// stays on disk (the journal may resume it), a small object's partial goes.
func (o *object) release() {
	if o.file != nil {
		o.file.Close()
		o.file = nil
	}
	if o.partial != nil {
		o.partial.drop()
		o.partial = nil
	}
}
