package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/imgdataset/imgdataset/manifest"
)

const maxRedirects = 10

// Neuroglancer resolves a Neuroglancer link (possibly a short link) to the
// volume of one of its layers, read in place rather than downloaded.
type Neuroglancer struct{}

// Kind implements Resolver.
func (n *Neuroglancer) Kind() string { return manifest.KindNeuroglancer }

// Resolve implements Resolver.
func (n *Neuroglancer) Resolve(ctx context.Context, env *Env, ds manifest.Dataset) (*Resolved, error) {
	full, err := FollowShortLink(ctx, env.client(), strings.TrimSpace(ds.URL))
	if err != nil {
		return nil, err
	}
	_, frag, ok := strings.Cut(full, "#!")
	if !ok {
		return nil, fmt.Errorf("%s leads to %s, which carries no Neuroglancer state (#!…)", ds.URL, full)
	}
	raw, err := stateText(ctx, env, frag)
	if err != nil {
		return nil, err
	}
	st, err := ParseNGState(raw)
	if err != nil {
		return nil, fmt.Errorf("neuroglancer state of %s: %w", ds.URL, err)
	}
	layer, err := st.Pick(ds.Layer)
	if err != nil {
		return nil, err
	}
	vol, err := layerVolume(layer)
	if err != nil {
		return nil, err
	}
	res := &Resolved{Volumes: []VolumeRef{vol}, FactsSource: "neuroglancer state", Facts: Facts{}}
	res.Facts["layer"] = layer.Name
	res.Facts["layer_source"] = layer.Source
	var others []string
	for _, l := range st.Layers {
		if l.Name != layer.Name {
			others = append(others, l.Name)
		}
	}
	if len(others) > 0 {
		res.Facts["other_layers"] = others
	}
	if v := st.VoxelSizeNM(); v != nil {
		res.Facts["voxel_size_nm"] = v
	}
	return res, nil
}

// FollowShortLink follows redirects by hand (at most maxRedirects) and
// returns the first URL carrying "#!", keeping the Location's fragment,
// which an automatic client would drop. A URL that already has "#!" is returned as is.
func FollowShortLink(ctx context.Context, c *http.Client, start string) (string, error) {
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cur := start
	for i := 0; i <= maxRedirects; i++ {
		if strings.Contains(cur, "#!") {
			return cur, nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cur, nil)
		if err != nil {
			return "", fmt.Errorf("short link %s: %w", cur, err)
		}
		resp, err := nc.Do(req)
		if err != nil {
			return "", err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			if resp.StatusCode/100 != 2 {
				return "", &HTTPError{URL: cur, Status: resp.StatusCode}
			}
			return cur, nil
		}
		loc := resp.Header.Get("Location")
		if loc == "" {
			return "", fmt.Errorf("short link %s: HTTP %d without Location", cur, resp.StatusCode)
		}
		cur, err = joinLocation(resp.Request.URL, loc)
		if err != nil {
			return "", fmt.Errorf("short link %s: bad Location %q: %w", start, loc, err)
		}
	}
	return "", fmt.Errorf("short link %s: more than %d redirects", start, maxRedirects)
}

// joinLocation resolves a Location header against the request URL without
// parsing the fragment (Neuroglancer fragments are not valid URL syntax).
func joinLocation(base *url.URL, loc string) (string, error) {
	head, frag, hasFrag := strings.Cut(loc, "#")
	ref, err := url.Parse(head)
	if err != nil {
		return "", err
	}
	abs := base.ResolveReference(ref)
	if abs.Scheme != "http" && abs.Scheme != "https" {
		return "", fmt.Errorf("scheme %q", abs.Scheme)
	}
	s := abs.String()
	if hasFrag {
		s += "#" + frag
	}
	return s, nil
}

// stateText turns the text after "#!" into JSON: percent-decoded inline
// state, or the contents of a state URL (#!gs://bucket/state.json).
func stateText(ctx context.Context, env *Env, frag string) ([]byte, error) {
	s := frag
	if d, err := url.PathUnescape(frag); err == nil {
		s = d
	}
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		return []byte(s), nil
	}
	for _, p := range []string{"gs://", "s3://", "https://", "http://"} {
		if strings.HasPrefix(s, p) {
			i := strings.LastIndex(s, "/")
			st, err := env.opener().Open(ctx, s[:i+1])
			if err != nil {
				return nil, fmt.Errorf("neuroglancer state %s: %w", s, err)
			}
			defer st.Close()
			b, err := st.ReadAll(ctx, s[i+1:], maxMetaBytes)
			if err != nil {
				return nil, fmt.Errorf("neuroglancer state %s: %w", s, err)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("neuroglancer fragment is neither JSON nor a state URL: %.80q", s)
}

// NGState is the part of a Neuroglancer state the resolver uses.
type NGState struct {
	Dimensions map[string][]any
	Layers     []NGLayer
}

// NGLayer is one layer: its name, type and data source URL.
type NGLayer struct {
	Name   string
	Type   string
	Source string // first source URL, e.g. precomputed://gs://bucket/path
}

// ParseNGState decodes a state. Single-quoted JSON (as written by some
// harvesters) is accepted when strict JSON fails; layers may be a list or,
// in old states, an object keyed by name.
func ParseNGState(b []byte) (*NGState, error) {
	var raw struct {
		Dimensions map[string][]any `json:"dimensions"`
		Layers     json.RawMessage  `json:"layers"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		if err2 := json.Unmarshal([]byte(strings.ReplaceAll(string(b), "'", `"`)), &raw); err2 != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
	}
	st := &NGState{Dimensions: raw.Dimensions}
	var list []map[string]any
	if err := json.Unmarshal(raw.Layers, &list); err != nil {
		var byName map[string]map[string]any
		if err2 := json.Unmarshal(raw.Layers, &byName); err2 != nil {
			return nil, errors.New(`no "layers" list`)
		}
		names := make([]string, 0, len(byName))
		for k := range byName {
			names = append(names, k)
		}
		sort.Strings(names) // map order is lost; make it deterministic
		for _, k := range names {
			l := byName[k]
			if l == nil {
				continue
			}
			if _, ok := l["name"]; !ok {
				l["name"] = k
			}
			list = append(list, l)
		}
	}
	for _, l := range list {
		name, _ := l["name"].(string)
		typ, _ := l["type"].(string)
		st.Layers = append(st.Layers, NGLayer{Name: name, Type: typ, Source: sourceURL(l["source"])})
	}
	return st, nil
}

// sourceURL reads a layer source: a string, {"url": …}, or a list of those.
func sourceURL(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case map[string]any:
		u, _ := s["url"].(string)
		return u
	case []any:
		for _, e := range s {
			if u := sourceURL(e); u != "" {
				return u
			}
		}
	}
	return ""
}

// Pick returns the layer called name, or the first image layer.
func (s *NGState) Pick(name string) (NGLayer, error) {
	var names []string
	for _, l := range s.Layers {
		names = append(names, l.Name)
		if name != "" && l.Name == name {
			return l, nil
		}
	}
	if name != "" {
		return NGLayer{}, fmt.Errorf("no layer named %q (layers: %s)", name, strings.Join(names, ", "))
	}
	for _, l := range s.Layers {
		if l.Type == "image" {
			return l, nil
		}
	}
	return NGLayer{}, fmt.Errorf("no image layer (layers: %s); set layer: in the manifest", strings.Join(names, ", "))
}

// VoxelSizeNM converts the state's dimensions (x, y, z in metres or other
// units) to nm in z, y, x order; nil when incomplete.
func (s *NGState) VoxelSizeNM() []float64 {
	var out []float64
	for _, ax := range []string{"z", "y", "x"} {
		d := s.Dimensions[ax]
		if len(d) != 2 {
			return nil
		}
		v, ok1 := d[0].(float64)
		unit, ok2 := d[1].(string)
		f := map[string]float64{"m": 1e9, "mm": 1e6, "um": 1e3, "µm": 1e3, "nm": 1, "pm": 1e-3}[unit]
		if !ok1 || !ok2 || f == 0 || !(v > 0) {
			return nil
		}
		out = append(out, round9(v*f))
	}
	return out
}

// layerVolume maps a layer source to a volume reference.
func layerVolume(l NGLayer) (VolumeRef, error) {
	v, err := VolumeFromSource(l.Source)
	if err != nil {
		return VolumeRef{}, fmt.Errorf("layer %q: %w", l.Name, err)
	}
	v.Path = sanitizeName(l.Name) + ".zarr"
	return v, nil
}

// VolumeFromSource parses a Neuroglancer data source: "precomputed://gs://b/p",
// "zarr://s3://b/p", the pipe form "gs://b/p|neuroglancer-precomputed:", or a
// bare bucket URL (taken as precomputed). StoreURL ends with "/".
func VolumeFromSource(src string) (VolumeRef, error) {
	s := strings.TrimSpace(src)
	format := "precomputed"
	if head, tail, ok := strings.Cut(s, "|"); ok {
		s = head
		switch t := strings.TrimSuffix(strings.TrimSpace(tail), ":"); t {
		case "neuroglancer-precomputed":
		case "zarr", "zarr2", "zarr3", "n5":
			format = strings.TrimRight(t, "23")
		default:
			return VolumeRef{}, fmt.Errorf("source %q: unsupported format %q", src, t)
		}
	}
	for _, f := range []string{"precomputed", "zarr", "zarr2", "zarr3", "n5"} {
		if rest, ok := strings.CutPrefix(s, f+"://"); ok {
			s, format = rest, strings.TrimRight(f, "23")
			break
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return VolumeRef{}, fmt.Errorf("source %q: %w", src, err)
	}
	switch u.Scheme {
	case "gs", "s3", "http", "https":
	default:
		return VolumeRef{}, fmt.Errorf("source %q: unsupported location scheme %q", src, u.Scheme)
	}
	if u.Host == "" {
		return VolumeRef{}, fmt.Errorf("source %q has no bucket or host", src)
	}
	root := strings.TrimSuffix(s, "/") + "/"
	return VolumeRef{StoreURL: root, Format: format}, nil
}

// sanitizeName turns a layer or volume name into a safe file name.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 100 {
			break
		}
	}
	n := strings.Trim(b.String(), ".")
	if n == "" {
		return "volume"
	}
	return n
}

// Precomputed resolves a direct volume URL (precomputed://gs://b/p or gs://b/p).
type Precomputed struct{}

// Kind implements Resolver.
func (p *Precomputed) Kind() string { return manifest.KindPrecomputed }

// Resolve implements Resolver. It checks that the volume's info exists.
func (p *Precomputed) Resolve(ctx context.Context, env *Env, ds manifest.Dataset) (*Resolved, error) {
	v, err := VolumeFromSource(ds.URL)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(v.StoreURL) // parsed above
	v.Path = sanitizeName(lastSegment(u.Path)) + ".zarr"
	if v.Format == "precomputed" {
		st, err := env.opener().Open(ctx, v.StoreURL)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", v.StoreURL, err)
		}
		defer st.Close()
		if _, err := st.Stat(ctx, "info"); err != nil {
			return nil, fmt.Errorf("precomputed volume %s: no info: %w", v.StoreURL, err)
		}
	}
	return &Resolved{Volumes: []VolumeRef{v}}, nil
}

func lastSegment(p string) string {
	p = strings.Trim(p, "/")
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}
