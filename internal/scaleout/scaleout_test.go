package scaleout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/imgdataset/imgdataset/format/tiff"
	"github.com/imgdataset/imgdataset/internal/shardtest"
)

// engineVars are the variables --shard auto reads, by engine, as
// docs/scale-out.md documents them; every run below sets exactly these, so
// an implementation that reads others fails here.
func engineVars() []string {
	return []string{
		"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT",
		"JOB_COMPLETION_INDEX", "IMGDATASET_SHARDS",
		"AWS_BATCH_JOB_ARRAY_INDEX",
		"BATCH_TASK_INDEX", "BATCH_TASK_COUNT",
	}
}

// convertArgs are the conversion options of every run: 16³ chunks make the
// small test volume span several chunk × 2^(levels−1) regions, so each of
// 4 tasks has regions of its own.
func convertArgs() []string { return []string{"--levels", "4", "--chunks", "16"} }

// docFile is a ready file of docs/scale-out.md: the fenced block after a
// "<!-- file: NAME -->" line.
type docFile struct {
	lang, text string
}

// docFiles reads the ready files of docs/scale-out.md.
func docFiles(t *testing.T) map[string]docFile {
	t.Helper()
	path := filepath.Join(repoRoot(t), "docs", "scale-out.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]docFile{}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		name, ok := strings.CutPrefix(strings.TrimSpace(lines[i]), "<!-- file: ")
		if !ok {
			continue
		}
		name = strings.TrimSpace(strings.TrimSuffix(name, "-->"))
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("%s:%d: file %q is not followed by a fenced block", path, i+1, name)
		}
		lang := strings.TrimPrefix(lines[i+1], "```")
		var body []string
		j := i + 2
		for ; j < len(lines) && !strings.HasPrefix(lines[j], "```"); j++ {
			body = append(body, lines[j])
		}
		if j == len(lines) {
			t.Fatalf("%s:%d: file %q: fenced block not closed", path, i+1, name)
		}
		if _, dup := files[name]; dup {
			t.Fatalf("%s:%d: file %q twice", path, i+1, name)
		}
		files[name] = docFile{lang: lang, text: strings.Join(body, "\n") + "\n"}
		i = j
	}
	return files
}

func docFileNamed(t *testing.T, name string) docFile {
	t.Helper()
	f, ok := docFiles(t)[name]
	if !ok {
		t.Fatalf("docs/scale-out.md has no ready file %q", name)
	}
	return f
}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// buildBinary builds cmd/imgdataset into a directory of its own, which the
// runs put first on PATH: the ready files call "imgdataset".
func buildBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "imgdataset"), "./cmd/imgdataset")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Without sharding there is nothing to run; the check names what is
	// missing instead of failing on an unknown flag.
	h, err := exec.Command(filepath.Join(dir, "imgdataset"), "convert", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(h), "--shard") {
		t.Skipf("imgdataset convert has no --shard flag (the shard branch is not merged here; %v)", err)
	}
	if h, err := exec.Command(filepath.Join(dir, "imgdataset"), "finalize", "--help").CombinedOutput(); err != nil {
		t.Skipf("imgdataset has no finalize command (the shard branch is not merged here): %v: %s", err, firstLine(h))
	}
	return dir
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// writeStack writes a calibrated uint16 TIFF stack (shardtest.Volume: a
// chunk in the wrong place changes the bytes) whose shape is not a multiple
// of the chunk on any axis, so edge chunks and short levels are exercised.
func writeStack(t *testing.T, path string) {
	t.Helper()
	v, err := shardtest.Volume([]int64{150, 200, 180}, [3]float64{30, 8, 8}, 16)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	opt := tiff.WriteOptions{ImageJ: true, Unit: "nm", PixelWidth: 8, PixelHeight: 8, Spacing: 30}
	if err := tiff.Write(context.Background(), f, v, opt); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// cleanEnv is this process's environment without any engine's variables
// (the test itself may run inside a Slurm job), with bin first on PATH,
// plus extra.
func cleanEnv(bin string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(engineVars(), k) || strings.HasPrefix(k, "SLURM_") || k == "PATH" {
			continue
		}
		env = append(env, kv)
	}
	path := os.Getenv("PATH")
	if bin != "" {
		path = bin + string(os.PathListSeparator) + path
	}
	env = append(env, "PATH="+path)
	return append(env, extra...)
}

// run runs argv (argv[0] looked up on env's PATH) in dir and fails the test
// with its output when it fails.
func run(t *testing.T, dir string, env []string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	name := argv[0]
	if !strings.Contains(name, "/") {
		for _, kv := range env {
			if p, ok := strings.CutPrefix(kv, "PATH="); ok {
				for _, d := range filepath.SplitList(p) {
					if fi, err := os.Stat(filepath.Join(d, name)); err == nil && !fi.IsDir() {
						name = filepath.Join(d, name)
						break
					}
				}
			}
		}
	}
	cmd := exec.CommandContext(ctx, name, argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// reference converts in as one process (the same input path, so the source
// recorded in the attributes is the same) into a directory of its own.
func reference(t *testing.T, bin, in, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	run(t, filepath.Dir(in), cleanEnv(bin), append([]string{"imgdataset", "convert", in, "-o", out}, convertArgs()...)...)
	return out
}

// sameTree fails unless got holds exactly the files of want, byte for byte.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	n, diff, err := shardtest.CompareTrees(want, got)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("reference %s has no files", want)
	}
	for _, d := range diff {
		t.Errorf("%s (against the single-process conversion)", d)
	}
	t.Logf("%d files compared with the single-process conversion", n)
}

// tasksDone fails unless imgdataset status says all n tasks of out are done
// and there were at least n regions, so every task had work of its own (a
// task that took N from the wrong place would make other records).
func tasksDone(t *testing.T, bin, dir, out string, n int) {
	t.Helper()
	var st struct {
		Kinds []struct {
			Unit       string `json:"unit"`
			Done       int    `json:"done"`
			Total      int    `json:"total"`
			TasksDone  int    `json:"tasks_done"`
			TasksTotal int    `json:"tasks_total"`
		} `json:"kinds"`
	}
	js := run(t, dir, cleanEnv(bin), "imgdataset", "status", "--json", out)
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("status --json %s: %v\n%s", out, err, js)
	}
	if len(st.Kinds) != 1 {
		t.Fatalf("status %s: %d kinds of work, want 1:\n%s", out, len(st.Kinds), js)
	}
	k := st.Kinds[0]
	if k.TasksTotal != n || k.TasksDone != n || k.Done != k.Total || k.Total < n {
		t.Fatalf("status %s: %d/%d tasks, %d/%d %s; want %d/%d tasks, every unit done, at least one each:\n%s",
			out, k.TasksDone, k.TasksTotal, k.Done, k.Total, k.Unit, n, n, js)
	}
}

// TestDocumentNamesEveryEngineVariable fails when docs/scale-out.md stops
// documenting a variable --shard auto reads (the runs below set only
// documented ones) or a ready file goes missing.
func TestDocumentNamesEveryEngineVariable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "scale-out.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range engineVars() {
		if !bytes.Contains(b, []byte("`"+v+"`")) {
			t.Errorf("docs/scale-out.md does not name %s", v)
		}
	}
	files := docFiles(t)
	for _, name := range []string{"imgdataset-convert.sbatch", "imgdataset-convert-k8s.yaml", "imgdataset-aws-jobdef.json",
		"imgdataset-aws-submit.json", "imgdataset-google-batch.json", "parallel.sh", "xargs.sh"} {
		if _, ok := files[name]; !ok {
			t.Errorf("docs/scale-out.md has no ready file %q", name)
		}
	}
}

// engineJob is a ready file reduced to what an engine does with it: start
// argv n times, task i with env plus index(i).
type engineJob struct {
	argv  []string
	env   []string
	n     int
	mount string // the shared filesystem's path in the file
	index func(i int) []string
}

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		AccessModes    []string `yaml:"accessModes"`
		CompletionMode string   `yaml:"completionMode"`
		Completions    int      `yaml:"completions"`
		Template       struct {
			Spec struct {
				Containers []struct {
					Command []string `yaml:"command"`
					Env     []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name string `yaml:"name"`
					PVC  *struct {
						ClaimName string `yaml:"claimName"`
					} `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// k8sJob reads the Indexed Job: Kubernetes sets JOB_COMPLETION_INDEX in
// each of completions pods; the file must give IMGDATASET_SHARDS equal to
// completions and mount a ReadWriteMany claim it defines.
func k8sJob(t *testing.T, text string) engineJob {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(text))
	claims := map[string]bool{}
	var job *k8sObject
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("imgdataset-convert-k8s.yaml: %v", err)
		}
		switch o.Kind {
		case "PersistentVolumeClaim":
			if !slices.Contains(o.Spec.AccessModes, "ReadWriteMany") {
				t.Errorf("k8s: claim %q is not ReadWriteMany: the pods share it", o.Metadata.Name)
			}
			claims[o.Metadata.Name] = true
		case "Job":
			job = &o
		default:
			t.Errorf("k8s: unexpected kind %q", o.Kind)
		}
	}
	if job == nil {
		t.Fatal("k8s: no Job")
	}
	if job.Spec.CompletionMode != "Indexed" || job.Spec.Completions < 2 {
		t.Fatalf("k8s: completionMode %q, completions %d: want an Indexed Job of several pods", job.Spec.CompletionMode, job.Spec.Completions)
	}
	ps := job.Spec.Template.Spec
	if len(ps.Containers) != 1 || len(ps.Containers[0].VolumeMounts) != 1 || len(ps.Volumes) != 1 {
		t.Fatalf("k8s: want one container with one volume mount")
	}
	c := ps.Containers[0]
	if v := ps.Volumes[0]; v.PVC == nil || !claims[v.PVC.ClaimName] || v.Name != c.VolumeMounts[0].Name {
		t.Fatalf("k8s: the volume is not the ReadWriteMany claim the file defines")
	}
	j := engineJob{argv: c.Command, n: job.Spec.Completions, mount: c.VolumeMounts[0].MountPath,
		index: func(i int) []string { return []string{"JOB_COMPLETION_INDEX=" + strconv.Itoa(i)} }}
	for _, e := range c.Env {
		j.env = append(j.env, e.Name+"="+e.Value)
	}
	if !slices.Contains(j.env, "IMGDATASET_SHARDS="+strconv.Itoa(j.n)) {
		t.Fatalf("k8s: env %v: want IMGDATASET_SHARDS=%d (= completions)", j.env, j.n)
	}
	return j
}

type nameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// awsJob reads the job definition and the submit-job request: Batch starts
// arrayProperties.size children with AWS_BATCH_JOB_ARRAY_INDEX, the
// definition's command and the override's environment.
func awsJob(t *testing.T, def, submit string) engineJob {
	t.Helper()
	var d struct {
		JobDefinitionName   string `json:"jobDefinitionName"`
		ContainerProperties struct {
			Command []string `json:"command"`
			Volumes []struct {
				Name string          `json:"name"`
				EFS  json.RawMessage `json:"efsVolumeConfiguration"`
			} `json:"volumes"`
			MountPoints []struct {
				SourceVolume  string `json:"sourceVolume"`
				ContainerPath string `json:"containerPath"`
			} `json:"mountPoints"`
		} `json:"containerProperties"`
	}
	var s struct {
		JobDefinition   string `json:"jobDefinition"`
		ArrayProperties struct {
			Size int `json:"size"`
		} `json:"arrayProperties"`
		ContainerOverrides struct {
			Environment []nameValue `json:"environment"`
		} `json:"containerOverrides"`
	}
	decodeJSON(t, "imgdataset-aws-jobdef.json", def, &d)
	decodeJSON(t, "imgdataset-aws-submit.json", submit, &s)
	cp := d.ContainerProperties
	if s.JobDefinition != d.JobDefinitionName {
		t.Fatalf("aws: submit names job definition %q, the definition is %q", s.JobDefinition, d.JobDefinitionName)
	}
	if len(cp.Volumes) != 1 || cp.Volumes[0].EFS == nil || len(cp.MountPoints) != 1 || cp.MountPoints[0].SourceVolume != cp.Volumes[0].Name {
		t.Fatalf("aws: want one EFS volume mounted once")
	}
	j := engineJob{argv: cp.Command, n: s.ArrayProperties.Size, mount: cp.MountPoints[0].ContainerPath,
		index: func(i int) []string { return []string{"AWS_BATCH_JOB_ARRAY_INDEX=" + strconv.Itoa(i)} }}
	for _, e := range s.ContainerOverrides.Environment {
		j.env = append(j.env, e.Name+"="+e.Value)
	}
	if j.n < 2 || !slices.Contains(j.env, "IMGDATASET_SHARDS="+strconv.Itoa(j.n)) {
		t.Fatalf("aws: array size %d, env %v: want IMGDATASET_SHARDS equal to the array size", j.n, j.env)
	}
	return j
}

// googleJob reads the Batch job: taskCount tasks with BATCH_TASK_INDEX and
// BATCH_TASK_COUNT, the container's entrypoint and commands.
func googleJob(t *testing.T, text string) engineJob {
	t.Helper()
	var g struct {
		TaskGroups []struct {
			TaskCount int `json:"taskCount"`
			TaskSpec  struct {
				Runnables []struct {
					Container struct {
						Entrypoint string   `json:"entrypoint"`
						Commands   []string `json:"commands"`
					} `json:"container"`
				} `json:"runnables"`
				Volumes []struct {
					NFS       json.RawMessage `json:"nfs"`
					MountPath string          `json:"mountPath"`
				} `json:"volumes"`
			} `json:"taskSpec"`
		} `json:"taskGroups"`
	}
	decodeJSON(t, "imgdataset-google-batch.json", text, &g)
	if len(g.TaskGroups) != 1 || len(g.TaskGroups[0].TaskSpec.Runnables) != 1 || len(g.TaskGroups[0].TaskSpec.Volumes) != 1 {
		t.Fatal("google: want one task group with one runnable and one volume")
	}
	tg := g.TaskGroups[0]
	c := tg.TaskSpec.Runnables[0].Container
	if tg.TaskSpec.Volumes[0].NFS == nil {
		t.Fatal("google: the volume is not NFS (a shared filesystem)")
	}
	n := tg.TaskCount
	return engineJob{argv: append([]string{c.Entrypoint}, c.Commands...), n: n, mount: tg.TaskSpec.Volumes[0].MountPath,
		index: func(i int) []string {
			return []string{"BATCH_TASK_INDEX=" + strconv.Itoa(i), "BATCH_TASK_COUNT=" + strconv.Itoa(n)}
		}}
}

// decodeJSON decodes a ready file, naming it; fields the struct lacks are
// allowed (the files carry engine settings the test does not use).
func decodeJSON(t *testing.T, name, text string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(text), v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// engineJobs reads the Kubernetes, AWS Batch and Google Batch files into
// what their engines would run.
func engineJobs(t *testing.T) map[string]engineJob {
	t.Helper()
	files := docFiles(t)
	get := func(name string) string {
		f, ok := files[name]
		if !ok {
			t.Fatalf("docs/scale-out.md has no ready file %q", name)
		}
		return f.text
	}
	jobs := map[string]engineJob{
		"kubernetes":   k8sJob(t, get("imgdataset-convert-k8s.yaml")),
		"aws-batch":    awsJob(t, get("imgdataset-aws-jobdef.json"), get("imgdataset-aws-submit.json")),
		"google-batch": googleJob(t, get("imgdataset-google-batch.json")),
	}
	for name, j := range jobs {
		a := j.argv
		if len(a) < 3 || a[0] != "imgdataset" || a[1] != "convert" || !slices.Contains(a, "auto") {
			t.Fatalf("%s: command %q: want imgdataset convert IN … --shard auto", name, a)
		}
	}
	return jobs
}

// TestEngineFilesParse checks the Kubernetes, AWS Batch and Google Batch
// files where no engine runs them: they parse, agree with themselves (task
// count and IMGDATASET_SHARDS, volume and mount) and run convert --shard auto.
func TestEngineFilesParse(t *testing.T) {
	for name, j := range engineJobs(t) {
		t.Logf("%s: %d tasks of %q, shared volume at %s, env %v", name, j.n, j.argv, j.mount, j.env)
	}
}

// runEngineJob runs a file the way its engine would: the file's command n
// times, each with the index variables the engine sets and the file's
// environment, on a directory standing in for the shared volume; then
// finalize, and the output must be the single-process conversion's, file
// for file.
func runEngineJob(t *testing.T, bin string, job engineJob) {
	shared := t.TempDir()
	// The file's paths under the mount, moved under shared.
	argv := make([]string, len(job.argv))
	var out string
	for k, a := range job.argv {
		argv[k] = a
		if rest, ok := strings.CutPrefix(a, job.mount+"/"); ok {
			argv[k] = filepath.Join(shared, rest)
		}
		if k > 0 && job.argv[k-1] == "-o" {
			out = argv[k]
		}
	}
	in := argv[2]
	if !strings.HasPrefix(in, shared) || !strings.HasPrefix(out, shared) {
		t.Fatalf("command %q: want input and -o output on the shared volume %s", job.argv, job.mount)
	}
	writeStack(t, in)
	// The file's own conversion options stand; the chunk edge is made
	// small so that the test volume has work for every task.
	argv = append(argv, "--chunks", "16")
	for k := range job.n {
		got := run(t, shared, cleanEnv(bin, append(slices.Clone(job.env), job.index(k)...)...), argv...)
		if want := fmt.Sprintf("shard %d/%d", k, job.n); !strings.Contains(got, want) {
			t.Fatalf("task %d did not run as %s:\n%s", k, want, got)
		}
	}
	tasksDone(t, bin, shared, out, job.n)
	run(t, shared, cleanEnv(bin), "imgdataset", "finalize", out)
	sameTree(t, reference(t, bin, in, filepath.Base(out)), out)
}

// TestReadyFilesRun runs every ready file of docs/scale-out.md with the
// binary built once: the sbatch array on a real Slurm, the engine files
// with their engines' environment, and the GNU parallel and xargs lines.
func TestReadyFilesRun(t *testing.T) {
	root := repoRoot(t)
	jobs := engineJobs(t)
	bin := buildBinary(t)
	t.Run("slurm", func(t *testing.T) { runSlurmArray(t, root, bin) })
	for _, name := range []string{"kubernetes", "aws-batch", "google-batch"} {
		t.Run(name, func(t *testing.T) { runEngineJob(t, bin, jobs[name]) })
	}
	for _, name := range []string{"parallel.sh", "xargs.sh"} {
		t.Run(name, func(t *testing.T) { runLocalLine(t, bin, name) })
	}
}

// runLocalLine runs the GNU parallel or xargs line of the document in a
// directory holding stack.tif.
func runLocalLine(t *testing.T, bin, name string) {
	line := strings.TrimSpace(docFileNamed(t, name).text)
	tool := "parallel"
	if name == "xargs.sh" {
		tool = "xargs"
	}
	if !strings.Contains(line, tool+" ") {
		t.Fatalf("%s: %q does not run %s", name, line, tool)
	}
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s is not installed (Debian package parallel; scripts/test installs it): %v", tool, err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "stack.tif")
	writeStack(t, in)
	// The document's line with the test's small chunks, so 4 tasks
	// have work; everything else as written.
	cmdline := strings.ReplaceAll(line, "--levels 4", "--levels 4 --chunks 16")
	if cmdline == line {
		t.Fatalf("%s: %q has no --levels 4", name, line)
	}
	run(t, dir, cleanEnv(bin), "bash", "-euo", "pipefail", "-c", cmdline)
	// The line converts the relative name stack.tif; so does the reference.
	ref := filepath.Join(t.TempDir(), "stack.ome.zarr")
	run(t, dir, cleanEnv(bin), append([]string{"imgdataset", "convert", "stack.tif", "-o", ref}, convertArgs()...)...)
	sameTree(t, ref, filepath.Join(dir, "stack.ome.zarr"))
}

// slurmUp starts the single-node cluster of scripts/slurm-up, or skips
// saying why it cannot; the cluster is stopped at the end unless it was
// already running.
func slurmUp(t *testing.T, root string) []string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: scripts/slurm-up starts munged, slurmctld and slurmd")
	}
	for _, c := range []string{"munged", "slurmctld", "slurmd", "sbatch", "sinfo"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s not found (Debian packages slurm-wlm and munge; scripts/test installs them)", c)
		}
	}
	dir := os.Getenv("IMGDATASET_SLURM_DIR")
	if dir == "" {
		dir = "/var/lib/imgdataset-slurm"
	}
	conf := filepath.Join(dir, "slurm.conf")
	env := append(cleanEnv(""), "SLURM_CONF="+conf)
	wasUp := exec.Command("sinfo", "-h").Run() == nil && fileExists(filepath.Join(dir, "slurmctld.pid"))
	cmd := exec.Command(filepath.Join(root, "scripts", "slurm-up"))
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		// slurm-up prints the daemons' log tails when they do not start.
		t.Skipf("single-node Slurm cannot start here: %v\n%s", err, out)
	}
	if !wasUp {
		t.Cleanup(func() {
			cmd := exec.Command(filepath.Join(root, "scripts", "slurm-down"))
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("scripts/slurm-down: %v\n%s", err, out)
			}
		})
	}
	return []string{"SLURM_CONF=" + conf}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// runSlurmArray submits the document's sbatch file as a 4-task array on a
// real single-node Slurm, waits for it, runs finalize and compares every
// output file with a single-process conversion.
func runSlurmArray(t *testing.T, root, bin string) {
	script := docFileNamed(t, "imgdataset-convert.sbatch")
	if !strings.HasPrefix(script.text, "#!/bin/bash\n") || !strings.Contains(script.text, "--shard auto") {
		t.Fatalf("imgdataset-convert.sbatch: want a bash script running convert --shard auto:\n%s", script.text)
	}
	slurmEnv := slurmUp(t, root)
	// Slurm runs the tasks as this user on this host; the temporary
	// directory stands in for the shared filesystem.
	dir := t.TempDir()
	sb := filepath.Join(dir, "imgdataset-convert.sbatch")
	if err := os.WriteFile(sb, []byte(script.text), 0o755); err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "stack.tif"), filepath.Join(dir, "stack.ome.zarr")
	writeStack(t, in)
	env := cleanEnv(bin, slurmEnv...)
	args := append([]string{"sbatch", "--array=0-3", "--wait", "--output=" + filepath.Join(dir, "task-%a.log"), sb, in, out}, convertArgs()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sbatch", args[1:]...)
	cmd.Dir, cmd.Env = dir, env
	sbOut, err := cmd.CombinedOutput()
	logs := taskLogs(dir)
	if err != nil {
		t.Fatalf("sbatch %v: %v\n%s\n%s", args[1:], err, sbOut, logs)
	}
	t.Logf("%s", sbOut)
	// Each task's log says which shard it ran, so the array really split the
	// work instead of one task doing everything.
	for i := range 4 {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("task-%d.log", i)))
		if want := fmt.Sprintf("shard %d/4", i); err != nil || !bytes.Contains(b, []byte(want)) {
			t.Errorf("array task %d did not run as %s (%v)\n%s", i, want, err, logs)
		}
	}
	tasksDone(t, bin, dir, out, 4)
	run(t, dir, env, "imgdataset", "finalize", out)
	ref := reference(t, bin, in, "stack.ome.zarr")
	sameTree(t, ref, out)
}

// taskLogs is every task log of dir, for a failure message.
func taskLogs(dir string) string {
	var b strings.Builder
	ms, _ := filepath.Glob(filepath.Join(dir, "task-*.log"))
	for _, m := range ms {
		f, err := os.Open(m)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "--- %s\n", filepath.Base(m))
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fmt.Fprintln(&b, sc.Text())
		}
		f.Close()
	}
	return b.String()
}
