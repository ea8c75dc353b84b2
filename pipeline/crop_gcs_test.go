package pipeline

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format/precomputed"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/mirror"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// JPEG tolerance of a crop against the array that was JPEG-encoded. Baseline
// JPEG at quality 75 quantises each 8×8 block's DCT coefficients, so its error
// is bounded in energy over a block, not per voxel: the synthetic texture's
// membranes and per-voxel noise are mostly high frequencies, which q75 drops,
// so single voxels move by tens of grey levels while the RMS stays near 9 and
// the mean |error| near 7 (what image/jpeg gives on this texture). The bounds
// add about 20 % to that; checkJPEGTolerance also proves they are tight enough
// to reject the same crop one voxel off.
const (
	jpegMaxRMS     = 11.0
	jpegMaxMeanAbs = 9.0
)

// TestCropShardedJPEGOverHTTPAndGCS crops a sharded JPEG precomputed volume
// served by the GCS mirror, over plain HTTP GETs and over the GCS JSON API,
// and checks the OME-Zarr it writes voxel for voxel against a local decode of
// the same chunks, against the generating array within JPEG tolerance, and the
// number of requests against chunks and shards touched.
func TestCropShardedJPEGOverHTTPAndGCS(t *testing.T) {
	// 150×140×130 in 64³ chunks: a 3×3×3 grid whose last chunk on every axis is
	// an edge chunk (22, 12 and 2 voxels).
	shape := [3]int64{150, 140, 130}
	data := sample.EM(shape, 7, 1)
	src, err := sample.Mem("em", volume.Uint8, sample.ZYX(shape, [3]float64{8, 8, 8}, "nanometer"), data)
	if err != nil {
		t.Fatal(err)
	}
	// The crop reaches the edge chunks on every axis and starts off the grid.
	origin := []int64{40, 50, 60}
	size := []int64{110, 90, 70}

	variants := []struct {
		name string
		sh   precomputed.Sharding
	}{
		// Morton ids 0..63. Preshift 3 puts each 2×2×2 block of chunks in one
		// minishard, as Janelia's preshift 9 does for 8×8×8 blocks; 1 minishard
		// bit and 2 shard bits give 4 shards of 2 minishards.
		{"identity", precomputed.Sharding{Type: "neuroglancer_uint64_sharded_v1", Hash: "identity",
			PreshiftBits: 3, MinishardBits: 1, ShardBits: 2, MinishardIndexEncoding: "gzip", DataEncoding: "raw"}},
		{"murmur", precomputed.Sharding{Type: "neuroglancer_uint64_sharded_v1", Hash: "murmurhash3_x86_128",
			PreshiftBits: 0, MinishardBits: 1, ShardBits: 2, MinishardIndexEncoding: "gzip", DataEncoding: "gzip"}},
	}
	for _, vr := range variants {
		t.Run(vr.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			local := store.New(store.NewFile(dir))
			sh := vr.sh
			if err := precomputed.Write(ctx, local, "vol", src, precomputed.WriteOptions{
				Encoding: precomputed.EncJPEG, JPEGQuality: 75, Sharding: &sh, Resolution: [3]float64{8, 8, 8},
			}); err != nil {
				t.Fatal(err)
			}
			objs, nshards := bucketObjects(t, dir, "cropbucket")
			if nshards < 2 {
				t.Fatalf("%d shards written, want at least 2", nshards)
			}

			// Reference: the same chunks decoded from the local files.
			vols, err := precomputed.Format{}.Open(ctx, local, "vol")
			if err != nil {
				t.Fatal(err)
			}
			box := volume.NewBox(origin, size)
			want := make([]byte, box.NumElements())
			if err := vols[0].ReadRegion(ctx, box, want); err != nil {
				t.Fatal(err)
			}
			checkJPEGTolerance(t, "local decode", want, data, shape, origin, size)

			m, err := mirror.Start(ctx, mirror.Content{GCS: objs}, mirror.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			routes := []struct{ name, url, path string }{
				// fake-gcs-server answers plain GETs (with Range) on /<bucket>/<object>,
				// the storage.googleapis.com form; the GCS driver uses the JSON API.
				{"http", m.GCS + "/cropbucket/vol/", "/cropbucket/vol/"},
				{"gcs", "gs://cropbucket/vol", "/storage/v1/b/cropbucket/o/vol/"},
			}
			touched := chunksTouched(shape, [3]int64{64, 64, 64}, origin, size)
			for _, rt := range routes {
				t.Run(rt.name, func(t *testing.T) {
					opt := Options{Env: sourceEnv(m)}
					ctr := m.Counters[mirror.NameGCS]
					ctr.Reset()
					out := filepath.Join(t.TempDir(), "crop.zarr")
					res, err := Crop(ctx, rt.url, manifest.Crop{Origin: origin, Size: size}, out, opt)
					if err != nil {
						t.Fatal(err)
					}
					paths := ctr.Paths()
					if fmt.Sprint(res.Origin) != fmt.Sprint(origin) {
						t.Errorf("crop origin %v, want %v", res.Origin, origin)
					}
					got := readZarr(t, out, size)
					if i := firstDiff(got, want); i >= 0 {
						t.Fatalf("crop differs from the local decode at voxel %d (z,y,x %v): %d vs %d",
							i, unravel(int64(i), size), got[i], want[i])
					}
					checkJPEGTolerance(t, "crop", got, data, shape, origin, size)

					// Requests: shard objects separately from metadata (info and
					// the format probes of opening a prefix).
					var shardReqs, infoReqs, otherReqs int64
					shardsSeen := map[string]bool{}
					for p, pc := range paths {
						switch {
						case strings.HasSuffix(p, ".shard"):
							if !strings.HasPrefix(p, rt.path) {
								t.Errorf("shard read on %s, want the %s route %s…", p, rt.name, rt.path)
							}
							shardReqs += pc.Requests
							shardsSeen[p] = true
						case strings.HasSuffix(p, "/info"):
							infoReqs += pc.Requests
						default:
							otherReqs += pc.Requests
						}
					}
					limit := int64(touched + 2*len(shardsSeen))
					t.Logf("%s %s: %d chunks touched, %d of %d shards; requests: %d shard, %d info, %d other (limit on shard requests %d)",
						vr.name, rt.name, touched, len(shardsSeen), nshards, shardReqs, infoReqs, otherReqs, limit)
					if shardReqs > limit {
						t.Errorf("%d shard requests, more than %d chunks touched + 2 × %d shards touched", shardReqs, touched, len(shardsSeen))
					}
					if len(shardsSeen) < 2 {
						t.Errorf("crop read %d shards; the test needs a crop across shards", len(shardsSeen))
					}
					if infoReqs < 1 || infoReqs > 3 {
						t.Errorf("info fetched %d times, want 1 to 3 (detection, open)", infoReqs)
					}
				})
			}
		})
	}
}

// bucketObjects loads every file under dir as "bucket/<relative path>" and
// counts the shard files.
func bucketObjects(t *testing.T, dir, bucket string) (map[string][]byte, int) {
	t.Helper()
	objs := map[string][]byte{}
	shards := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		objs[bucket+"/"+filepath.ToSlash(rel)] = b
		if strings.HasSuffix(p, ".shard") {
			shards++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return objs, shards
}

// sourceEnv points the store opener's GCS endpoint at the mirror.
func sourceEnv(m *mirror.Mirrors) source.Env {
	return source.Env{Stores: &store.Opener{HTTP: NewHTTPClient(), GCSEndpoint: m.GCS, S3Endpoint: m.S3}}
}

// chunksTouched counts the grid cells of a z, y, x chunk grid that the box
// origin+size overlaps.
func chunksTouched(shape, chunk [3]int64, origin, size []int64) int {
	n := 1
	for d := 0; d < 3; d++ {
		lo := origin[d] / chunk[d]
		hi := (min(origin[d]+size[d], shape[d]) - 1) / chunk[d]
		n *= int(hi - lo + 1)
	}
	return n
}

// readZarr opens the crop the way any reader would and reads it whole.
func readZarr(t *testing.T, path string, size []int64) []byte {
	t.Helper()
	var opt Options
	opt.Defaults()
	vols, err := openVolumes(context.Background(), path, &opt)
	if err != nil {
		t.Fatal(err)
	}
	in := vols[0].Info()
	if fmt.Sprint(in.Shape) != fmt.Sprint(size) || in.DType != volume.Uint8 {
		t.Fatalf("crop is %v %s, want %v uint8", in.Shape, in.DType, size)
	}
	b := make([]byte, in.NumBytes())
	if err := vols[0].ReadRegion(context.Background(), volume.Full(in.Shape), b); err != nil {
		t.Fatal(err)
	}
	return b
}

func firstDiff(a, b []byte) int {
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func unravel(i int64, shape []int64) []int64 {
	out := make([]int64, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		out[d] = i % shape[d]
		i /= shape[d]
	}
	return out
}

// jpegError is the RMS and mean absolute difference between got (the box
// origin+size) and the same box of the generating array full of shape (z, y, x).
func jpegError(got, full []byte, shape [3]int64, origin, size []int64) (rms, mean float64) {
	var sq, abs float64
	i := 0
	for z := origin[0]; z < origin[0]+size[0]; z++ {
		for y := origin[1]; y < origin[1]+size[1]; y++ {
			row := full[(z*shape[1]+y)*shape[2]+origin[2]:]
			for x := int64(0); x < size[2]; x++ {
				e := float64(got[i]) - float64(row[x])
				sq += e * e
				abs += math.Abs(e)
				i++
			}
		}
	}
	n := float64(len(got))
	return math.Sqrt(sq / n), abs / n
}

// checkJPEGTolerance fails when got is not within JPEG tolerance of the
// generating array at origin, and also when the tolerance is too loose to tell
// the right place from one voxel off along x.
func checkJPEGTolerance(t *testing.T, what string, got, full []byte, shape [3]int64, origin, size []int64) {
	t.Helper()
	rms, mean := jpegError(got, full, shape, origin, size)
	t.Logf("%s vs generating array: RMS %.2f, mean |error| %.2f", what, rms, mean)
	if rms > jpegMaxRMS || mean > jpegMaxMeanAbs {
		t.Errorf("%s: RMS %.2f (max %.0f), mean |error| %.2f (max %.0f) against the generating array", what, rms, jpegMaxRMS, mean, jpegMaxMeanAbs)
	}
	shifted := []int64{origin[0], origin[1], origin[2] - 1}
	if srms, smean := jpegError(got, full, shape, shifted, size); srms <= jpegMaxRMS || smean <= jpegMaxMeanAbs {
		t.Errorf("%s: one voxel off along x is still within tolerance (RMS %.2f, mean %.2f): the bounds prove nothing", what, srms, smean)
	}
}
