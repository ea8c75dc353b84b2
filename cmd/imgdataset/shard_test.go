package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/format/tiff"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/internal/shardtest"
	"github.com/imgdataset/imgdataset/shard"
	"github.com/imgdataset/imgdataset/store"
)

// cliProcess starts the command line args as a process of its own in dir,
// with env added to the environment.
func cliProcess(t *testing.T, dir string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%v: %s", args, out.String())
		}
	})
	return cmd
}

// gate is a loopback file server that holds the request for one key, once
// armed, until released: a task reading that key is stopped mid-task at a
// point the test knows, without timing.
type gate struct {
	key      string
	method   string // only requests of this method are held; "" any
	mu       sync.Mutex
	armed    bool
	reached  chan struct{}
	released chan struct{}
	files    http.Handler
}

// newGate serves root on loopback, holding the first request for key (of
// method, or any when "") once armed; the test's end releases it.
func newGate(t *testing.T, root, key, method string) (*gate, *httptest.Server) {
	g := &gate{key: key, method: method, reached: make(chan struct{}), released: make(chan struct{}), files: http.FileServer(http.Dir(root))}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		g.release()
		srv.Close()
	})
	return g, srv
}

// release lets a held request go on (once).
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.released:
	default:
		close(g.released)
	}
}

// killAtGate arms g, starts a process, waits until it makes the gated
// request (failing if it ends first), calls check, kills it with SIGKILL
// and releases the gate.
func killAtGate(t *testing.T, g *gate, start func() *exec.Cmd, check func()) {
	t.Helper()
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
	victim := start()
	exited := make(chan error, 1)
	go func() { exited <- victim.Wait() }()
	select {
	case <-g.reached:
	case err := <-exited:
		t.Fatalf("the task ended (%v) before it requested %s", err, g.key)
	}
	check()
	if err := victim.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	g.release()
}

// sameOutputs fails the test unless the trees want and got hold the same
// files with the same bytes (directories named in skip aside), and want at
// least least files.
func sameOutputs(t *testing.T, want, got string, least int, skip ...string) {
	t.Helper()
	n, diffs, err := shardtest.CompareTrees(want, got, skip...)
	if err != nil {
		t.Fatal(err)
	}
	if n < least {
		t.Fatalf("the single-process output %s holds only %d files", want, n)
	}
	for _, d := range diffs {
		t.Errorf("sharded output %s", d)
	}
}

// mkdirs makes the directories names under dir.
func mkdirs(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, d := range names {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	hold := g.armed && r.URL.Path == g.key && (g.method == "" || r.Method == g.method)
	if hold {
		g.armed = false
	}
	g.mu.Unlock()
	if hold {
		close(g.reached)
		select {
		case <-g.released:
		case <-r.Context().Done():
			return
		}
	}
	g.files.ServeHTTP(w, r)
}

// TestShardKilledTaskRerun runs a sharded conversion as 4 processes (two
// of them told who they are by a Slurm and a Kubernetes environment), kills
// one with SIGKILL while it is inside its region, checks that finalize
// refuses naming it, reruns it, finalizes, and compares with one process:
// the same files, byte for byte.
func TestShardKilledTaskRerun(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// The source: a Zarr v2 array over HTTP, 16³ chunks.
	m, err := shardtest.Volume([]int64{40, 160, 160}, [3]float64{40, 10, 10}, 2)
	if err != nil {
		t.Fatal(err)
	}
	srvDir := filepath.Join(dir, "srv")
	if err := zarr.WriteNGFF(ctx, store.New(store.NewFile(srvDir)), "src.zarr", m, zarr.WriteOptions{Chunks: []int64{16, 16, 16}}); err != nil {
		t.Fatal(err)
	}
	// Task 1 of 4 takes the region y 0:128, x 128:160 (64³ shards, 2
	// levels inside the tasks' 128-voxel regions); this source chunk is in
	// its middle.
	g, srv := newGate(t, srvDir, "/src.zarr/s0/1/4/9", "")
	src := srv.URL + "/src.zarr"
	const out = "v.ome.zarr"
	conv := []string{"convert", src, "-o", out, "--chunks", "16", "--levels", "4"}
	mkdirs(t, dir, "single", "split")
	if err := cliProcess(t, filepath.Join(dir, "single"), nil, conv...).Wait(); err != nil {
		t.Fatalf("single convert: %v", err)
	}

	split := filepath.Join(dir, "split")
	tasks := filepath.Join(split, out, ".imgdataset", "tasks")
	killAtGate(t, g, func() *exec.Cmd { return cliProcess(t, split, nil, append(conv, "--shard", "1/4")...) }, func() {
		if _, err := os.Stat(filepath.Join(tasks, "1-of-4.started.json")); err != nil {
			t.Fatalf("task 1/4 is reading its region but recorded no start: %v", err)
		}
	})
	if _, err := os.Stat(filepath.Join(tasks, "1-of-4.done.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the killed task left a done record (%v)", err)
	}

	others := []*exec.Cmd{
		cliProcess(t, split, nil, append(conv, "--shard", "0/4")...),
		cliProcess(t, split, []string{"JOB_COMPLETION_INDEX=2", "IMGDATASET_SHARDS=4"}, append(conv, "--shard", "auto")...),
		cliProcess(t, split, []string{"SLURM_ARRAY_TASK_ID=13", "SLURM_ARRAY_TASK_MIN=10", "SLURM_ARRAY_TASK_COUNT=4"}, append(conv, "--shard", "auto")...),
	}
	for i, c := range others {
		if err := c.Wait(); err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
	t.Chdir(split)
	code, stdout, _ := runCLI(t, "status", out)
	if code != 0 || !strings.Contains(stdout, "3/4 tasks") || !strings.Contains(stdout, "shard 1/4 started, not done") {
		t.Fatalf("status with task 1 killed: exit %d\n%s", code, stdout)
	}
	code, _, stderr := runCLI(t, "finalize", out)
	if code != 1 || !strings.Contains(stderr, "shard 1/4 not done") {
		t.Fatalf("finalize with task 1 killed: exit %d, %s", code, stderr)
	}
	if err := cliProcess(t, split, nil, append(conv, "--shard", "1/4")...).Wait(); err != nil {
		t.Fatalf("rerun of task 1/4: %v", err)
	}
	if code, _, stderr := runCLI(t, "finalize", out); code != 0 {
		t.Fatalf("finalize: exit %d, %s", code, stderr)
	}
	sameOutputs(t, filepath.Join(dir, "single", out), filepath.Join(split, out), 10)
}

// TestShardUsageErrors checks that a --shard the command line or the
// environment cannot carry out exits 2 with the reason, before anything is
// read or written.
func TestShardUsageErrors(t *testing.T) {
	// Hermetic even inside an engine's own job: no engine variable is set.
	for _, v := range []string{"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX", "BATCH_TASK_INDEX", "BATCH_TASK_COUNT", "IMGDATASET_SHARDS"} {
		t.Setenv(v, "")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "absent.tif")
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"auto without an engine", nil, []string{"convert", src, "-o", filepath.Join(dir, "a.zarr"), "--shard", "auto"}, "no engine's task index is set"},
		{"index past count", nil, []string{"convert", src, "-o", filepath.Join(dir, "a.zarr"), "--shard", "4/4"}, "not in 0..3"},
		{"not I/N", nil, []string{"crop", src, "--size", "1,1,1", "--origin", "0,0,0", "-o", filepath.Join(dir, "a.zarr"), "--shard", "half"}, "want I/N"},
		{"a TIFF output", nil, []string{"convert", src, "-o", filepath.Join(dir, "a.tif"), "--shard", "0/2"}, "a TIFF cannot be split"},
		{"kubernetes without a count", map[string]string{"JOB_COMPLETION_INDEX": "1"}, []string{"convert", src, "-o", filepath.Join(dir, "a.zarr"), "--shard", "auto"}, "give --shards N or set IMGDATASET_SHARDS"},
		{"aws index past --shards", map[string]string{"AWS_BATCH_JOB_ARRAY_INDEX": "3"}, []string{"run", src, "--out", filepath.Join(dir, "out"), "--shard", "auto", "--shards", "3"}, "not in 0..2"},
		{"google count contradicts --shards", map[string]string{"BATCH_TASK_INDEX": "0", "BATCH_TASK_COUNT": "2"}, []string{"run", src, "--out", filepath.Join(dir, "out"), "--shard", "auto", "--shards", "3"}, "--shards 3 but BATCH_TASK_COUNT=2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			code, _, stderr := runCLI(t, c.args...)
			if code != exitUsage || !strings.Contains(stderr, c.want) {
				t.Errorf("%v: exit %d, %q; want exit 2 saying %q", c.args, code, stderr, c.want)
			}
			if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
				t.Errorf("%v: refused, but the directory holds %d entries (%v)", c.args, len(ents), err)
			}
		})
	}
}

// TestShardRunKilledTaskRerun runs 'run --shard I/3' as three processes
// against a loopback file listing, kills one with SIGKILL while it
// downloads one of its objects, checks that finalize refuses naming it,
// reruns it (it resumes from its journal), finalizes, and compares with one
// 'run': the same files with the same bytes, tables included.
func TestShardRunKilledTaskRerun(t *testing.T) {
	dir := t.TempDir()
	srvDir := filepath.Join(dir, "srv", "ds")
	if err := os.MkdirAll(srvDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Objects of different sizes, and a volume the run reads and converts.
	var keys []string
	var sizes []int64
	for i := 1; i <= 6; i++ {
		b := make([]byte, i*150000)
		for k := range b {
			b[k] = byte(k*i*7 + k>>9)
		}
		name := fmt.Sprintf("f%d.bin", i)
		if err := os.WriteFile(filepath.Join(srvDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		keys, sizes = append(keys, "ds/"+name), append(sizes, int64(len(b)))
	}
	m, err := shardtest.Volume([]int64{20, 64, 64}, [3]float64{30, 5, 5}, 3)
	if err != nil {
		t.Fatal(err)
	}
	w, err := store.New(store.NewFile(srvDir)).NewWriter(context.Background(), "v.tif")
	if err != nil {
		t.Fatal(err)
	}
	var topt tiff.WriteOptions
	topt.Calibrate(m.Info())
	if err := tiff.Write(context.Background(), w, m, topt); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(srvDir, "v.tif"))
	if err != nil {
		t.Fatal(err)
	}
	keys, sizes = append(keys, "ds/v.tif"), append(sizes, fi.Size())
	// Gate an object of task 1's share (the split every task computes).
	gated := ""
	for i, task := range shard.Balance(keys, sizes, 3) {
		if task == 1 {
			gated = "/" + keys[i]
			break
		}
	}
	g, srv := newGate(t, filepath.Join(dir, "srv"), gated, http.MethodGet)
	run := []string{"run", srv.URL + "/ds/", "--out", "out", "--progress", "none"}
	mkdirs(t, dir, "single", "split")
	if err := cliProcess(t, filepath.Join(dir, "single"), nil, run...).Wait(); err != nil {
		t.Fatalf("one run: %v", err)
	}

	split := filepath.Join(dir, "split")
	killAtGate(t, g, func() *exec.Cmd { return cliProcess(t, split, nil, append(run, "--shard", "1/3")...) }, func() {})
	for _, i := range []string{"0/3", "2/3"} {
		if err := cliProcess(t, split, nil, append(run, "--shard", i)...).Wait(); err != nil {
			t.Fatalf("task %s: %v", i, err)
		}
	}
	t.Chdir(split)
	code, stdout, _ := runCLI(t, "status", "out")
	if code != 0 || !strings.Contains(stdout, "download objects done (2/3 tasks)") || !strings.Contains(stdout, "shard 1/3 started, not done") {
		t.Fatalf("status with task 1 killed: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := runCLI(t, "finalize", "out"); code != 1 || !strings.Contains(stderr, "shard 1/3 not done") {
		t.Fatalf("finalize with task 1 killed: exit %d, %s", code, stderr)
	}
	if err := cliProcess(t, split, nil, append(run, "--shard", "1/3")...).Wait(); err != nil {
		t.Fatalf("rerun of task 1/3: %v", err)
	}
	if code, _, stderr := runCLI(t, "finalize", "out"); code != 0 {
		t.Fatalf("finalize: exit %d, %s", code, stderr)
	}
	// The state folders (journals, part files, locks) differ by how the
	// work was split.
	sameOutputs(t, filepath.Join(dir, "single", "out"), filepath.Join(split, "out"), 10, ".imgdataset")
	if _, err := os.Stat(filepath.Join(split, "out", "metadata_table.csv")); err != nil {
		t.Errorf("finalize wrote no table: %v", err)
	}
}
