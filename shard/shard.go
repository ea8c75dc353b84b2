// Package shard splits one command's work into N deterministic tasks that
// an existing engine (a Slurm array, a Kubernetes Indexed Job, an AWS or
// Google Batch array, GNU parallel) runs, and keeps the record of which
// tasks are done.
//
// A task is named by its Spec, I/N with 0 ≤ I < N. Every task computes the
// same plan from the same request, takes its own part of it, writes only
// files no other task writes, and leaves a done marker last. The plan never
// depends on timing, so a task that is killed and run again redoes exactly
// its own part.
package shard

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Spec is one task of a sharded command: Index of Count, 0-based. The zero
// Spec (Count 0) means the work is not sharded.
type Spec struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Sharded reports whether s names a task (Count ≥ 1).
func (s Spec) Sharded() bool { return s.Count > 0 }

// String is the I/N spelling of the command line.
func (s Spec) String() string { return strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count) }

// ErrUsage is wrapped by every error of Parse: the command line or the
// engine's environment does not name one task.
var ErrUsage = errors.New("shard")

// ShardsEnv is the variable that gives N to engines that do not tell the
// task how many tasks there are (Kubernetes Indexed Jobs, AWS Batch).
const ShardsEnv = "IMGDATASET_SHARDS"

// engine is one scheduler's way of telling a task who it is.
type engine struct {
	name  string
	index string // variable holding the task's index
	min   string // variable subtracted from index ("" for none)
	count string // variable holding the task count ("" when N must be given)
}

// engines lists the schedulers --shard auto knows, in the order they are
// tried.
func engines() []engine {
	return []engine{
		{name: "Slurm", index: "SLURM_ARRAY_TASK_ID", min: "SLURM_ARRAY_TASK_MIN", count: "SLURM_ARRAY_TASK_COUNT"},
		{name: "Kubernetes Indexed Job", index: "JOB_COMPLETION_INDEX"},
		{name: "AWS Batch", index: "AWS_BATCH_JOB_ARRAY_INDEX"},
		{name: "Google Batch", index: "BATCH_TASK_INDEX", count: "BATCH_TASK_COUNT"},
	}
}

// Parse reads the value of --shard: "I/N", or "auto" to take I and N from
// the engine running the process through env (os.Getenv in the binary,
// a map in tests). shards is the value of --shards (0 when not given): the
// task count for engines that do not tell it, and a check for those that
// do. An empty value means not sharded (the zero Spec) unless shards is
// set. Every error wraps ErrUsage.
func Parse(value string, shards int, env func(string) string) (Spec, error) {
	if shards < 0 {
		return Spec{}, fmt.Errorf("%w: --shards %d: want 1 or more", ErrUsage, shards)
	}
	switch value {
	case "":
		if shards > 0 {
			return Spec{}, fmt.Errorf("%w: --shards %d needs --shard auto (or --shard I/N)", ErrUsage, shards)
		}
		return Spec{}, nil
	case "auto":
		return auto(shards, env)
	}
	i, n, ok := strings.Cut(value, "/")
	si, err1 := strconv.Atoi(strings.TrimSpace(i))
	sn, err2 := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err1 != nil || err2 != nil {
		return Spec{}, fmt.Errorf("%w: --shard %q: want I/N (task I of N, 0-based, e.g. 0/4) or auto", ErrUsage, value)
	}
	s := Spec{Index: si, Count: sn}
	if err := s.check("--shard " + value); err != nil {
		return Spec{}, err
	}
	if shards > 0 && shards != sn {
		return Spec{}, fmt.Errorf("%w: --shard %s and --shards %d disagree on the number of tasks", ErrUsage, value, shards)
	}
	return s, nil
}

// check reports an index outside [0, Count) or a count below 1.
func (s Spec) check(what string) error {
	if s.Count < 1 {
		return fmt.Errorf("%w: %s: %d tasks; want 1 or more", ErrUsage, what, s.Count)
	}
	if s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("%w: %s: task %d is not in 0..%d", ErrUsage, what, s.Index, s.Count-1)
	}
	return nil
}

// auto finds the one engine whose index variable is set.
func auto(shards int, env func(string) string) (Spec, error) {
	var found []engine
	var names []string
	for _, e := range engines() {
		names = append(names, e.name+" ("+e.index+")")
		if env(e.index) != "" {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		return Spec{}, fmt.Errorf("%w: --shard auto: no engine's task index is set; looked for %s. Give --shard I/N instead", ErrUsage, strings.Join(names, ", "))
	case 1:
	default:
		var set []string
		for _, e := range found {
			set = append(set, e.index)
		}
		return Spec{}, fmt.Errorf("%w: --shard auto: more than one engine's task index is set (%s); give --shard I/N", ErrUsage, strings.Join(set, ", "))
	}
	e := found[0]
	num := func(name string) (int, error) {
		v := strings.TrimSpace(env(name))
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("%w: --shard auto (%s): %s=%q is not an integer", ErrUsage, e.name, name, v)
		}
		return n, nil
	}
	idx, err := num(e.index)
	if err != nil {
		return Spec{}, err
	}
	if e.min != "" && env(e.min) != "" {
		lo, err := num(e.min)
		if err != nil {
			return Spec{}, err
		}
		idx -= lo
	}
	var n int
	switch {
	case e.count != "" && env(e.count) != "":
		if n, err = num(e.count); err != nil {
			return Spec{}, err
		}
		if shards > 0 && shards != n {
			return Spec{}, fmt.Errorf("%w: --shard auto (%s): --shards %d but %s=%d", ErrUsage, e.name, shards, e.count, n)
		}
	case shards > 0:
		n = shards
	case env(ShardsEnv) != "":
		if n, err = num(ShardsEnv); err != nil {
			return Spec{}, err
		}
	default:
		need := ShardsEnv
		if e.count != "" {
			need = e.count + ", " + ShardsEnv
		}
		return Spec{}, fmt.Errorf("%w: --shard auto (%s): the number of tasks is not set; give --shards N or set %s", ErrUsage, e.name, need)
	}
	s := Spec{Index: idx, Count: n}
	if err := s.check("--shard auto (" + e.name + ")"); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// Range is the contiguous part [lo, hi) of n equal items that task s
// takes: the first n%Count tasks take one more. Contiguous parts keep a
// task's regions next to each other, so they share source chunks.
func (s Spec) Range(n int) (lo, hi int) {
	q, r := n/s.Count, n%s.Count
	lo = s.Index*q + min(s.Index, r)
	hi = lo + q
	if s.Index < r {
		hi++
	}
	return lo, hi
}

// Balance assigns items of the given sizes to count tasks so that the
// tasks' totals are close: largest first, each to the task with the least
// so far (the lowest index on a tie); equal sizes go in the order of keys,
// which must be unique. The result, task per item, depends only on keys,
// sizes and count, never on the order the items come in, so every task and
// every rerun computes the same split.
func Balance(keys []string, sizes []int64, count int) []int {
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		x, y := order[a], order[b]
		if sizes[x] != sizes[y] {
			return sizes[x] > sizes[y]
		}
		return keys[x] < keys[y]
	})
	load := make([]int64, count)
	task := make([]int, len(keys))
	for _, i := range order {
		best := 0
		for t := 1; t < count; t++ {
			if load[t] < load[best] {
				best = t
			}
		}
		task[i] = best
		load[best] += max(sizes[i], 0)
	}
	return task
}
