package source

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/store"
)

// statObjects asks the store behind each object for its exact size and
// validators (an HTTP HEAD for web stores), headLimit at a time. Listing and
// page sizes are only hints; the transfer relies on these values.
func statObjects(ctx context.Context, env *Env, objs []Object) error {
	stores := map[string]*store.Store{}
	for _, o := range objs {
		if _, ok := stores[o.StoreURL]; ok {
			continue
		}
		st, err := env.opener().Open(ctx, o.StoreURL)
		if err != nil {
			return fmt.Errorf("open %s: %w", o.StoreURL, err)
		}
		stores[o.StoreURL] = st
		defer st.Close()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(headLimit)
	for i := range objs {
		o := &objs[i]
		st := stores[o.StoreURL]
		g.Go(func() error {
			info, err := st.Stat(gctx, o.Key)
			if err != nil {
				return fmt.Errorf("stat %s: %w", o.SourceURL, err)
			}
			fillInfo(o, info)
			return nil
		})
	}
	return g.Wait()
}

// fillInfo copies a store's view of an object into it.
func fillInfo(o *Object, info store.ObjectInfo) {
	o.Size = info.Size
	o.ETag = info.ETag
	o.MD5 = info.MD5
	o.CRC32C = info.CRC32C
	o.HasCRC = info.HasCRC
}
