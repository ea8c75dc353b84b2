// Package shardtest holds what the tests of sharded commands share: a
// volume whose every voxel differs from its neighbours, and the digest of
// a file tree, to check that N tasks and finalize write the files one
// process writes.
package shardtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/imgdataset/imgdataset/volume"
)

// Volume is a calibrated uint16 z, y, x volume of shape with voxel size
// nm (z, y, x, in nm) and pseudo-random values below 4096 from seed: a
// chunk written to the wrong place changes the bytes.
func Volume(shape []int64, nm [3]float64, seed uint64) (volume.Volume, error) {
	in := volume.Info{Name: "v", Shape: shape, DType: volume.Uint16}
	for i, n := range []string{"z", "y", "x"} {
		in.Axes = append(in.Axes, volume.Axis{Name: n, Size: shape[i], Scale: nm[i], Unit: "nm", ScaleKnown: true})
	}
	data := make([]byte, in.NumBytes())
	for i := 0; i < len(data); i += 2 {
		v := uint16((uint64(i/2)*2654435761+seed)>>7) % 4096
		data[i], data[i+1] = byte(v), byte(v>>8)
	}
	return volume.NewMem(in, data)
}

// Hashes maps every file under dir, by slash path relative to dir, to the
// sha256 of its bytes; directories named in skip are left out.
func Hashes(dir string, skip ...string) (map[string]string, error) {
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			for _, s := range skip {
				if d.Name() == s && p != dir {
					return filepath.SkipDir
				}
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		sums[filepath.ToSlash(rel)] = hex.EncodeToString(h[:])
		return nil
	})
	return sums, err
}

// Diff lists, sorted, the files that differ between two trees (Hashes):
// missing from got, only in got, or with other bytes.
func Diff(want, got map[string]string) []string {
	var out []string
	for k, h := range want {
		switch g, ok := got[k]; {
		case !ok:
			out = append(out, k+": missing")
		case g != h:
			out = append(out, fmt.Sprintf("%s: other bytes", k))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, k+": only in the second tree")
		}
	}
	sort.Strings(out)
	return out
}

// CompareTrees lists the differences (Diff) between the trees want and got
// (Hashes, with skip) and returns the number of files in want.
func CompareTrees(want, got string, skip ...string) (int, []string, error) {
	w, err := Hashes(want, skip...)
	if err != nil {
		return 0, nil, err
	}
	g, err := Hashes(got, skip...)
	if err != nil {
		return 0, nil, err
	}
	return len(w), Diff(w, g), nil
}
