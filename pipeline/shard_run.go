package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/shard"
	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/transfer"
)

// The run's task kind and unit.
const (
	kindRun      = "run"
	unitDownload = "download objects"
)

// runRequest is what a task of a sharded run records: all finalize needs
// to run the rest.
type runRequest struct {
	Manifest     *manifest.Manifest `json:"manifest"`
	Only         []string           `json:"only,omitempty"`
	Convert      bool               `json:"convert"`
	ConvertChunk int64              `json:"convert_chunk"`
}

// ShardReport is what one task of a sharded run did.
type ShardReport struct {
	Task    string `json:"task"`
	Objects int    `json:"objects"` // this task's download objects
	Total   int    `json:"total"`   // all tasks' together
	Already bool   `json:"already_done,omitempty"`
}

// taskName names a task's lock and journal files: "2-of-4".
func taskName(s shard.Spec) string {
	return strconv.Itoa(s.Index) + "-of-" + strconv.Itoa(s.Count)
}

// taskJournal is a task's journal, below the output's state directory.
func taskJournal(s shard.Spec) string { return "tasks/" + taskName(s) + ".journal.jsonl" }

// joinTasks refuses a task whose output holds the tasks of another split
// or request, and returns the task's done record when it is done already.
func joinTasks(ctx context.Context, tasks *shard.Tasks, name string, task shard.Spec, kind string, req json.RawMessage) (*shard.Record, error) {
	// Tasks of another split or command would write other parts into the
	// same files: refuse before writing anything.
	st, err := tasks.Load(ctx)
	switch {
	case err == nil:
		if st.Count != task.Count || st.Kind != kind || !shard.SameRequest(st.Request, req) {
			return nil, usagef("output %s holds the tasks of another split (%s, %d tasks); a task of %s %s with %d tasks cannot join them; write to a new output", name, st.Kind, st.Count, kind, name, task.Count)
		}
	case !isNoTasks(err):
		return nil, err
	}
	return tasks.IsDone(ctx, task, req)
}

// splitPlan deals the objects of jobs out to count tasks, balanced by size
// (shard.Balance on "dataset/path"), and returns each object's task and a
// digest of the plan: tasks that resolved the same objects have the same.
func splitPlan(jobs []transfer.Job, count int) (assign [][]int, digest string, total int) {
	var keys []string
	var sizes []int64
	for _, j := range jobs {
		for _, o := range j.Objects {
			keys = append(keys, j.Dataset+"/"+o.Path)
			sizes = append(sizes, o.EstimatedSize())
		}
	}
	flat := shard.Balance(keys, sizes, count)
	assign = make([][]int, len(jobs))
	k := 0
	for ji, j := range jobs {
		assign[ji] = flat[k : k+len(j.Objects)]
		k += len(j.Objects)
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return keys[order[a]] < keys[order[b]] })
	h := sha256.New()
	for _, i := range order {
		fmt.Fprintf(h, "%s\x00%d\n", keys[i], sizes[i])
	}
	return assign, hex.EncodeToString(h.Sum(nil))[:16], len(keys)
}

// runTask downloads this task's objects of a sharded run into their
// places in the output, with a journal of its own, then writes its done
// record. Reading, converting and the table are finalize's. A dataset
// that cannot be resolved fails the task: without it the task cannot know
// the same split as the others.
func runTask(ctx context.Context, m *manifest.Manifest, opt *Options, jobs []transfer.Job, rerrs []error, rep *Report, byName map[string]*DatasetReport) error {
	task := opt.Shard
	for i, err := range rerrs {
		if err != nil {
			return fmt.Errorf("run shard %s: dataset %s could not be resolved, so this task cannot compute the split all tasks share; run it again: %w", task, rep.Datasets[i].Name, err)
		}
	}
	req, err := json.Marshal(runRequest{Manifest: m, Only: opt.Only, Convert: opt.Convert, ConvertChunk: opt.ConvertChunk})
	if err != nil {
		return err
	}
	tasks := shard.Open(opt.OutDir)
	defer tasks.Close()
	done, err := joinTasks(ctx, tasks, opt.OutDir, task, kindRun, req)
	if err != nil {
		return err
	}
	assign, digest, total := splitPlan(jobs, task.Count)
	rep.Shard = &ShardReport{Task: task.String(), Total: total}
	if done != nil {
		rep.Shard.Objects, rep.Shard.Already = done.Units, true
		opt.logf("shard %s already done (%d of %d %s)", task, done.Units, done.Total, done.Unit)
		return nil
	}
	var own []transfer.Job
	var wrote []string
	for ji, j := range jobs {
		var objs []source.Object
		for oi, o := range j.Objects {
			if assign[ji][oi] == task.Index {
				objs = append(objs, o)
				wrote = append(wrote, j.Dataset+"/"+o.Path)
			}
		}
		if len(objs) > 0 {
			own = append(own, transfer.Job{Dataset: j.Dataset, Objects: objs})
		}
	}
	rep.Shard.Objects = len(wrote)
	rec := shard.Record{Kind: kindRun, Shard: task, Request: req, Unit: unitDownload, Units: len(wrote), Total: total, Plan: digest}
	if err := tasks.Begin(ctx, rec); err != nil {
		return err
	}
	if len(own) > 0 {
		topt := opt.Transfer
		topt.OutDir, topt.Locked, topt.Journal = opt.OutDir, true, taskJournal(task)
		noRetry := *opt.Env.Stores
		noRetry.Retry = 0 // the scheduler retries and must see 429s itself
		topt.Stores = &noRetry
		opt.logf("shard %s: downloading %d of %d objects", task, len(wrote), total)
		sum, err := transfer.Run(ctx, own, topt)
		if err != nil {
			return fmt.Errorf("transfer: %w", err)
		}
		failed := false
		for _, d := range sum.Datasets {
			for _, res := range d.Results {
				if res.Err != nil {
					failed = true
					dr := byName[res.Dataset]
					dr.Status = "failed"
					dr.Errors = append(dr.Errors, fmt.Sprintf("%s: %v", res.Path, res.Err))
				}
			}
		}
		if failed {
			// No done record: the task is run again, and resumes.
			return nil
		}
	}
	rec.Wrote = wrote
	return tasks.Done(ctx, rec)
}

// finalizeRun completes a sharded run once all its tasks are done: it
// folds their journals into the output's, then runs the rest of the run
// (every object found downloaded and verified by the journal): reading,
// crops, conversions, the table and the report, as one run does.
func finalizeRun(ctx context.Context, out string, st *shard.State, opt Options) (*FinalizeResult, error) {
	var req runRequest
	if err := json.Unmarshal(st.Request, &req); err != nil || req.Manifest == nil {
		return nil, fmt.Errorf("finalize %s: run request: %v", out, err)
	}
	var journals []string
	plan := ""
	for _, t := range st.Tasks {
		if plan == "" {
			plan = t.Record.Plan
		}
		if t.Record.Plan != plan {
			return nil, fmt.Errorf("finalize %s: shard %s resolved other objects than shard %s (the sources changed while the tasks ran); remove %s and run the tasks again", out, t.Shard, st.Tasks[0].Shard, filepath.Join(out, filepath.FromSlash(shard.Dir)))
		}
		journals = append(journals, taskJournal(t.Shard))
	}
	if err := transfer.MergeJournals(out, journals); err != nil {
		return nil, fmt.Errorf("finalize %s: %w", out, err)
	}
	opt.OutDir, opt.Only, opt.Convert, opt.ConvertChunk = out, req.Only, req.Convert, req.ConvertChunk
	opt.Shard, opt.locked = shard.Spec{}, true
	rep, err := Run(ctx, req.Manifest, opt)
	res := &FinalizeResult{Output: out, Kind: st.Kind, Tasks: st.Count, Unit: st.Unit, Units: st.Total, Report: rep}
	if err != nil {
		return res, err
	}
	// The records go last: a finalize killed before this point is simply
	// run again.
	if err := os.RemoveAll(filepath.Join(out, filepath.FromSlash(shard.Dir))); err != nil {
		return res, fmt.Errorf("finalize %s: %w", out, err)
	}
	return res, nil
}
