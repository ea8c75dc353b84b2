package tiff

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// Read tuning: requests in flight per ReadRegion, the largest coalesced range,
// the largest gap bridged between neighbouring chunks, and the strip-table cache.
const (
	readConcurrency = 8
	maxRun          = 8 << 20
	maxGap          = 4096
	tableCacheLen   = 64
)

// tiffVolume is one series of a TIFF file. It holds only structure; pixels
// are fetched by range for each ReadRegion.
type tiffVolume struct {
	r      *reader
	info   volume.Info
	lay    layout
	pages  []*page // one per plane unless virtual
	nlead  int     // leading (plane) axes in Shape
	planes int64   // product of the leading axes

	// virtual: planes beyond the IFDs follow page 0's data contiguously
	// (ImageJ stacks larger than 4 GB write only the first IFD correctly).
	virtual    bool
	planeBytes int64

	mu     sync.Mutex
	tables map[int64]*table // bounded by tableCacheLen

	// bufs holds *[]byte scratch buffers (at most maxRun bytes) for stored
	// runs and decoded rows, so that a sequence of ReadRegion calls does not
	// allocate per range.
	bufs sync.Pool
}

// table holds a page's chunk offsets and byte counts.
type table struct {
	offsets    []uint64
	counts     []uint64 // nil when the file omits them (uncompressed only)
	jpegTables []byte   // JPEGTables of the page, compression 7 only
}

// Info implements volume.Volume.
func (v *tiffVolume) Info() volume.Info { return v.info }

// table returns the chunk table of plane i, reading it on first use.
func (v *tiffVolume) table(ctx context.Context, i int64) (*table, error) {
	pi := i
	if v.virtual {
		pi = 0
	}
	v.mu.Lock()
	t, ok := v.tables[pi]
	v.mu.Unlock()
	if !ok {
		var err error
		t, err = v.pages[pi].src.loadTable(ctx, v.pages[pi])
		if err != nil {
			return nil, err
		}
		v.mu.Lock()
		if len(v.tables) >= tableCacheLen {
			for k := range v.tables { // drop an arbitrary entry: bounded, not clever
				delete(v.tables, k)
				break
			}
		}
		v.tables[pi] = t
		v.mu.Unlock()
	}
	if v.virtual && i > 0 {
		shift := uint64(i) * uint64(v.planeBytes)
		vt := &table{offsets: make([]uint64, len(t.offsets)), counts: t.counts, jpegTables: t.jpegTables}
		for k, o := range t.offsets {
			vt.offsets[k] = o + shift
		}
		return vt, nil
	}
	return t, nil
}

// loadTable reads a page's offset and byte-count arrays, in one request when
// they sit next to each other.
func (r *reader) loadTable(ctx context.Context, p *page) (*table, error) {
	n := p.numChunks()
	get := func(ref tableRef, buf []byte, bufOff int64) ([]uint64, error) {
		ts := typeSize(ref.typ)
		nb := n * ts
		var raw []byte
		switch {
		case ref.inline:
			raw = ref.data[:nb]
		case buf != nil:
			raw = buf[ref.off-bufOff : ref.off-bufOff+nb]
		default:
			var err error
			if raw, err = r.readAt(ctx, ref.off, nb); err != nil {
				return nil, err
			}
		}
		return decodeUints(r.bo, ref.typ, raw)
	}
	var buf []byte
	var bufOff int64
	o, c := p.offsets, p.counts
	if !o.inline && !c.inline && c.count > 0 {
		lo := min(o.off, c.off)
		hi := max(o.off+n*typeSize(o.typ), c.off+n*typeSize(c.typ))
		if hi-lo <= 2*n*(typeSize(o.typ)+typeSize(c.typ))+maxGap {
			var err error
			if buf, err = r.readAt(ctx, lo, hi-lo); err != nil {
				return nil, err
			}
			bufOff = lo
		}
	}
	t := &table{}
	var err error
	if t.offsets, err = get(o, buf, bufOff); err != nil {
		return nil, fmt.Errorf("tiff %q: IFD at %d: offsets: %w", r.key, p.ifdOff, err)
	}
	if c.count > 0 {
		if t.counts, err = get(c, buf, bufOff); err != nil {
			return nil, fmt.Errorf("tiff %q: IFD at %d: byte counts: %w", r.key, p.ifdOff, err)
		}
	}
	if jt := p.jpegTab; jt.count > 0 {
		if jt.inline {
			t.jpegTables = jt.data[:jt.count]
		} else if t.jpegTables, err = r.readAt(ctx, jt.off, jt.count); err != nil {
			return nil, fmt.Errorf("tiff %q: IFD at %d: JPEGTables: %w", r.key, p.ifdOff, err)
		}
	}
	if err := r.checkExtents(p, t); err != nil {
		return nil, err
	}
	return t, nil
}

// checkExtents checks that every chunk of a page's table lies inside the
// file. An uncompressed chunk needs only the bytes of its rows (a byte count
// may overstate them); a compressed one is read whole. A zero offset or
// count is a missing chunk, which reads as zeros.
func (r *reader) checkExtents(p *page, t *table) error {
	kind := "strip"
	if p.tiled {
		kind = "tile"
	}
	perPlane := p.chunksDown() * p.chunksAcross()
	for i, off := range t.offsets[:min(int64(len(t.offsets)), p.numChunks())] {
		var n int64 = -1
		if t.counts != nil {
			n = int64(min(t.counts[i], math.MaxInt64))
		}
		if off == 0 || n == 0 {
			continue
		}
		if p.compression == 1 {
			rows := p.chunkH()
			if !p.tiled {
				rows = min(rows, p.height-(int64(i)%perPlane)*p.rowsPerStrip)
			}
			need := rows * p.rowBytes()
			if n < 0 || n > need {
				n = need
			}
		}
		if off > uint64(r.size) || n > r.size-int64(off) {
			return r.pastEnd("%s %s %d at offset %d+%d", p.name(), kind, i, off, n)
		}
	}
	return nil
}

// job is one chunk (or, uncompressed, a band of its rows) that a read needs.
type job struct {
	src    *reader // the file holding the plane
	tables []byte  // JPEGTables of the plane
	lead   []int64 // leading-axis index of the plane
	plane  int64
	sp     int64 // sample plane (planar configuration 2), else 0
	ry0    int64 // page rows delivered: [ry0, ry1)
	ry1    int64
	cy0    int64 // first page row of the chunk
	cx0    int64 // first page column of the chunk
	chunkI int64
	off, n int64 // stored bytes to fetch; n == 0 means a missing chunk (zeros)
	whole  bool  // the bytes are a whole compressed chunk
	// dst is the byte offset in dst where the rows land unchanged (but for
	// byte order) and contiguously, so they are read straight there; -1 when
	// they need decoding or scattering through a buffer.
	dst int64
}

// ReadRegion implements volume.Volume: it reads only the strips or tiles the
// box touches, coalescing neighbouring ranges, with bounded concurrency.
func (v *tiffVolume) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	if err := volume.CheckRead(v.info, box, dst); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if box.Empty() {
		return nil
	}
	if v.lay.unsupported != "" {
		return fmt.Errorf("tiff %q: %s: %w", v.r.key, v.lay.unsupported, format.ErrNotSupported)
	}
	l := &v.lay
	nl := v.nlead
	// Page-space ranges of the box.
	var y0, y1, x0, x1, s0, s1 int64
	s0, s1 = 0, 1
	switch {
	case l.spp > 1 && l.planar == 2:
		s0, s1 = box.Start[nl], box.Stop[nl]
		y0, y1, x0, x1 = box.Start[nl+1], box.Stop[nl+1], box.Start[nl+2], box.Stop[nl+2]
	default:
		y0, y1, x0, x1 = box.Start[nl], box.Stop[nl], box.Start[nl+1], box.Stop[nl+1]
	}
	if l.planar != 2 {
		s0, s1 = 0, 1
	}

	// Planes the box touches, in C order of the leading axes.
	leadShape := v.info.Shape[:nl]
	var planes [][]int64
	volume.Each(volume.Box{Start: box.Start[:nl], Stop: box.Stop[:nl]}, func(idx []int64) error {
		planes = append(planes, append([]int64(nil), idx...))
		return nil
	})

	// Read the chunk tables the box needs, concurrently.
	tables := make([]*table, len(planes))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency)
	for i, lead := range planes {
		pl := ravel(lead, leadShape)
		g.Go(func() error {
			t, err := v.table(gctx, pl)
			tables[i] = t
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	ch, cw := l.chunkH(), l.chunkW()
	down, across := l.chunksDown(), l.chunksAcross()
	rowBytes := l.rowBytes()
	direct := v.directRows(box)
	var jobs []job
	for i, lead := range planes {
		pl := ravel(lead, leadShape)
		t := tables[i]
		src := v.pages[0].src
		if !v.virtual {
			src = v.pages[pl].src
		}
		for sp := s0; sp < s1; sp++ {
			for cy := y0 / ch; cy <= (y1-1)/ch; cy++ {
				for cx := x0 / cw; cx <= (x1-1)/cw; cx++ {
					ci := (sp*down+cy)*across + cx
					if ci >= int64(len(t.offsets)) {
						return fmt.Errorf("tiff %q: plane %d: chunk %d missing from the table: %w", src.key, pl, ci, errCorrupt)
					}
					cy0 := cy * ch
					chunkRows := min(ch, l.height-cy0)
					if l.tiled {
						chunkRows = ch
					}
					off := int64(t.offsets[ci])
					var cnt int64 = -1
					if t.counts != nil {
						cnt = int64(min(t.counts[ci], 1<<62))
					}
					if off < 0 || t.offsets[ci] > 1<<62 {
						return fmt.Errorf("tiff %q: plane %d chunk %d: offset %d: %w", src.key, pl, ci, t.offsets[ci], errCorrupt)
					}
					base := job{src: src, tables: t.jpegTables, lead: lead, plane: pl, sp: sp, cy0: cy0, cx0: cx * cw, chunkI: ci, dst: -1}
					if off == 0 || cnt == 0 {
						// A missing chunk reads as zeros (libtiff and tifffile agree).
						j := base
						j.ry0, j.ry1 = max(y0, cy0), min(y1, cy0+chunkRows)
						jobs = append(jobs, j)
						continue
					}
					if l.compression == 1 {
						// Uncompressed: fetch only the rows needed, in bands of at most maxRun bytes.
						ra, rb := max(y0, cy0), min(y1, cy0+min(ch, l.height-cy0))
						if cnt >= 0 && (rb-cy0)*rowBytes > cnt {
							return fmt.Errorf("tiff %q: plane %d chunk %d: %d bytes stored, rows need %d: %w",
								src.key, pl, ci, cnt, (rb-cy0)*rowBytes, errCorrupt)
						}
						band := max(1, maxRun/max(rowBytes, 1))
						for a := ra; a < rb; a += band {
							b := min(rb, a+band)
							j := base
							j.ry0, j.ry1 = a, b
							j.off, j.n = off+(a-cy0)*rowBytes, (b-a)*rowBytes
							if direct {
								j.dst = v.dstOffset(box, j)
							}
							jobs = append(jobs, j)
						}
						continue
					}
					want := chunkRows * rowBytes
					if cnt > 2*want+(1<<20) {
						return fmt.Errorf("tiff %q: plane %d chunk %d: %d compressed bytes for %d decoded: %w",
							src.key, pl, ci, cnt, want, errCorrupt)
					}
					j := base
					j.ry0, j.ry1 = max(y0, cy0), min(y1, cy0+chunkRows, l.height)
					j.off, j.n, j.whole = off, cnt, true
					jobs = append(jobs, j)
				}
			}
		}
	}
	return v.run(ctx, box, dst, jobs)
}

// directRows reports whether the uncompressed rows a read of box fetches map
// to contiguous runs of dst as stored: whole elements with no predictor, chunk
// rows as wide as the page, and box spanning every column and sample, so
// that one chunk row is one row of dst.
func (v *tiffVolume) directRows(box volume.Box) bool {
	l := &v.lay
	if l.compression != 1 || l.predictor != 1 || int64(l.bps) != 8*l.elemSize() || l.chunkW() != l.width {
		return false
	}
	k := v.nlead // the y axis of box
	if l.spp > 1 && l.planar == 2 {
		k++
	}
	if box.Start[k+1] != 0 || box.Stop[k+1] != l.width {
		return false
	}
	if l.spp > 1 && l.planar != 2 && (box.Start[k+2] != 0 || box.Stop[k+2] != l.spp) {
		return false
	}
	return true
}

// dstOffset is the byte offset in dst of the first element of job j's rows,
// for a read that directRows accepted.
func (v *tiffVolume) dstOffset(box volume.Box, j job) int64 {
	n := len(box.Start)
	idx := make([]int64, n) // columns and samples start at 0 (== box.Start)
	copy(idx, j.lead)
	k := v.nlead
	if v.lay.spp > 1 && v.lay.planar == 2 {
		idx[k] = j.sp
		k++
	}
	idx[k] = j.ry0
	var e int64
	for i := range n {
		e = e*(box.Stop[i]-box.Start[i]) + idx[i] - box.Start[i]
	}
	return e * v.lay.elemSize()
}

// ravel is the C-order linear index of idx in shape.
func ravel(idx, shape []int64) int64 {
	var p int64
	for i := range idx {
		p = p*shape[i] + idx[i]
	}
	return p
}

type run struct {
	off, end int64
	jobs     []job
	dst      int64 // for direct runs: where in dst the run's bytes start
}

// run fetches the jobs' bytes in coalesced ranges and decodes them into dst.
// Direct jobs are read straight into dst; the others through pooled buffers.
func (v *tiffVolume) run(ctx context.Context, box volume.Box, dst []byte, jobs []job) error {
	var missing, direct, buffered []job
	for _, j := range jobs {
		switch {
		case j.n == 0:
			missing = append(missing, j)
		case j.dst >= 0:
			direct = append(direct, j)
		default:
			buffered = append(buffered, j)
		}
	}
	for _, j := range missing {
		if err := v.place(box, dst, j, nil); err != nil {
			return err
		}
	}
	byFile := func(js []job) {
		sort.Slice(js, func(a, b int) bool {
			if js[a].src != js[b].src {
				return js[a].src.key < js[b].src.key
			}
			return js[a].off < js[b].off
		})
	}
	byFile(direct)
	byFile(buffered)
	var runs []run
	// Direct runs join only jobs adjacent both in the file and in dst.
	for _, j := range direct {
		if n := len(runs); n > 0 {
			r := &runs[n-1]
			if j.src == r.jobs[0].src && j.off == r.end && j.dst == r.dst+(r.end-r.off) && j.off+j.n-r.off <= maxRun {
				r.end = j.off + j.n
				r.jobs = append(r.jobs, j)
				continue
			}
		}
		runs = append(runs, run{off: j.off, end: j.off + j.n, jobs: []job{j}, dst: j.dst})
	}
	nDirect := len(runs)
	for _, j := range buffered {
		if n := len(runs); n > nDirect {
			r := &runs[n-1]
			if j.src == r.jobs[0].src && j.off >= r.end && j.off-r.end <= maxGap && j.off+j.n-r.off <= maxRun {
				r.end = j.off + j.n
				r.jobs = append(r.jobs, j)
				continue
			}
		}
		runs = append(runs, run{off: j.off, end: j.off + j.n, jobs: []job{j}, dst: -1})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency)
	for i, r := range runs {
		if i < nDirect {
			g.Go(func() error { return v.readDirect(gctx, dst, r) })
			continue
		}
		g.Go(func() error {
			bp := v.getBuf(r.end - r.off)
			defer v.putBuf(bp)
			buf := *bp
			if err := r.jobs[0].src.readInto(gctx, r.off, buf); err != nil {
				return err
			}
			for _, j := range r.jobs {
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := v.place(box, dst, j, buf[j.off-r.off:j.off-r.off+j.n]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// readDirect reads a direct run into its place in dst and puts big-endian
// elements into little-endian order there.
func (v *tiffVolume) readDirect(ctx context.Context, dst []byte, r run) error {
	n := r.end - r.off
	if r.dst < 0 || r.dst > int64(len(dst)) || n > int64(len(dst))-r.dst {
		// dstOffset keeps inside the box, so this is a bug, not bad input.
		return fmt.Errorf("tiff %q: rows at %d (%d bytes) outside the %d-byte destination", r.jobs[0].src.key, r.dst, n, len(dst))
	}
	out := dst[r.dst : r.dst+n]
	src := r.jobs[0].src
	if err := src.readInto(ctx, r.off, out); err != nil {
		return err
	}
	swapToLE(out, src.bo, int(v.lay.elemSize()))
	return nil
}

// getBuf returns a scratch buffer of n bytes, from the pool when it is small
// enough to be pooled. Its contents are arbitrary.
func (v *tiffVolume) getBuf(n int64) *[]byte {
	if n <= maxRun {
		if bp, ok := v.bufs.Get().(*[]byte); ok {
			if int64(cap(*bp)) >= n {
				*bp = (*bp)[:n]
				return bp
			}
			v.bufs.Put(bp) // keep it for a smaller request
		}
		// Round up so that runs of similar sizes share buffers.
		b := make([]byte, n, min(maxRun, max(n, 1<<bits.Len64(uint64(n-1)))))
		return &b
	}
	b := make([]byte, n)
	return &b
}

// putBuf returns a buffer from getBuf; oversized ones are left to the GC.
func (v *tiffVolume) putBuf(bp *[]byte) {
	if cap(*bp) <= maxRun {
		v.bufs.Put(bp)
	}
}

// place decodes one job's stored bytes (nil for a missing chunk) and copies
// the part inside box into dst.
func (v *tiffVolume) place(box volume.Box, dst []byte, j job, raw []byte) error {
	l := &v.lay
	rows := j.ry1 - j.ry0
	if rows <= 0 {
		return nil
	}
	outRow := l.decodedRowBytes()
	rowBytes := l.rowBytes()
	var dec []byte
	switch {
	case raw == nil:
		bp := v.getBuf(rows * outRow)
		defer v.putBuf(bp)
		dec = *bp
		clear(dec)
	default:
		stored := raw
		if j.whole {
			chunkRows := l.chunkH()
			if !l.tiled {
				chunkRows = min(chunkRows, l.height-j.cy0)
			}
			var err error
			if l.compression == 7 {
				stored, err = decodeJPEG(j.src.jpeg, j.tables, raw, l.chunkW(), chunkRows, l.sppChunk(), l.photometric == 6)
			} else {
				stored, err = decompress(j.src.codecs, l.compression, raw, chunkRows*rowBytes, l.chunkH()*rowBytes)
			}
			if err != nil {
				return fmt.Errorf("tiff %q: plane %d chunk %d (%s): %w: %w", j.src.key, j.plane, j.chunkI, compressionName(l.compression), errCorrupt, err)
			}
			skip := (j.ry0 - j.cy0) * rowBytes
			if int64(len(stored)) < skip+rows*rowBytes {
				return fmt.Errorf("tiff %q: plane %d chunk %d: %d bytes decoded, rows need %d: %w",
					j.src.key, j.plane, j.chunkI, len(stored), skip+rows*rowBytes, errCorrupt)
			}
			stored = stored[skip:]
		}
		if l.bps%8 == 0 && l.predictor == 1 && (j.src.bo == binary.LittleEndian || l.bps == 8) {
			dec = stored[:rows*rowBytes] // already little-endian elements
		} else {
			bp := v.getBuf(rows * outRow)
			defer v.putBuf(bp)
			dec = *bp
			rd := rowDecoder{bo: j.src.bo, bps: l.bps, elem: int(l.elemSize()), predictor: l.predictor, stride: int(l.sppChunk())}
			if err := rd.decodeRows(stored, rowBytes, dec, outRow, rows); err != nil {
				return fmt.Errorf("tiff %q: plane %d chunk %d: %w: %w", j.src.key, j.plane, j.chunkI, errCorrupt, err)
			}
		}
	}
	// The decoded rows as a box in volume coordinates.
	n := len(v.info.Shape)
	src := volume.Box{Start: make([]int64, n), Stop: make([]int64, n)}
	for i, x := range j.lead {
		src.Start[i], src.Stop[i] = x, x+1
	}
	k := v.nlead
	if l.spp > 1 && l.planar == 2 {
		src.Start[k], src.Stop[k] = j.sp, j.sp+1
		k++
	}
	src.Start[k], src.Stop[k] = j.ry0, j.ry1
	src.Start[k+1], src.Stop[k+1] = j.cx0, j.cx0+l.chunkW()
	if l.spp > 1 && l.planar != 2 {
		src.Start[k+2], src.Stop[k+2] = 0, l.spp
	}
	region, ok := box.Intersect(src)
	if !ok {
		return nil
	}
	if int64(len(dec)) < src.NumElements()*l.elemSize() {
		return fmt.Errorf("tiff %q: plane %d chunk %d: %w", j.src.key, j.plane, j.chunkI, errShortChunk)
	}
	volume.CopyBox(dst, box, dec, src, region, int(l.elemSize()))
	return nil
}

var _ volume.Volume = (*tiffVolume)(nil)
