package shard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/store"
)

// Dir is where the task records live, relative to the output: beside the
// run's journal, hidden from readers of the output.
const Dir = ".imgdataset/tasks"

// maxRecord bounds a record read back: a record lists the files its task
// wrote, which is many for a large volume but never unbounded.
const maxRecord = 256 << 20

// Record is what a task writes about itself: once when it starts (so that
// status and finalize know of it and of N before it ends) and, last, when
// it is done, with what it wrote.
type Record struct {
	// Kind is the command: "convert", "crop" or "run".
	Kind string `json:"kind"`
	// Shard is the task.
	Shard Spec `json:"shard"`
	// Request is the command's request (source, output, options), the
	// same in every task of one sharded command; finalize redoes from it
	// what depends on all tasks.
	Request json.RawMessage `json:"request"`
	// Unit names what the work is split into ("conversion regions",
	// "crop regions", "download objects").
	Unit string `json:"unit"`
	// Units is how many of them this task has; Total how many all tasks
	// have together.
	Units int `json:"units"`
	Total int `json:"total"`
	// Plan is a digest of the split the task computed, where the split
	// depends on more than the request (the objects a run resolved):
	// tasks of one command have the same.
	Plan string `json:"plan,omitempty"`
	// Wrote lists what the task wrote, relative to the output (done
	// records only).
	Wrote []string `json:"wrote,omitempty"`
}

// name is the record's file name: "3-of-4.done.json".
func name(s Spec, state string) string {
	return strconv.Itoa(s.Index) + "-of-" + strconv.Itoa(s.Count) + "." + state + ".json"
}

// Tasks is the record store of one output: the files under Dir.
type Tasks struct {
	st  *store.Store
	dir string
}

// Open opens the task records of the output directory out.
func Open(out string) *Tasks {
	// The file store checks every path against its root, which must be
	// absolute for that.
	if abs, err := filepath.Abs(out); err == nil {
		out = abs
	}
	d := filepath.Join(out, filepath.FromSlash(Dir))
	return &Tasks{st: store.New(store.NewFile(d)), dir: d}
}

// Close releases the store.
func (t *Tasks) Close() error { return t.st.Close() }

// Begin records that a task started.
func (t *Tasks) Begin(ctx context.Context, r Record) error {
	return t.put(ctx, name(r.Shard, "started"), r)
}

// Done records, last of all a task writes, that the task is done and what
// it wrote. The write is atomic: the record is there whole or not at all.
func (t *Tasks) Done(ctx context.Context, r Record) error {
	return t.put(ctx, name(r.Shard, "done"), r)
}

func (t *Tasks) put(ctx context.Context, key string, r Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("task record %s: %w", filepath.Join(t.dir, key), err)
	}
	if err := t.st.WriteAll(ctx, key, append(b, '\n')); err != nil {
		return fmt.Errorf("task record %s: %w", filepath.Join(t.dir, key), err)
	}
	return nil
}

// IsDone returns the done record of task s with request req, or nil when
// there is none. A done record of another request is an error: the output
// holds another command's tasks.
func (t *Tasks) IsDone(ctx context.Context, s Spec, req json.RawMessage) (*Record, error) {
	key := name(s, "done")
	r, err := t.get(ctx, key)
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !SameRequest(r.Request, req) {
		return nil, fmt.Errorf("task record %s: the task was done for another request (%s); write to a new output", filepath.Join(t.dir, key), r.Request)
	}
	return r, nil
}

func (t *Tasks) get(ctx context.Context, key string) (*Record, error) {
	b, err := t.st.ReadAll(ctx, key, maxRecord)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("task record %s: %w", filepath.Join(t.dir, key), err)
	}
	return &r, nil
}

// SameRequest reports whether two requests are the same, by their compact
// JSON form.
func SameRequest(a, b json.RawMessage) bool {
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return false
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}

// TaskState is what the records say of one task.
type TaskState struct {
	Shard   Spec    `json:"shard"`
	Started bool    `json:"started"`
	Done    bool    `json:"done"`
	Record  *Record `json:"-"`
}

// State is what the records of one output say: the request, the task
// count and each task's state.
type State struct {
	Kind    string          `json:"kind"`
	Request json.RawMessage `json:"request"`
	Unit    string          `json:"unit"`
	Count   int             `json:"count"`
	// Total is the number of units of all tasks; DoneUnits those of the
	// tasks that are done.
	Total     int         `json:"total"`
	DoneUnits int         `json:"done_units"`
	Tasks     []TaskState `json:"tasks"`
}

// ErrNoTasks is returned by Load when the output holds no task records.
var ErrNoTasks = errors.New("no sharded tasks recorded")

// Load reads every record. Records of different task counts, kinds or
// requests in one output are an error naming both: the tasks would not
// fit together.
func (t *Tasks) Load(ctx context.Context) (*State, error) {
	var keys []string
	err := t.st.List(ctx, "", "", func(o store.ObjectInfo) error {
		if strings.HasSuffix(o.Key, ".json") && !strings.Contains(o.Key, "/") {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("task records %s: %w", t.dir, err)
	}
	sort.Strings(keys)
	var st *State
	var first string
	byIndex := map[int]*TaskState{}
	for _, k := range keys {
		r, err := t.get(ctx, k)
		if err != nil {
			return nil, err
		}
		if st == nil {
			st = &State{Kind: r.Kind, Request: r.Request, Unit: r.Unit, Count: r.Shard.Count, Total: r.Total}
			first = k
		}
		switch {
		case r.Shard.Count != st.Count:
			return nil, fmt.Errorf("task records %s: %s is a task of %d, %s of %d; one output takes the tasks of one split", t.dir, k, r.Shard.Count, first, st.Count)
		case r.Kind != st.Kind || !SameRequest(r.Request, st.Request):
			return nil, fmt.Errorf("task records %s: %s and %s are tasks of different commands; one output takes the tasks of one command", t.dir, k, first)
		case r.Shard.Index < 0 || r.Shard.Index >= st.Count:
			return nil, fmt.Errorf("task records %s: %s: task %s out of range", t.dir, k, r.Shard)
		}
		ts := byIndex[r.Shard.Index]
		if ts == nil {
			ts = &TaskState{Shard: r.Shard}
			byIndex[r.Shard.Index] = ts
		}
		if strings.HasSuffix(k, ".done.json") {
			ts.Done, ts.Record = true, r
		} else {
			ts.Started = true
			if ts.Record == nil {
				ts.Record = r
			}
		}
	}
	if st == nil {
		return nil, fmt.Errorf("%s: %w", t.dir, ErrNoTasks)
	}
	for i := 0; i < st.Count; i++ {
		ts := byIndex[i]
		if ts == nil {
			ts = &TaskState{Shard: Spec{Index: i, Count: st.Count}}
		}
		if ts.Done {
			ts.Started = true
			st.DoneUnits += ts.Record.Units
		}
		st.Tasks = append(st.Tasks, *ts)
	}
	return st, nil
}

// Missing lists the tasks that are not done.
func (s *State) Missing() []Spec {
	var out []Spec
	for _, t := range s.Tasks {
		if !t.Done {
			out = append(out, t.Shard)
		}
	}
	return out
}

// NotDoneError names the tasks that are not done, e.g. "shard 1/2 not done".
type NotDoneError struct{ Missing []Spec }

// Error lists the missing tasks.
func (e *NotDoneError) Error() string {
	var parts []string
	for _, s := range e.Missing {
		parts = append(parts, "shard "+s.String()+" not done")
	}
	return strings.Join(parts, ", ")
}
