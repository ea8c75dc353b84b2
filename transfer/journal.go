package transfer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// The journal is an append-only file of JSON lines. Every record is fsynced
// before the call that wrote it returns, so after a crash (even SIGKILL or a
// power cut) the journal never claims more than the part files hold. A torn
// last line is ignored on load.
//
// Records:
//
//	{"t":"part","ds":…,"path":…,"off":…,"len":…,"size":…,"etag":…,"lastmod":…}   bytes [off,off+len) are in the part file
//	{"t":"done","ds":…,"path":…,"size":…,"sha256":…,"etag":…,"lastmod":…,"mtime":…} the final file is complete
//
// etag and lastmod (the server's Last-Modified, Unix seconds) are the remote
// object's validators: lastmod tells versions apart on servers that send no
// ETag (issue #17).
//
//	{"t":"reset","ds":…,"path":…}                                      forget everything about the object
const (
	recPart  = "part"
	recDone  = "done"
	recReset = "reset"
)

// maxJournalLine bounds one journal line so a corrupt file cannot make the
// loader buffer unbounded memory.
const maxJournalLine = 1 << 20

type record struct {
	T       string `json:"t"`
	Dataset string `json:"ds"`
	Path    string `json:"path"`
	Off     int64  `json:"off,omitempty"`
	Len     int64  `json:"len,omitempty"`
	Size    int64  `json:"size"`
	ETag    string `json:"etag,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	MTime   int64  `json:"mtime,omitempty"` // final file's modification time, Unix ns
	LastMod int64  `json:"lastmod,omitempty"`
}

// entry is the journal's knowledge about one object after replay.
type entry struct {
	size    int64
	etag    string
	lastMod int64
	parts   rangeSet // valid when done == nil
	done    *record
}

func entryKey(dataset, path string) string { return dataset + "\x00" + path }

// journal appends records with group commit: concurrent appenders share one
// write+fsync, which keeps thousands of small objects from paying one fsync each
// while still never acknowledging a record before it is durable.
type journal struct {
	path    string
	f       *os.File
	entries map[string]*entry // replayed state; read during setup only

	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	waiters int
	gen     uint64 // incremented when a batch is taken for writing
	doneGen uint64 // last generation made durable
	errs    map[uint64]error
	writing bool
	err     error // sticky: once the journal cannot be written, nothing is acknowledged
}

// mainJournal is the journal of runs that are not sharded, below the state
// directory.
const mainJournal = "journal.jsonl"

// MergeJournals folds the journals of the tasks of a sharded run into the
// main journal of the output directory dir, so that a later run (or the
// finalize of the tasks) finds their objects done, and removes them. names
// are the tasks' Options.Journal values. What a task's journal says of an
// object replaces what the main journal said. The caller holds dir's lock
// (LockOutput). A crash leaves either the task journals or the merged main
// journal, never neither: merging again is harmless.
func MergeJournals(dir string, names []string) error {
	mainPath := filepath.Join(dir, stateDir, mainJournal)
	entries, err := replay(mainPath)
	if err != nil {
		return fmt.Errorf("transfer: %w", err)
	}
	var paths []string
	for _, n := range names {
		rel, err := cleanRel("journal", n)
		if err != nil {
			return fmt.Errorf("transfer: %w", err)
		}
		p := filepath.Join(dir, stateDir, filepath.FromSlash(rel))
		task, err := replay(p)
		if err != nil {
			return fmt.Errorf("transfer: %w", err)
		}
		for k, e := range task {
			entries[k] = e
		}
		paths = append(paths, p)
	}
	if err := os.MkdirAll(filepath.Dir(mainPath), 0o755); err != nil {
		return fmt.Errorf("transfer: %w", err)
	}
	if err := writeCompacted(mainPath, entries); err != nil {
		return fmt.Errorf("transfer: %w", err)
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("transfer: journal %s: %w", p, err)
		}
	}
	return nil
}

// openJournal replays path (tolerating a torn last line), rewrites it compacted
// and opens it for appending.
func openJournal(path string) (*journal, error) {
	entries, err := replay(path)
	if err != nil {
		return nil, err
	}
	if err := writeCompacted(path, entries); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	j := &journal{path: path, f: f, entries: entries, errs: map[uint64]error{}}
	j.cond = sync.NewCond(&j.mu)
	return j, nil
}

// replay reads the journal into per-object entries. Malformed or
// out-of-range lines are skipped: they can only be a torn tail or corruption,
// and skipping a record only ever makes us download more, never trust more.
func replay(path string) (map[string]*entry, error) {
	entries := map[string]*entry{}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return entries, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	defer f.Close()
	entries, err = replayFrom(f)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return entries, nil
}

// replayFrom replays journal lines read from rd.
func replayFrom(rd io.Reader) (map[string]*entry, error) {
	entries := map[string]*entry{}
	r := bufio.NewReaderSize(rd, 64<<10)
	for {
		line, err := readLine(r)
		if len(line) > 0 {
			var rec record
			if json.Unmarshal(line, &rec) == nil {
				apply(entries, rec)
			}
		}
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// readLine returns the next line without its newline; overlong lines are
// consumed and returned empty.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > maxJournalLine {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if tooLong {
			line = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		return line, err
	}
}

// apply replays one record.
func apply(entries map[string]*entry, rec record) {
	if rec.Path == "" || rec.Dataset == "" || strings.ContainsRune(rec.Dataset, 0) || strings.ContainsRune(rec.Path, 0) {
		return // NUL separates dataset and path in entry keys; CleanKey never lets one through
	}
	k := entryKey(rec.Dataset, rec.Path)
	switch rec.T {
	case recReset:
		delete(entries, k)
	case recDone:
		if rec.Size < 0 || len(rec.SHA256) != 64 {
			return
		}
		r := rec
		entries[k] = &entry{size: rec.Size, etag: rec.ETag, lastMod: rec.LastMod, done: &r}
	case recPart:
		if rec.Size <= 0 || rec.Off < 0 || rec.Len <= 0 || rec.Off > rec.Size || rec.Len > rec.Size-rec.Off {
			return
		}
		e := entries[k]
		if e == nil || e.done != nil || e.size != rec.Size || e.etag != rec.ETag || e.lastMod != rec.LastMod {
			// A part of another version of the object: the old parts are useless.
			e = &entry{size: rec.Size, etag: rec.ETag, lastMod: rec.LastMod}
			entries[k] = e
		}
		e.parts.add(rec.Off, rec.Off+rec.Len)
	}
}

// writeCompacted replaces the journal with the minimal equivalent record set,
// atomically, so that the file does not grow without bound across runs.
func writeCompacted(path string, entries map[string]*entry) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".journal-*.tmp")
	if err != nil {
		return fmt.Errorf("journal %s: compact: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	w := bufio.NewWriter(tmp)
	if err := encodeEntries(w, entries); err != nil {
		tmp.Close()
		return fmt.Errorf("journal %s: compact: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("journal %s: compact: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("journal %s: compact: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("journal %s: compact: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("journal %s: compact: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// encodeEntries writes the minimal record set equivalent to entries, in a
// stable order.
func encodeEntries(w io.Writer, entries map[string]*entry) error {
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	enc := json.NewEncoder(w)
	for _, k := range keys {
		e := entries[k]
		if e.done != nil {
			if err := enc.Encode(e.done); err != nil {
				return err
			}
			continue
		}
		ds, p := splitKey(k)
		for _, iv := range e.parts {
			rec := record{T: recPart, Dataset: ds, Path: p, Off: iv.lo, Len: iv.hi - iv.lo, Size: e.size, ETag: e.etag, LastMod: e.lastMod}
			if err := enc.Encode(rec); err != nil {
				return err
			}
		}
	}
	return nil
}

func splitKey(k string) (dataset, path string) {
	for i := 0; i < len(k); i++ {
		if k[i] == 0 {
			return k[:i], k[i+1:]
		}
	}
	return "", k
}

// append writes rec and returns once it is on stable storage.
func (j *journal) append(rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	j.pending = append(j.pending, b...)
	myGen := j.gen + 1 // the batch this record will be written in
	j.waiters++
	for {
		if j.doneGen >= myGen {
			err := j.errs[myGen]
			j.waiters--
			if j.waiters == 0 {
				clear(j.errs)
			}
			return err
		}
		if !j.writing {
			// Become the leader: write everything pending as one batch.
			j.writing = true
			buf := j.pending
			j.pending = nil
			j.gen++
			gen := j.gen
			j.mu.Unlock()
			_, werr := j.f.Write(buf)
			if werr == nil {
				werr = j.f.Sync()
			}
			j.mu.Lock()
			if werr != nil {
				werr = fmt.Errorf("journal %s: %w", j.path, werr)
				j.err = werr
				j.errs[gen] = werr
			}
			j.doneGen = gen
			j.writing = false
			j.cond.Broadcast()
			continue
		}
		j.cond.Wait()
	}
}

func (j *journal) close() error {
	return j.f.Close()
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// interval is the half-open byte range [lo, hi).
type interval struct{ lo, hi int64 }

// rangeSet is a sorted list of disjoint, non-adjacent intervals.
type rangeSet []interval

// add merges [lo, hi) into the set.
func (s *rangeSet) add(lo, hi int64) {
	if hi <= lo {
		return
	}
	out := make(rangeSet, 0, len(*s)+1)
	placed := false
	for _, iv := range *s {
		switch {
		case iv.hi < lo:
			out = append(out, iv)
		case hi < iv.lo:
			if !placed {
				out = append(out, interval{lo, hi})
				placed = true
			}
			out = append(out, iv)
		default: // overlapping or adjacent: absorb
			lo, hi = min(lo, iv.lo), max(hi, iv.hi)
		}
	}
	if !placed {
		out = append(out, interval{lo, hi})
		sort.Slice(out, func(a, b int) bool { return out[a].lo < out[b].lo })
	}
	*s = out
}

// missing returns the gaps of the set within [0, size).
func (s rangeSet) missing(size int64) []interval {
	var gaps []interval
	pos := int64(0)
	for _, iv := range s {
		if iv.lo >= size {
			break
		}
		if iv.lo > pos {
			gaps = append(gaps, interval{pos, iv.lo})
		}
		pos = max(pos, iv.hi)
	}
	if pos < size {
		gaps = append(gaps, interval{pos, size})
	}
	return gaps
}

// total is the number of bytes covered.
func (s rangeSet) total() int64 {
	var n int64
	for _, iv := range s {
		n += iv.hi - iv.lo
	}
	return n
}

// prefix is the end of the contiguous run of bytes starting at offset 0.
func (s rangeSet) prefix() int64 {
	if len(s) == 0 || s[0].lo > 0 {
		return 0
	}
	return s[0].hi
}
