package precomputed

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// TestCorruptChunks cuts one stored chunk (or shard) of volumes written by
// Write: reading the volume must fail with format.ErrCorrupt naming the
// object, never return other voxels; a broken info fails Open the same way.
func TestCorruptChunks(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		dt   volume.DType
		opt  WriteOptions
		key  string // the damaged object: a chunk or shard key, or "info"
		hurt func([]byte) []byte
		want string
	}{
		{name: "raw chunk cut", dt: volume.Uint8, opt: WriteOptions{}, hurt: half, want: "raw chunk has"},
		{name: "jpeg chunk cut", dt: volume.Uint8, opt: WriteOptions{Encoding: EncJPEG}, hurt: half, want: "jpeg chunk"},
		{name: "png chunk cut", dt: volume.Uint8, opt: WriteOptions{Encoding: EncPNG}, hurt: half, want: "png chunk"},
		{name: "compressed_segmentation chunk cut", dt: volume.Uint32, opt: WriteOptions{Encoding: EncCSeg, Type: "segmentation"}, hurt: half,
			want: "compressed_segmentation"},
		{name: "gzip shard data cut", dt: volume.Uint8, opt: WriteOptions{Sharding: sharding("identity", true)}, hurt: half, want: "shard"},
		{name: "raw shard cut", dt: volume.Uint8, opt: WriteOptions{Sharding: sharding("identity", false)}, hurt: half,
			want: "lies past end of the shard"},
		{name: "info not JSON", dt: volume.Uint8, opt: WriteOptions{}, key: "info", hurt: half, want: "invalid precomputed info"},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := c.opt
			opt.ChunkSize = testChunk
			src := makeSource(t, c.dt, 1, true)
			d, st, _ := writeOpen(t, src, opt)
			key := "vol/" + c.key
			if c.key == "" {
				var objs []string
				for _, k := range d.keys("vol/") {
					if !strings.HasSuffix(k, "/info") {
						objs = append(objs, k)
					}
				}
				slices.Sort(objs)
				key = objs[0]
			}
			d.put(key, c.hurt(d.get(key)))

			vs, err := Format{}.Open(ctx, st, "vol")
			if c.key == "info" {
				if !errors.Is(err, format.ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("Open: %v, want format.ErrCorrupt with %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			in := vs[0].Info()
			err = vs[0].ReadRegion(ctx, volume.Full(in.Shape), make([]byte, in.NumBytes()))
			switch {
			case !errors.Is(err, format.ErrCorrupt) || errors.Is(err, format.ErrNotSupported):
				t.Fatalf("ReadRegion: %v, want format.ErrCorrupt", err)
			case !strings.Contains(err.Error(), strings.TrimPrefix(key, "vol/")):
				t.Errorf("error %q does not name %q", err, key)
			case !strings.Contains(err.Error(), c.want):
				t.Errorf("error %q lacks %q", err, c.want)
			}
		})
	}
}

func half(b []byte) []byte { return b[:len(b)/2] }

// TestShardReadFailureIsNotCorrupt checks the other side: a shard whose
// bytes are all there but whose store fails is not reported as corrupt.
func TestShardReadFailureIsNotCorrupt(t *testing.T) {
	ctx := context.Background()
	opt := WriteOptions{ChunkSize: testChunk, Sharding: sharding("identity", false)}
	d, st, _ := writeOpen(t, makeSource(t, volume.Uint8, 1, true), opt)
	vs, err := Format{}.Open(ctx, st, "vol")
	if err != nil {
		t.Fatal(err)
	}
	d.setFail(func(key string, off, n int64) error {
		return &store.HTTPError{URL: "mem:" + key, Status: 503}
	})
	in := vs[0].Info()
	err = vs[0].ReadRegion(ctx, volume.Full(in.Shape), make([]byte, in.NumBytes()))
	if err == nil || errors.Is(err, format.ErrCorrupt) {
		t.Fatalf("ReadRegion with a failing store: %v, want an error that is not format.ErrCorrupt", err)
	}
}
