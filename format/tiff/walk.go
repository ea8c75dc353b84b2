package tiff

import (
	"context"
	"sort"

	"golang.org/x/sync/errgroup"
)

// IFD walk tuning. A remote multi-page file costs one round trip per IFD
// when walked link by link; regular files (every page the same size, IFDs
// between pixel data, as most microscope stacks are) let the walker guess
// where the next IFDs sit and fetch a batch of guesses at once.
const (
	windowEntries   = 20      // entries the default IFD window covers
	specFirstBatch  = 32      // guesses in the first speculative batch
	specMaxBatch    = 256     // guesses in one batch at most
	specConcurrency = 16      // guessed windows in flight
	specMaxMisses   = 3       // batches that find nothing before guessing stops
	specMaxSpan     = 1 << 20 // largest read that serves several guessed windows
	windowReach     = 4096    // how far past an IFD its small values may sit
)

// walker yields the IFDs of one chain in order. Guessed IFDs are only
// returned when the chain itself points at them, so a wrong guess costs
// bytes, never correctness.
type walker struct {
	r     *reader
	win   int64          // window for the next IFD read
	spec  map[int64]*ifd // guessed IFDs that parsed, by offset
	prev  int64          // offset of the IFD before the last one returned; 0 = none
	batch int            // size of the next speculative batch
	found int            // guesses of the current batch the chain confirmed
	miss  int            // consecutive batches that found nothing
	// rounds counts request waves: one per sequential read, and one per
	// specConcurrency requests of a batch (they run in parallel).
	rounds int
	// known lists IFD offsets an index (Micro-Manager's) claims, ascending;
	// knownAt maps each to its position. When the chain reaches one, the
	// walker fetches the next batch of known offsets at once. Like guesses,
	// they are used only when the chain points at them, so a lying index
	// costs bytes, never correctness.
	known   []int64
	knownAt map[int64]int
}

// setKnown gives the walker the IFD offsets an index lists, ascending.
func (w *walker) setKnown(offs []int64) {
	w.known = offs
	w.knownAt = make(map[int64]int, len(offs))
	for i, o := range offs {
		w.knownAt[o] = i
	}
}

func newWalker(r *reader) *walker {
	return &walker{r: r, win: ifdWindow, batch: specFirstBatch}
}

// defaultWindow is the bytes of an IFD with windowEntries entries.
func (w *walker) defaultWindow() int64 {
	c, e, n := w.r.ifdSizes()
	return c + windowEntries*e + n
}

// next returns the IFD at off and, when the chain looks regular, prefetches
// guesses for the IFDs after it.
func (w *walker) next(ctx context.Context, off int64) (*ifd, error) {
	d, ok := w.spec[off]
	if ok {
		delete(w.spec, off)
		w.found++
	} else {
		if w.spec != nil {
			// The chain left the guessed stride: drop the rest of the batch.
			w.endBatch(false)
		}
		if i, ok := w.knownAt[off]; ok && w.miss < specMaxMisses {
			w.fetchKnown(ctx, i)
			if d, ok = w.spec[off]; ok {
				delete(w.spec, off)
				w.found++
			}
		}
		if d == nil {
			w.rounds++
			var err error
			if d, err = w.r.readIFD(ctx, off, w.win); err != nil {
				return nil, err
			}
		}
	}
	w.win = max(w.defaultWindow(), min(w.r.span(d), ifdWindow))
	if w.spec != nil && len(w.spec) == 0 {
		w.endBatch(true)
	}
	prev := w.prev
	w.prev = off
	_, indexed := w.knownAt[d.next]
	if w.spec == nil && !indexed && prev != 0 && d.next != 0 && w.miss < specMaxMisses {
		if s := off - prev; s == d.next-off && s != 0 {
			w.speculate(ctx, d.next, s)
		}
	}
	return d, nil
}

// endBatch closes the current speculative batch: a batch the chain used to
// the end grows the next one, one it found nothing in counts as a miss.
func (w *walker) endBatch(complete bool) {
	switch {
	case complete:
		w.batch = min(2*w.batch, specMaxBatch)
		w.miss = 0
	case w.found <= 1: // the first guess is the chain's own pointer
		w.miss++
		w.batch = specFirstBatch
	default:
		w.batch = specFirstBatch
	}
	w.spec, w.found = nil, 0
}

// guess is one guessed IFD window.
type guess struct{ off, end int64 }

// speculate fetches windows at from, from+stride, … concurrently and keeps
// those that parse as IFDs. Nearby windows share one read. Failures are
// ignored: the chain walk reads a missed IFD again and reports its errors.
func (w *walker) speculate(ctx context.Context, from, stride int64) {
	r := w.r
	countSize, _, _ := r.ifdSizes()
	var gs []guess
	for j := int64(0); j < int64(w.batch); j++ {
		off := from + j*stride
		if off < 8 || off > r.size-countSize {
			break // strides are monotonic: every later guess is outside too
		}
		gs = append(gs, guess{off, min(off+w.win, r.size)})
	}
	w.fetch(ctx, gs)
}

// fetchKnown fetches a batch of known IFD offsets from known[i] on.
func (w *walker) fetchKnown(ctx context.Context, i int) {
	r := w.r
	countSize, _, _ := r.ifdSizes()
	var gs []guess
	for _, off := range w.known[i:min(len(w.known), i+w.batch)] {
		if off >= 8 && off <= r.size-countSize {
			gs = append(gs, guess{off, min(off+w.win, r.size)})
		}
	}
	w.fetch(ctx, gs)
}

// fetch reads the guessed windows, nearby ones in one request, and keeps
// those that parse as IFDs in w.spec.
func (w *walker) fetch(ctx context.Context, gs []guess) {
	r := w.r
	sort.Slice(gs, func(a, b int) bool { return gs[a].off < gs[b].off })
	var reads [][]guess
	for _, g := range gs {
		if n := len(reads); n > 0 {
			last := reads[n-1]
			if g.off-last[len(last)-1].end <= maxGap && g.end-last[0].off <= specMaxSpan {
				reads[n-1] = append(last, g)
				continue
			}
		}
		reads = append(reads, []guess{g})
	}
	w.rounds += (len(reads) + specConcurrency - 1) / specConcurrency
	found := make([][]*ifd, len(reads))
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(specConcurrency)
	for i, rd := range reads {
		eg.Go(func() error {
			lo, hi := rd[0].off, rd[0].end
			for _, g := range rd {
				hi = max(hi, g.end)
			}
			buf, err := r.readAt(gctx, lo, hi-lo)
			if err != nil {
				return nil
			}
			for _, g := range rd {
				if d, err := r.parseIFD(gctx, g.off, buf[g.off-lo:g.end-lo], false); err == nil {
					found[i] = append(found[i], d)
				}
			}
			return nil
		})
	}
	_ = eg.Wait()
	w.spec = map[int64]*ifd{}
	for _, ds := range found {
		for _, d := range ds {
			w.spec[d.off] = d
		}
	}
}

// span is how many bytes from an IFD's offset hold its entry table, next
// pointer and the small values stored right after them, so that the next
// window of a regular file needs no second request.
func (r *reader) span(d *ifd) int64 {
	c, e, n := r.ifdSizes()
	end := c + int64(len(d.entries))*e + n
	for i := range d.entries {
		en := &d.entries[i]
		switch en.tag {
		case tagStripOffsets, tagStripByteCounts, tagTileOffsets, tagTileByteCounts,
			tagImageDescription, tagSubIFDs:
			continue // read lazily, or large
		}
		if en.inline || en.off < d.off {
			continue
		}
		if x := en.off + en.nbytes() - d.off; x <= windowReach {
			end = max(end, x)
		}
	}
	return end
}
