package source

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/store"
)

// statObjects asks the store behind each object for its exact size and
// validators (an HTTP HEAD for web stores), headLimit at a time. Listing and
// page sizes are only hints; the transfer relies on these values. With
// tolerant set, an object whose stat fails is logged and left unsized, its
// known size kept as a hint, so that its download fails it alone (with the
// server's answer) and the rest of the dataset goes on; the failures are
// returned for the caller to tell whether anything is left to go on.
func statObjects(ctx context.Context, env *Env, objs []Object, tolerant bool) (failed []error, err error) {
	stores := map[string]*store.Store{}
	for _, o := range objs {
		if _, ok := stores[o.StoreURL]; ok {
			continue
		}
		st, err := env.opener().Open(ctx, o.StoreURL)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", o.StoreURL, err)
		}
		stores[o.StoreURL] = st
		defer st.Close()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(headLimit)
	var mu sync.Mutex
	for i := range objs {
		o := &objs[i]
		st := stores[o.StoreURL]
		g.Go(func() error {
			info, err := st.Stat(gctx, o.Key)
			if err != nil && tolerant && gctx.Err() == nil {
				env.logf("stat %s: %v (left to the download)", o.SourceURL, err)
				mu.Lock()
				failed = append(failed, fmt.Errorf("stat %s: %w", o.SourceURL, err))
				mu.Unlock()
				o.Size, o.SizeHint = -1, max(o.Size, o.SizeHint, 0)
				return nil
			}
			if err != nil {
				return fmt.Errorf("stat %s: %w", o.SourceURL, err)
			}
			fillInfo(o, info)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return failed, nil
}

// fillInfo copies a store's view of an object into it.
func fillInfo(o *Object, info store.ObjectInfo) {
	o.Size = info.Size
	o.ETag = info.ETag
	o.MD5 = info.MD5
	o.CRC32C = info.CRC32C
	o.HasCRC = info.HasCRC
}
