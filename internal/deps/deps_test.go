package deps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// rule says that no package matching from (and not except) may import, even
// indirectly through its non-test files, a package matching deny. Patterns
// are space-separated; "x/..." is x and everything below it; a first path
// element without a dot is relative to the module.
type rule struct {
	from, except, deny, why string
}

// rules is the layering of imgdataset, one line per layer.
func rules() []rule {
	return []rule{
		{"format/...", "", "source transfer pipeline catalog serve", "a format reads bytes through store only; it never scrapes, schedules or catalogs"},
		{"store/...", "", "volume format/... codec/...", "store moves bytes and knows nothing of arrays, formats or codecs"},
		{"volume/...", "", "format/... store/...", "volume names no format and no place where bytes live"},
		{"serve", "", "pipeline transfer source", "the block server reads what is on disk; it does not run the pipeline"},
		{"scan catalog/...", "", "pipeline transfer source serve", "a table is built from arrays and facts handed in; it never fetches or runs the pipeline"},
		{"codec/...", "", "store/... volume/... format/...", "codecs turn bytes into bytes and know nothing of where they live or what they mean"},
		// sample builds mirror.Content: the two are the test-server side of the line.
		{"...", "cmd/... internal/demo bench/... mirror/... sample/...", "mirror/... sample/...", "the loopback test servers and sample generators are wired in only by the demo"},
		{"cmd/imgdataset", "", "google.golang.org/grpc/... cloud.google.com/go/... github.com/aws/... github.com/johannesboyne/gofakes3/... github.com/fsouza/fake-gcs-server/... github.com/envoyproxy/... go.opentelemetry.io/...",
			"the binary speaks the public S3/GCS HTTP APIs itself; SDKs, gRPC and fake servers belong in tests"},
	}
}

// edge is one import, importer → imported, module-relative where possible.
type edge struct{ from, to string }

// tolerated lists imports that break a rule today and are being removed on
// another branch; an edge listed here is skipped with everything reached only
// through it. An entry that no longer matches an import fails the test, so
// that it gets deleted.
func tolerated() []edge {
	return []edge{}
}

// pkg is what the rules need of one `go list -json` record.
type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
	Module     *struct {
		Path string
		Main bool
	}
	Error *struct{ Err string }
}

// graph is the import graph of the module's packages and their dependencies,
// non-test files only, standard library left out (it imports nothing of ours).
type graph struct {
	module  string
	imports map[string][]string
	own     []string // the main module's packages, sorted
}

// loadGraph asks the go command, as a clean clone in CI would: it reads only
// the module cache, never the network, since every dependency is in go.sum.
func loadGraph(t *testing.T) *graph {
	t.Helper()
	goBin, mod := mainModule(t)
	out := run(t, goBin, mod.Dir, "list", "-deps", "-json", "./...")
	g := &graph{module: mod.Path, imports: map[string][]string{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list -deps -json: decode: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: package %s: %s", p.ImportPath, p.Error.Err)
		}
		if p.Standard {
			continue
		}
		g.imports[p.ImportPath] = p.Imports
		if p.Module != nil && p.Module.Main {
			g.own = append(g.own, p.ImportPath)
		}
	}
	slices.Sort(g.own)
	if len(g.own) < 10 {
		t.Fatalf("go list found only %d packages of module %s: %v", len(g.own), g.module, g.own)
	}
	return g
}

// module is the main module: its path and root directory.
type module struct{ Path, Dir string }

// mainModule finds the go command (go test puts GOROOT/bin on PATH) and the
// module under test.
func mainModule(t *testing.T) (goBin string, mod module) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not on PATH (%v); cannot inspect the module", err)
	}
	if err := json.Unmarshal(run(t, goBin, "", "list", "-m", "-json"), &mod); err != nil || mod.Path == "" || mod.Dir == "" {
		t.Fatalf("go list -m -json: no main module (%v)", err)
	}
	return goBin, mod
}

// run runs the go command in dir and returns its standard output.
func run(t *testing.T, goBin, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(goBin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// full turns a rule pattern into an import-path pattern.
func (g *graph) full(p string) string {
	if p == "..." {
		return g.module + "/..."
	}
	if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
		return p
	}
	return g.module + "/" + p
}

// short is an import path as the rules write it.
func (g *graph) short(path string) string {
	if rel, ok := strings.CutPrefix(path, g.module+"/"); ok {
		return rel
	}
	return path
}

// matchAny reports whether path matches one of the space-separated patterns.
func (g *graph) matchAny(patterns, path string) bool {
	for _, p := range strings.Fields(patterns) {
		p = g.full(p)
		if base, ok := strings.CutSuffix(p, "/..."); ok {
			if path == base || strings.HasPrefix(path, base+"/") {
				return true
			}
		} else if path == p {
			return true
		}
	}
	return false
}

// chains returns, for every package reachable from start, the shortest import
// chain leading there, skipping the tolerated edges.
func (g *graph) chains(start string, skip map[edge]bool) map[string][]string {
	seen := map[string][]string{start: {start}}
	queue := []string{start}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range g.imports[p] {
			if _, ok := seen[q]; ok || skip[edge{g.short(p), g.short(q)}] {
				continue
			}
			if _, known := g.imports[q]; !known {
				continue // standard library
			}
			seen[q] = append(slices.Clip(seen[p]), q)
			queue = append(queue, q)
		}
	}
	return seen
}

// violations checks every rule on every package of the module and describes
// each forbidden package reached, with its import chain. A forbidden module
// reached through several of its packages is named once per importer and
// rule, by the package with the shortest chain.
func (g *graph) violations(rs []rule, skip map[edge]bool) []string {
	var out []string
	for _, r := range rs {
		for _, from := range g.own {
			if !g.matchAny(r.from, from) || g.matchAny(r.except, from) {
				continue
			}
			reached := g.chains(from, skip)
			for _, deny := range strings.Fields(r.deny) {
				var best []string
				for p, chain := range reached {
					if p != from && g.matchAny(deny, p) && (best == nil || len(chain) < len(best) || len(chain) == len(best) && p < best[len(best)-1]) {
						best = chain
					}
				}
				if best != nil {
					names := make([]string, len(best))
					for i, p := range best {
						names[i] = g.short(p)
					}
					out = append(out, fmt.Sprintf("%s must not import %s (%s): %s", g.short(from), deny, r.why, strings.Join(names, " → ")))
				}
			}
		}
	}
	return out
}

// TestDependencyRules enforces rules() on the real import graph.
func TestDependencyRules(t *testing.T) {
	g := loadGraph(t)
	skip := map[edge]bool{}
	for _, e := range tolerated() {
		skip[e] = true
		if !slices.Contains(g.imports[g.full(e.from)], g.full(e.to)) {
			t.Errorf("tolerated import %s → %s no longer exists: delete its entry from tolerated() in internal/deps/deps_test.go", e.from, e.to)
		}
	}
	for _, v := range g.violations(rules(), skip) {
		t.Error(v)
	}
	for _, r := range rules() {
		matched := false
		for _, p := range g.own {
			matched = matched || g.matchAny(r.from, p) && !g.matchAny(r.except, p)
		}
		if !matched {
			t.Errorf("rule for %q matches no package of %s: a layer was renamed or removed", r.from, g.module)
		}
	}
}

// TestDependencyRulesCatch runs the checker on a made-up graph, so that a
// checker that finds nothing cannot pass for a clean tree.
func TestDependencyRulesCatch(t *testing.T) {
	const m = "example.com/m"
	g := &graph{module: m, imports: map[string][]string{
		m + "/format/zarr":     {m + "/store", m + "/codec"},
		m + "/store":           {m + "/internal/util"},
		m + "/internal/util":   {m + "/pipeline"},
		m + "/pipeline":        {m + "/transfer", "example.org/sdk/grpc"},
		m + "/transfer":        nil,
		m + "/codec":           nil,
		m + "/serve":           {m + "/pipeline", m + "/store"},
		m + "/cmd/tool":        {m + "/serve"},
		"example.org/sdk/grpc": nil,
	}}
	for p := range g.imports {
		if strings.HasPrefix(p, m+"/") {
			g.own = append(g.own, p)
		}
	}
	slices.Sort(g.own)
	rs := []rule{
		{"format/...", "", "pipeline", "formats stay below the pipeline"},
		{"serve", "", "transfer", "serve reads disk only"},
		{"cmd/tool", "", "example.org/sdk/...", "no SDK in the binary"},
		{"...", "cmd/...", "cmd/...", "nothing imports a command"},
	}
	cases := []struct {
		name string
		skip []edge
		want []string
	}{
		{"all", nil, []string{
			"format/zarr must not import pipeline (formats stay below the pipeline): format/zarr → store → internal/util → pipeline",
			"serve must not import transfer (serve reads disk only): serve → pipeline → transfer",
			"cmd/tool must not import example.org/sdk/... (no SDK in the binary): cmd/tool → serve → pipeline → example.org/sdk/grpc",
		}},
		{"tolerated edge and its consequences", []edge{{"serve", "pipeline"}}, []string{
			"format/zarr must not import pipeline (formats stay below the pipeline): format/zarr → store → internal/util → pipeline",
			// serve still reaches pipeline through store → internal/util.
			"serve must not import transfer (serve reads disk only): serve → store → internal/util → pipeline → transfer",
			"cmd/tool must not import example.org/sdk/... (no SDK in the binary): cmd/tool → serve → store → internal/util → pipeline → example.org/sdk/grpc",
		}},
		{"cut below", []edge{{"internal/util", "pipeline"}, {"serve", "pipeline"}}, nil},
	}
	for _, c := range cases {
		skip := map[edge]bool{}
		for _, e := range c.skip {
			skip[e] = true
		}
		if got := g.violations(rs, skip); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got  %q\n want %q", c.name, got, c.want)
		}
	}
}
