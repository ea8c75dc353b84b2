package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// cliArgsEnv makes the test binary run the command line it holds (JSON)
// instead of the tests, so that tests can start real imgdataset processes
// and kill them.
const cliArgsEnv = "IMGDATASET_TEST_CLI_ARGS"

func TestMain(m *testing.M) {
	if a := os.Getenv(cliArgsEnv); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(3)
		}
		os.Exit(run(context.Background(), args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// cliProcess starts the command line args as a process of its own in dir,
// with env added to the environment.
func cliProcess(t *testing.T, dir string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	a, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), cliArgsEnv+"="+string(a)), env...)
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

// treeDigest maps every file under dir to the sha256 of its bytes.
func treeDigest(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// gate is a loopback file server that holds the request for one key, once
// armed, until released: a task reading that key is stopped mid-task at a
// point the test knows, without timing.
type gate struct {
	key      string
	mu       sync.Mutex
	armed    bool
	reached  chan struct{}
	released chan struct{}
	files    http.Handler
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	hold := g.armed && r.URL.Path == g.key
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
	in := volume.Info{Name: "v", Shape: []int64{40, 160, 160}, DType: volume.Uint16}
	for i, n := range []string{"z", "y", "x"} {
		in.Axes = append(in.Axes, volume.Axis{Name: n, Size: in.Shape[i], Scale: []float64{40, 10, 10}[i], Unit: "nm", ScaleKnown: true})
	}
	data := make([]byte, in.NumBytes())
	for i := 0; i < len(data); i += 2 {
		v := uint16(i/2*2246822519>>9) % 3000
		data[i], data[i+1] = byte(v), byte(v>>8)
	}
	m, err := volume.NewMem(in, data)
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
	g := &gate{key: "/src.zarr/s0/1/4/9", reached: make(chan struct{}), released: make(chan struct{}), files: http.FileServer(http.Dir(srvDir))}
	srv := httptest.NewServer(g)
	defer srv.Close()
	defer func() {
		select {
		case <-g.released:
		default:
			close(g.released)
		}
	}()
	src := srv.URL + "/src.zarr"
	const out = "v.ome.zarr"
	conv := []string{"convert", src, "-o", out, "--chunks", "16", "--levels", "4"}
	for _, d := range []string{"single", "split"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	single := cliProcess(t, filepath.Join(dir, "single"), nil, conv...)
	if err := single.Wait(); err != nil {
		t.Fatalf("single convert: %v", err)
	}

	split := filepath.Join(dir, "split")
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
	victim := cliProcess(t, split, nil, append(conv, "--shard", "1/4")...)
	exited := make(chan error, 1)
	go func() { exited <- victim.Wait() }()
	select {
	case <-g.reached:
	case err := <-exited:
		t.Fatalf("task 1/4 ended (%v) before it read the gated chunk", err)
	}
	tasks := filepath.Join(split, out, ".imgdataset", "tasks")
	if _, err := os.Stat(filepath.Join(tasks, "1-of-4.started.json")); err != nil {
		t.Fatalf("task 1/4 is reading its region but recorded no start: %v", err)
	}
	if err := victim.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	close(g.released)
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
	want, got := treeDigest(t, filepath.Join(dir, "single", out)), treeDigest(t, filepath.Join(split, out))
	if len(want) < 10 {
		t.Fatalf("the single-process output holds only %d files", len(want))
	}
	for k, h := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: missing from the sharded output", k)
		} else if g != h {
			t.Errorf("%s: differs from the single-process file", k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: only in the sharded output", k)
		}
	}
}
