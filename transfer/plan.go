package transfer

import (
	"fmt"
	"os"
	"time"
)

// This file decides an object's first step: skip it (the journal proves it
// complete), fetch it whole, or cut it into ranges.

// begin decides an object's first step: skip it, stat it or fetch it.
func (r *run) begin(o *object, now time.Time) {
	e := r.j.entries[entryKey(o.ds.name, o.path)]
	switch {
	case o.size < 0 && o.hint <= r.ckpt && e == nil:
		// Unsized or listed as small: the GET's answer tells the size and
		// ETag, so no Stat comes first; one that turns out large is switched
		// to ranges (errSplit). With a journal entry, a Stat must first tell
		// whether the entry is still valid.
		r.enqueue(&task{obj: o, kind: kSmall}, now)
	case o.size < 0 || o.size > r.ckpt:
		// Large objects are planned from a fresh Stat: its ETag is the one the
		// journal and the final check compare against.
		r.enqueue(&task{obj: o, kind: kStat}, now)
	case e != nil && e.done != nil && o.etag == "" && o.lastMod == 0:
		// The listing gave no validator: only a Stat's ETag or Last-Modified
		// tells whether the completed file is still the remote object, not its
		// size alone (a file replaced by one of the same size).
		r.enqueue(&task{obj: o, kind: kStat}, now)
	case e != nil && e.done != nil && r.doneValid(o, e):
		r.skip(o, e)
	default:
		r.enqueue(&task{obj: o, kind: kSmall}, now)
	}
}

// doneValid reports whether the journal's completed record still describes
// both the local file and the remote object.
func (r *run) doneValid(o *object, e *entry) bool {
	d := e.done
	if o.size < 0 && o.etag == "" {
		return false // nothing to tell whether the remote object changed
	}
	if o.size >= 0 && d.Size != o.size {
		return false
	}
	// ETags compare when both sides have one; else Last-Modified does.
	if o.etag != "" && d.ETag != "" {
		if d.ETag != o.etag {
			return false
		}
	} else if o.lastMod != 0 && d.LastMod != 0 && d.LastMod != o.lastMod {
		return false
	}
	fi, err := os.Lstat(o.final)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != d.Size {
		return false
	}
	if fi.ModTime().UnixNano() == d.MTime {
		return true
	}
	// Touched since: only its content can tell.
	f, err := os.Open(o.final)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := r.getBuf()
	defer r.putBuf(buf)
	sum, n, err := hashReader(o.ctx, f, buf)
	return err == nil && n == d.Size && sum == d.SHA256
}

func (r *run) skip(o *object, e *entry) {
	o.res.Skipped = true
	o.res.Size = e.done.Size
	o.res.SHA256 = e.done.SHA256
	o.haveBytes.Store(e.done.Size)
	r.emit(Event{Type: EventSkipped, Dataset: o.ds.name, Path: o.path, Bytes: e.done.Size, Total: e.done.Size})
	r.settle(o)
}

// plan sets a ranged object up after its Stat: reuse journaled parts when the
// remote object is the one they came from, then queue the missing ranges.
func (r *run) plan(o *object, now time.Time) {
	k := entryKey(o.ds.name, o.path)
	e := r.j.entries[k]
	if e != nil && e.done != nil && r.doneValid(o, e) {
		r.skip(o, e)
		return
	}
	if o.size < 0 || o.size <= r.ckpt {
		o.ranged = false
		r.enqueue(&task{obj: o, kind: kSmall}, now)
		return
	}
	o.ranged = true
	o.have = nil
	if e != nil && e.done == nil && e.size == o.size && e.etag == o.etag && (o.etag != "" || e.lastMod == o.lastMod) {
		if fi, err := os.Stat(o.partPath); err == nil && fi.Size() == o.size {
			o.have = append(rangeSet(nil), e.parts...)
		}
	}
	if o.have == nil {
		if e != nil {
			if err := r.j.append(record{T: recReset, Dataset: o.ds.name, Path: o.path}); err != nil {
				r.settleFailed(o, err)
				return
			}
		}
		os.Remove(o.partPath)
	}
	delete(r.j.entries, k)
	f, err := os.OpenFile(o.partPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		err = f.Truncate(o.size)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		r.settleFailed(o, fmt.Errorf("part file: %w", err))
		return
	}
	o.file = f
	wantMD5 := r.wantMD5(o)
	o.hash = r.startHasher(o.ctx, f, o.size, wantMD5 != nil, o.hasCRC && !r.opt.NoVerify)
	o.hash.advance(o.have.prefix())
	o.haveBytes.Store(o.have.total())
	gaps := o.have.missing(o.size)
	if len(gaps) == 0 {
		r.enqueue(&task{obj: o, kind: kFinish}, now)
		return
	}
	ps := r.opt.PartSize
	for _, g := range gaps {
		if g.hi-g.lo <= 2*ps {
			r.enqueue(&task{obj: o, kind: kRange, off: g.lo, end: g.hi}, now)
			continue
		}
		// Cut the gap into a multiple of the per-host connection count, so the
		// last round of ranges keeps every connection busy (60 parts over 16
		// connections left 4 idle for a whole part time); never below 1 MiB.
		// The last round is cut in half again: connections that started late
		// (ramp-up) or run slow finish their last part while the others take
		// the small ones, instead of idling for a whole part time.
		n := (g.hi - g.lo + ps - 1) / ps
		k := max(int64(o.host.max), 1)
		if k > 1 {
			n = (n + k - 1) / k * k
		}
		minPart := min(ps, 1<<20)
		size := max((g.hi-g.lo+n-1)/n, minPart)
		tail := g.hi
		if n > k && size/2 >= minPart {
			tail = min(g.lo+(n-k)*size, g.hi)
		}
		off := g.lo
		for ; off < tail; off += size {
			r.enqueue(&task{obj: o, kind: kRange, off: off, end: min(off+size, tail)}, now)
		}
		for half := (size + 1) / 2; off < g.hi; off += half {
			r.enqueue(&task{obj: o, kind: kRange, off: off, end: min(off+half, g.hi)}, now)
		}
	}
}
