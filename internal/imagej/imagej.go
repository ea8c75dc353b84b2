// Package imagej runs macros in Debian's ImageJ 1 (the core of Fiji), for
// tests that use it as an independent reader.
package imagej

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Jar is where Debian's imagej package (libij-java) puts ImageJ 1.
const Jar = "/usr/share/java/ij.jar"

// Run runs macro over paths in one JVM and returns what it printed. The
// macro gets, as its argument, a file listing paths one per line. t is
// skipped, saying why, when java or ImageJ is not installed.
//
// ImageJ must run with java.awt.headless=false: in headless mode its open()
// builds the menu bar and throws HeadlessException. In batch mode it opens
// no window, so no display is needed; DISPLAY is removed so none is ever
// contacted.
func Run(t testing.TB, macro string, paths []string) string {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skipf("ImageJ oracle unavailable: no java on PATH (%v); install Debian's imagej package", err)
	}
	if _, err := os.Stat(Jar); err != nil {
		t.Skipf("ImageJ oracle unavailable: %v; install Debian's imagej package", err)
	}
	dir := t.TempDir()
	list, mf := filepath.Join(dir, "files.txt"), filepath.Join(dir, "macro.ijm")
	if err := os.WriteFile(list, []byte(strings.Join(paths, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mf, []byte(macro), 0o644); err != nil {
		t.Fatal(err)
	}
	// A guard against a JVM that never returns, not a performance check.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, "-Djava.awt.headless=false", "-Duser.home="+dir, "-Xmx256m",
		"-jar", Jar, "-batch", mf, list)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISPLAY=") && !strings.HasPrefix(kv, "WAYLAND_DISPLAY=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ImageJ: %v\n%s", err, out)
	}
	return string(out)
}
