package source

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/store"
)

// TestLive resolves the five real datasets of the default manifest. It needs
// the internet, so it runs only with IMGDATASET_LIVE=1.
func TestLive(t *testing.T) {
	if os.Getenv("IMGDATASET_LIVE") != "1" {
		t.Skip("live test against the real services; set IMGDATASET_LIVE=1 to run it")
	}
	m, err := manifest.Default()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	env := &Env{HTTP: client, Stores: &store.Opener{HTTP: client}, Logf: t.Logf}
	checks := map[string]func(t *testing.T, r *Resolved){
		"idr-9846137": func(t *testing.T, r *Resolved) {
			if len(r.Objects) != 2 || !strings.HasPrefix(r.Objects[0].SourceURL, DefaultIDRFileTree+"idr0086-miron-micrographs/") {
				t.Errorf("objects %+v", r.Objects)
			}
		},
		"empiar-11759": func(t *testing.T, r *Resolved) {
			if len(r.Objects) != 16 || r.Facts["doi"] != "10.6019/EMPIAR-11759" {
				t.Errorf("%d objects, facts %v", len(r.Objects), r.Facts)
			}
		},
		"epfl-hippocampus": func(t *testing.T, r *Resolved) {
			if len(r.Objects) != 6 {
				t.Errorf("objects %+v", r.Objects)
			}
			for _, o := range r.Objects {
				if o.Path == "volumedata.tif" && o.Size != 3353674357 {
					t.Errorf("volumedata.tif size %d", o.Size)
				}
			}
		},
		"openorganelle-jrc-mus-nacc-2": func(t *testing.T, r *Resolved) {
			for _, o := range r.Objects {
				if strings.Contains(o.Path, "/fibsem-int16/s0/") {
					t.Fatalf("unselected level object %s", o.Path)
				}
			}
			if len(r.Objects) < 10 {
				t.Errorf("%d objects", len(r.Objects))
			}
		},
		"hemibrain-crop": func(t *testing.T, r *Resolved) {
			if len(r.Volumes) != 1 || r.Volumes[0].StoreURL != "gs://neuroglancer-janelia-flyem-hemibrain/emdata/clahe_yz/jpeg/" {
				t.Errorf("volumes %+v", r.Volumes)
			}
		},
	}
	for _, ds := range m.Datasets {
		t.Run(ds.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			r, err := Resolve(ctx, env, ds)
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, o := range r.Objects {
				total += o.Size
			}
			t.Logf("%s: %d objects, %d bytes, %d volumes, facts %v, notes %v", ds.Name, len(r.Objects), total, len(r.Volumes), r.Facts, r.Notes)
			if c := checks[ds.Name]; c != nil {
				c(t, r)
			}
		})
	}
}
