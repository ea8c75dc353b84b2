package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/sample"
)

// binPath is the imgdataset binary TestMain builds: the CLI tests run what a
// person runs, with its real exit status, signals and environment.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imgdataset-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "imgdataset")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(gobin, "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runBin runs the built binary in dir with env added to the test's own and
// returns its exit status, stdout and stderr. ctx bounds it.
func runBin(ctx context.Context, t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v: still running when %v", args, ctx.Err())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// cleanLines checks what every failure line must be: one per failure, at
// most 200 characters, "imgdataset: " first, no Go stack trace and no
// "exit status" leaking from a child process. It returns the lines.
func cleanLines(t *testing.T, what, stderr string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	for _, l := range lines {
		if n := len([]rune(l)); n > 200 {
			t.Errorf("%s: a stderr line of %d characters: %q", what, n, l)
		}
		if !strings.HasPrefix(l, "imgdataset: ") {
			t.Errorf("%s: stderr line %q does not start with \"imgdataset: \"", what, l)
		}
	}
	for _, bad := range []string{"goroutine ", "panic:", "exit status", ".go:"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("%s: stderr has %q:\n%s", what, bad, stderr)
		}
	}
	return lines
}

// TestCLIExitCodesAndErrors runs the binary on every case of issue #13 (and
// more): the exit status, and exactly one clean stderr line that names the
// cause and not what it must not say.
func TestCLIExitCodesAndErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	tif, err := sample.ImageJTIFF(context.Background(), [3]int64{6, 20, 24}, 1, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	x := write("x.tif", tif)
	write("notes.txt", []byte("hello"))
	write("empty.tif", nil)
	write("unknown.yaml", []byte("version: 1\ndatasets:\n  - name: a\n    url: https://example.org/a.tif\n    colour: red\n"))
	write("broken.yaml", []byte("version: 1\ndatasets: [\n"))
	if err := os.Mkdir(filepath.Join(dir, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	nope := srv.URL + "/data/nope.tif"

	crop := func(args ...string) []string { return append([]string{"crop", x, "-o", "c.zarr"}, args...) }
	for _, c := range []struct {
		args []string
		code int
		say  []string // all in the one stderr line
		not  []string // none in it
	}{
		// Usage errors: exit 2, naming the flag or argument and what is accepted.
		{[]string{"inspect", "--no-such-flag", x}, exitUsage, []string{"--no-such-flag"}, nil},
		{[]string{"inspect"}, exitUsage, []string{"inspect: accepts 1 arg"}, nil},
		{[]string{"convert", "a", "b"}, exitUsage, []string{"convert: accepts 1 arg"}, nil},
		{[]string{"nosuch"}, exitUsage, []string{`unknown command "nosuch"`, "demo, run, plan"}, nil},
		{[]string{"run", "--per-host", "many"}, exitUsage, []string{"--per-host"}, nil},
		{[]string{"run", "--per-host", "-1"}, exitUsage, []string{"--per-host -1"}, nil},
		{[]string{"convert", x}, exitUsage, []string{"-o OUT is required"}, nil},
		{[]string{"convert", x, "-o", "out.xlsx"}, exitUsage, []string{"out.xlsx", ".zarr"}, nil},
		{[]string{"convert", x, "-o", "o.zarr", "--chunks", "0"}, exitUsage, []string{"--chunks 0"}, nil},
		{[]string{"convert", x, "-o", "o.zarr", "--chunks", "-3"}, exitUsage, []string{"--chunks -3"}, nil},
		{crop("--origin", "0,0,0"), exitUsage, []string{"--size Z,Y,X is required"}, nil},
		{crop("--size", "a,b,c", "--origin", "0,0,0"), exitUsage, []string{`--size "a,b,c"`}, nil},
		{crop("--size", "0,10,10", "--origin", "0,0,0"), exitUsage, []string{`--size "0,10,10"`, "at least 1"}, nil},
		{crop("--size", "-5,4,4", "--origin", "0,0,0"), exitUsage, []string{`--size "-5,4,4"`}, []string{"box [", "0:-5"}},
		{crop("--size", "4,4,4", "--origin", "-1,0,0"), exitUsage, []string{`--origin "-1,0,0"`, "at least 0"}, []string{"exceeds volume"}},
		{crop("--size", "4,4,4"), exitUsage, []string{"--origin Z,Y,X or --seed N is required"}, nil},
		{crop("--size", "4,4,4", "--origin", "0,0,0", "--seed", "1"), exitUsage, []string{"--origin and --seed"}, nil},
		{[]string{"catalog"}, exitUsage, []string{"catalog: requires at least 1 arg"}, nil},
		{[]string{"catalog", x, "-o", "t.xlsx"}, exitUsage, []string{"t.xlsx", ".csv"}, nil},
		{[]string{"run", "--progress", "fancy"}, exitUsage, []string{`--progress "fancy"`, "auto, bars, json or none"}, nil},
		{[]string{"run", "--only", "nosuch"}, exitUsage, []string{`--only "nosuch"`, "empiar-11759"}, nil},
		{[]string{"plan", "--only", "nosuch"}, exitUsage, []string{`--only "nosuch"`}, nil},
		{[]string{"demo", "--only", "nosuch", "--out", "demo-out"}, exitUsage, []string{`--only "nosuch"`, "hemibrain-crop"}, nil},
		{[]string{"plan", "--rate", "-5"}, exitUsage, []string{"--rate -5"}, nil},
		{[]string{"plan", "--rate", "0"}, exitUsage, []string{"--rate 0"}, nil},
		{[]string{"serve", ".", "--addr", "bogus::"}, exitUsage, []string{`--addr "bogus::"`}, nil},
		{[]string{"serve", ".", "--addr", "127.0.0.1:notaport"}, exitUsage, []string{`--addr "127.0.0.1:notaport"`}, nil},
		{[]string{"run", "unknown.yaml", "--out", "o1"}, exitUsage, []string{"unknown.yaml:5", "colour"}, nil},
		{[]string{"run", "broken.yaml", "--out", "o2"}, exitUsage, []string{"broken.yaml"}, nil},

		// Failures: exit 1, the cause said once.
		{[]string{"inspect", nope}, exitFailed, []string{"HTTP 404", nope}, nil},
		{[]string{"catalog", nope}, exitFailed, []string{"HTTP 404", nope}, nil},
		{[]string{"crop", nope, "-o", "c404.zarr", "--size", "4,4,4", "--seed", "1"}, exitFailed, []string{"HTTP 404", nope}, nil},
		{[]string{"catalog", "notes.txt"}, exitFailed, []string{"notes.txt", "unknown format"}, nil},
		{[]string{"inspect", "empty.tif"}, exitFailed, []string{"empty.tif", "empty file"}, nil},
		{[]string{"inspect", "emptydir"}, exitFailed, []string{"emptydir", "empty folder"}, nil},
		{[]string{"catalog", "emptydir"}, exitFailed, []string{"emptydir", "no file or store"}, nil},
		{[]string{"inspect", "missing.tif"}, exitFailed, []string{"missing.tif", "no such file"}, nil},
		{crop("--size", "4,4,4", "--origin", "100,0,0"), exitFailed, []string{"exceeds volume"}, nil},
	} {
		name := strings.Join(c.args, " ")
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			code, stdout, stderr := runBin(ctx, t, dir, nil, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, c.code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q: a failure prints nothing there", stdout)
			}
			lines := cleanLines(t, name, stderr)
			if len(lines) != 1 {
				t.Fatalf("%d stderr lines, want 1:\n%s", len(lines), stderr)
			}
			for _, s := range c.say {
				if !strings.Contains(lines[0], s) {
					t.Errorf("stderr %q does not say %q", lines[0], s)
				}
			}
			for _, s := range c.not {
				if strings.Contains(lines[0], s) {
					t.Errorf("stderr %q says %q", lines[0], s)
				}
			}
			if strings.Count(lines[0], srv.URL) > 1 {
				t.Errorf("stderr %q names the URL more than once", lines[0])
			}
		})
	}
	// demo refused --only before generating anything.
	if _, err := os.Stat(filepath.Join(dir, "demo-out")); !os.IsNotExist(err) {
		t.Errorf("demo --only nosuch created its output: %v", err)
	}
	// A usage error of crop or convert writes nothing.
	for _, p := range []string{"c.zarr", "o.zarr", "out.xlsx"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s exists after a refused command: %v", p, err)
		}
	}
}

// TestInspectInterrupted stops an inspect that waits on a server with
// SIGTERM: exit 130, and no word of resuming, which inspect does not do.
func TestInspectInterrupted(t *testing.T) {
	asked := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		<-r.Context().Done() // never answers; the client goes away
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "inspect", srv.URL+"/slow.tif")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-asked:
	case <-ctx.Done():
		t.Fatal("inspect never asked the server")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitAborted {
		t.Fatalf("inspect after SIGTERM: %v, want exit %d; stderr %q", err, exitAborted, errb.String())
	}
	lines := cleanLines(t, "inspect interrupted", errb.String())
	if len(lines) != 1 || lines[0] != "imgdataset: interrupted" {
		t.Errorf("stderr %q, want the one line \"imgdataset: interrupted\" (inspect does not resume)", errb.String())
	}
}

// TestOfflineDefaultManifest runs plan and run of the default manifest with
// no network: every request goes to a proxy on a loopback port nobody
// listens on (net/http honours HTTPS_PROXY and HTTP_PROXY), so the five
// datasets fail as on a machine without internet, deterministically and
// without touching it. Both must exit 1 well within 15 s with one line per
// dataset, and run's report.html and catalog.json must list the failures.
func TestOfflineDefaultManifest(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy := l.Addr().String()
	l.Close() // nothing listens there now: every connection is refused
	env := []string{"HTTPS_PROXY=http://" + proxy, "HTTP_PROXY=http://" + proxy, "https_proxy=http://" + proxy, "http_proxy=http://" + proxy, "NO_PROXY=", "no_proxy=", "ALL_PROXY=", "all_proxy="}
	names := []string{"idr-9846137", "empiar-11759", "epfl-hippocampus", "openorganelle-jrc-mus-nacc-2", "hemibrain-crop"}
	dir := t.TempDir()

	// failLines checks one stderr line per dataset, each naming its dataset
	// once and the refused proxy (so the request did not go elsewhere).
	failLines := func(t *testing.T, stderr string, prefix func(string) string) {
		t.Helper()
		var lines []string
		for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
			if strings.HasPrefix(l, "imgdataset: ") {
				lines = append(lines, l)
			}
		}
		cleanLines(t, "offline", strings.Join(lines, "\n"))
		if len(lines) != len(names) {
			t.Fatalf("%d failure lines, want %d:\n%s", len(lines), len(names), stderr)
		}
		for i, n := range names {
			if !strings.HasPrefix(lines[i], prefix(n)) || strings.Count(lines[i], n) != 1 {
				t.Errorf("line %q: want it to start %q and name the dataset once", lines[i], prefix(n))
			}
			if !strings.Contains(lines[i], "proxy "+proxy+": connection refused") {
				t.Errorf("line %q does not say the proxy refused", lines[i])
			}
		}
	}

	t.Run("plan", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		code, stdout, stderr := runBin(ctx, t, dir, env, "plan")
		if code != exitFailed {
			t.Fatalf("exit %d, want %d", code, exitFailed)
		}
		failLines(t, stderr, func(n string) string { return "imgdataset: " + n + " failed: " })
		if n := strings.Count(stdout, "failed"); n != len(names) || strings.Contains(stdout, "proxy") {
			t.Errorf("plan's table says failed %d times, or repeats the reasons:\n%s", n, stdout)
		}
	})
	t.Run("run", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		code, stdout, stderr := runBin(ctx, t, dir, env, "run", "--out", "out", "--progress", "none")
		if code != exitFailed {
			t.Fatalf("exit %d, want %d\n%s", code, exitFailed, stderr)
		}
		failLines(t, stderr, func(n string) string { return "imgdataset: " + n + " failed: " })
		if strings.Contains(stdout, "serve") || strings.Contains(stdout, "error") {
			t.Errorf("stdout offers to serve, or repeats the errors:\n%s", stdout)
		}
		for _, n := range names {
			if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(n) + ` +failed `).MatchString(stdout) {
				t.Errorf("summary has no failed line for %s:\n%s", n, stdout)
			}
		}

		b, err := os.ReadFile(filepath.Join(dir, "out", "catalog.json"))
		if err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Records  json.RawMessage
			Failures []catalog.Failure
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		if string(raw.Records) != "[]" {
			t.Errorf(`catalog.json "records": %s, want []`, raw.Records)
		}
		if len(raw.Failures) != len(names) {
			t.Fatalf("catalog.json lists %d failures, want %d", len(raw.Failures), len(names))
		}
		for _, f := range raw.Failures {
			if !strings.HasPrefix(f.Status, catalog.StatusError+": ") || f.Dataset == "" {
				t.Errorf("catalog.json failure %+v: want the dataset and status error: why", f)
			}
		}

		html, err := os.ReadFile(filepath.Join(dir, "out", "report.html"))
		if err != nil {
			t.Fatal(err)
		}
		s := string(html)
		i := strings.Index(s, `id="failed"`)
		if i < 0 {
			t.Fatal("report.html has no failed section")
		}
		failed := s[i : i+strings.Index(s[i:], "</section>")]
		for _, n := range names {
			if !strings.Contains(failed, "<td>"+n+"</td>") {
				t.Errorf("report.html's failed section does not list %s", n)
			}
		}
	})
}
