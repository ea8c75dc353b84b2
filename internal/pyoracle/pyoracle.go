// Package pyoracle runs Python scripts that read arrays with the readers a
// user would pick (tifffile, hyperspy, zarr-python), for tests that use them
// as independent oracles.
package pyoracle

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// Python is the interpreter Debian's python3-* oracles are installed for;
// a pyenv shim earlier on PATH may have none of them.
const Python = "/usr/bin/python3"

// Answers runs script in one Python process with one JSON line per request
// on stdin and returns its output lines: one answer per request, in order,
// or t fails saying what Python printed.
func Answers(t testing.TB, script string, reqs []any) []string {
	t.Helper()
	var in bytes.Buffer
	for _, r := range reqs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(append(b, '\n'))
	}
	cmd := exec.Command(Python, "-W", "ignore", "-c", script)
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("python: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("python: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(reqs) {
		t.Fatalf("python answered %d of %d requests:\n%s", len(lines), len(reqs), out)
	}
	return lines
}
