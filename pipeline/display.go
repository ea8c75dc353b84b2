package pipeline

import (
	"fmt"
	"io"
)

// Display shows a person what a run is doing. The CLI's draws live progress
// bars and writes log lines above them; the pipeline never writes to the
// terminal itself, so nothing it says is overwritten by a bar.
type Display interface {
	// Logf writes one line (no trailing newline needed), whole: a long path
	// is never cut, the terminal wraps it.
	Logf(format string, args ...any)
	// Phase starts showing one long piece of work — a conversion, a crop, a
	// stack of sections — named name, of total bytes (0: not known yet).
	Phase(name string, total int64) Phase
}

// Phase is one long piece of work being shown.
type Phase interface {
	// Update says done of total bytes are written; it has the signature of
	// volume.CopyOptions.Progress and zarr.WriteOptions.Progress, and is
	// safe for concurrent use (parallel readers report through it).
	Update(done, total int64)
	// End ends the phase: completed when err is nil, abandoned otherwise.
	End(err error)
}

// Lines returns a Display that writes each log line to w in one Write and
// shows no bars (scripts, logs, --progress none or json).
func Lines(w io.Writer) Display { return lines{w} }

type lines struct{ w io.Writer }

func (l lines) Logf(format string, args ...any) {
	// One Write per line, so lines from concurrent work never interleave.
	_, _ = io.WriteString(l.w, fmt.Sprintf(format, args...)+"\n")
}

func (lines) Phase(string, int64) Phase { return noPhase{} }

type noPhase struct{}

func (noPhase) Update(int64, int64) {}
func (noPhase) End(error)           {}
