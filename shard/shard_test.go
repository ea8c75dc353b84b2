package shard

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name   string
		value  string
		shards int
		env    map[string]string
		want   Spec
		err    string // part of the message; "" = no error
	}{
		{name: "not sharded", value: "", want: Spec{}},
		{name: "explicit", value: "2/4", want: Spec{Index: 2, Count: 4}},
		{name: "explicit one task", value: "0/1", want: Spec{Index: 0, Count: 1}},
		{name: "explicit agrees with --shards", value: "1/3", shards: 3, want: Spec{Index: 1, Count: 3}},
		{name: "explicit disagrees with --shards", value: "1/3", shards: 4, err: "disagree"},
		{name: "index too large", value: "4/4", err: "not in 0..3"},
		{name: "negative index", value: "-1/4", err: "not in 0..3"},
		{name: "zero tasks", value: "0/0", err: "want 1 or more"},
		{name: "garbage", value: "two/4", err: "want I/N"},
		{name: "no slash", value: "3", err: "want I/N"},
		{name: "--shards alone", value: "", shards: 2, err: "needs --shard auto"},
		{name: "negative --shards", value: "auto", shards: -1, err: "want 1 or more"},
		{name: "auto without engine", value: "auto", err: "no engine's task index is set"},
		{name: "slurm", value: "auto", env: map[string]string{"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "4"}, want: Spec{Index: 2, Count: 4}},
		{name: "slurm from 0", value: "auto", env: map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, want: Spec{Index: 3, Count: 4}},
		{name: "slurm index past count", value: "auto", env: map[string]string{"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "4"}, err: "task 4 is not in 0..3"},
		{name: "slurm --shards disagrees", value: "auto", shards: 3, env: map[string]string{"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, err: "--shards 3 but SLURM_ARRAY_TASK_COUNT=4"},
		{name: "slurm count not a number", value: "auto", env: map[string]string{"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "x"}, err: "not an integer"},
		{name: "kubernetes --shards", value: "auto", shards: 5, env: map[string]string{"JOB_COMPLETION_INDEX": "4"}, want: Spec{Index: 4, Count: 5}},
		{name: "kubernetes env count", value: "auto", env: map[string]string{"JOB_COMPLETION_INDEX": "1", "IMGDATASET_SHARDS": "2"}, want: Spec{Index: 1, Count: 2}},
		{name: "kubernetes --shards wins over env", value: "auto", shards: 3, env: map[string]string{"JOB_COMPLETION_INDEX": "2", "IMGDATASET_SHARDS": "2"}, want: Spec{Index: 2, Count: 3}},
		{name: "kubernetes without count", value: "auto", env: map[string]string{"JOB_COMPLETION_INDEX": "1"}, err: "number of tasks is not set"},
		{name: "aws", value: "auto", env: map[string]string{"AWS_BATCH_JOB_ARRAY_INDEX": "0", "IMGDATASET_SHARDS": "3"}, want: Spec{Index: 0, Count: 3}},
		{name: "aws index past count", value: "auto", shards: 3, env: map[string]string{"AWS_BATCH_JOB_ARRAY_INDEX": "3"}, err: "not in 0..2"},
		{name: "google", value: "auto", env: map[string]string{"BATCH_TASK_INDEX": "1", "BATCH_TASK_COUNT": "2"}, want: Spec{Index: 1, Count: 2}},
		{name: "google without count", value: "auto", env: map[string]string{"BATCH_TASK_INDEX": "1"}, err: "BATCH_TASK_COUNT, IMGDATASET_SHARDS"},
		{name: "two engines", value: "auto", env: map[string]string{"BATCH_TASK_INDEX": "1", "BATCH_TASK_COUNT": "2", "JOB_COMPLETION_INDEX": "0"}, err: "more than one engine"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse(c.value, c.shards, func(k string) string { return c.env[k] })
			if c.err != "" {
				if err == nil || !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Parse(%q, %d) = %v, %v; want an ErrUsage containing %q", c.value, c.shards, got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Parse(%q, %d) = %v, %v; want %v", c.value, c.shards, got, err, c.want)
			}
		})
	}
}

// TestRangeCovers checks that the tasks' ranges tile [0, n) in order,
// with sizes differing by at most one.
func TestRangeCovers(t *testing.T) {
	for _, c := range []struct{ n, count int }{{0, 3}, {1, 4}, {4, 4}, {9, 4}, {10, 3}, {100, 7}} {
		next, least, most := 0, c.n, 0
		for i := 0; i < c.count; i++ {
			lo, hi := Spec{Index: i, Count: c.count}.Range(c.n)
			if lo != next || hi < lo {
				t.Fatalf("n=%d count=%d: task %d has [%d,%d), want it to start at %d", c.n, c.count, i, lo, hi, next)
			}
			next = hi
			least, most = min(least, hi-lo), max(most, hi-lo)
		}
		if next != c.n || most-least > 1 {
			t.Errorf("n=%d count=%d: ranges end at %d, sizes %d..%d", c.n, c.count, next, least, most)
		}
	}
}

// TestBalance checks that the split is balanced, covers every item, and
// depends on the keys and sizes only, not on the order items come in.
func TestBalance(t *testing.T) {
	for _, c := range []struct {
		name    string
		sizes   []int64
		count   int
		maxLoad int64 // the largest task total the split may have
	}{
		{name: "equal", sizes: []int64{5, 5, 5, 5, 5, 5}, count: 3, maxLoad: 10},
		{name: "one large", sizes: []int64{100, 1, 1, 1, 1}, count: 2, maxLoad: 100},
		{name: "mixed", sizes: []int64{7, 3, 9, 1, 4, 6, 2, 8}, count: 3, maxLoad: 14},
		{name: "unknown sizes", sizes: []int64{-1, -1, 4}, count: 2, maxLoad: 4},
		{name: "more tasks than items", sizes: []int64{3, 2}, count: 4, maxLoad: 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			keys := make([]string, len(c.sizes))
			for i := range keys {
				keys[i] = fmt.Sprintf("obj-%02d", i)
			}
			got := Balance(keys, c.sizes, c.count)
			load := make([]int64, c.count)
			for i, task := range got {
				if task < 0 || task >= c.count {
					t.Fatalf("item %d to task %d of %d", i, task, c.count)
				}
				load[task] += max(c.sizes[i], 0)
			}
			for task, l := range load {
				if l > c.maxLoad {
					t.Errorf("task %d carries %d, more than %d: %v", task, l, c.maxLoad, load)
				}
			}
			// Reversed input order: every item goes to the same task.
			rk := make([]string, len(keys))
			rs := make([]int64, len(keys))
			for i := range keys {
				rk[len(keys)-1-i], rs[len(keys)-1-i] = keys[i], c.sizes[i]
			}
			rev := Balance(rk, rs, c.count)
			for i := range keys {
				if rev[len(keys)-1-i] != got[i] {
					t.Errorf("item %s: task %d, or %d when the items come reversed", keys[i], got[i], rev[len(keys)-1-i])
				}
			}
		})
	}
}
