package demo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/internal/shardtest"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/shard"
)

// TestShardedRunEqualsRun runs the demo's datasets as 3 tasks of a sharded
// run and finalize, against the same mirrors as one run, and checks that
// finalize refuses while a task is missing, that the tasks split the
// downloads between them, and that the outputs are the same files with the
// same bytes (the tables' rows included).
func TestShardedRunEqualsRun(t *testing.T) {
	ctx := context.Background()
	opt := pipeline.Options{Convert: true}
	m, stop, err := Start(ctx, &opt)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// The same --out in two directories: report.html's title names it.
	const out = "out"
	singleDir, splitDir := t.TempDir(), t.TempDir()
	single, split := filepath.Join(singleDir, out), filepath.Join(splitDir, out)

	t.Chdir(singleDir)
	one := opt
	one.OutDir = out
	rep, err := pipeline.Run(ctx, m, one)
	if err != nil || rep.Failed() {
		t.Fatalf("one run: %v, %+v", err, rep)
	}

	t.Chdir(splitDir)
	objects := 0
	for i := range 3 {
		task := opt
		task.OutDir, task.Shard = out, shard.Spec{Index: i, Count: 3}
		rep, err := pipeline.Run(ctx, m, task)
		if err != nil || rep.Failed() || rep.Shard == nil {
			t.Fatalf("task %d/3: %v, %+v", i, err, rep)
		}
		if rep.Shard.Objects == 0 || rep.Shard.Objects == rep.Shard.Total {
			t.Errorf("task %d/3 downloads %d of %d objects; want a share", i, rep.Shard.Objects, rep.Shard.Total)
		}
		objects += rep.Shard.Objects
		if i == 1 {
			_, err := pipeline.Finalize(ctx, out, pipeline.Options{})
			if err == nil || !strings.Contains(err.Error(), "shard 2/3 not done") || strings.Contains(err.Error(), "shard 0/3") {
				t.Fatalf("finalize with task 2 missing: %v", err)
			}
			if _, err := os.Stat(filepath.Join(split, "catalog.json")); err == nil {
				t.Fatal("a refused finalize wrote catalog.json")
			}
		}
	}
	st, err := pipeline.Status(ctx, out)
	if err != nil || len(st.Kinds) != 1 || st.Kinds[0].Done != objects || st.Kinds[0].Total != objects {
		t.Fatalf("status = %+v, %v; want %d download objects done", st, err, objects)
	}
	fopt := opt
	fopt.Log = nil
	res, err := pipeline.Finalize(ctx, out, fopt)
	if err != nil || res.Report == nil || res.Report.Failed() {
		t.Fatalf("finalize: %v, %+v", err, res)
	}
	if len(res.Report.Records) != len(rep.Records) {
		t.Errorf("finalize cataloged %d arrays, one run %d", len(res.Report.Records), len(rep.Records))
	}

	// The state folders (journals, part files, locks) differ by how the
	// work was split.
	n, diffs, err := shardtest.CompareTrees(single, split, ".imgdataset")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(single, "metadata_table.csv")); err != nil || n < 10 {
		t.Fatalf("one run wrote %d files, no table (%v)", n, err)
	}
	for _, d := range diffs {
		t.Errorf("sharded run: %s", d)
	}
}
