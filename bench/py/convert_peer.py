"""tifffile + zarr-python 2.13 peer of `imgdataset convert IN.tif -o OUT.zarr --levels N`
for bench/convert.sh.

  convert_peer.py IN.tif OUT.zarr LEVELS [CHUNK]

Written the way a competent user would write it without dask: the TIFF is
mapped with tifffile.memmap (uncompressed, contiguous) or else read page by
page with tifffile, one chunk row (CHUNK pages) at a time, into a zarr v2
array with the chunks and compressor imgdataset writes (CHUNK³ clipped to
the array, numcodecs Zstd level 3, "/" separator). Each further level is read back from the one
before in slabs of 2·CHUNK planes, reduced by the 2×2×2 mean with numpy
(rounded half to even, as imgdataset does; a short edge averages what is
there) and written one chunk row at a time, so memory stays a few chunk rows
whatever the input size. The group gets NGFF 0.4 multiscales attributes.
Prints wall and CPU seconds and peak RSS.
"""
import resource
import sys
import time

import numcodecs
import numpy as np
import tifffile
import zarr


def pages(path, chunk):
    """Yields (z0, slab) for consecutive slabs of chunk pages."""
    try:
        m = tifffile.memmap(path, mode="r")
    except ValueError:
        m = None
    if m is not None:
        for z0 in range(0, m.shape[0], chunk):
            yield z0, np.asarray(m[z0:z0 + chunk])
        return
    with tifffile.TiffFile(path) as tf:
        n = len(tf.pages)
        for z0 in range(0, n, chunk):
            yield z0, np.stack([tf.pages[i].asarray() for i in range(z0, min(n, z0 + chunk))])


def shape_of(path):
    with tifffile.TiffFile(path) as tf:
        p = tf.pages[0]
        return (len(tf.pages),) + tuple(p.shape), p.dtype


def mean2(a):
    """2×2×2 mean, rounded half to even; odd edges average what is there."""
    out_shape = tuple((s + 1) // 2 for s in a.shape)
    acc = np.zeros(out_shape, dtype=np.float64)
    cnt = np.zeros(out_shape, dtype=np.float64)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                v = a[dz::2, dy::2, dx::2]
                acc[:v.shape[0], :v.shape[1], :v.shape[2]] += v
                cnt[:v.shape[0], :v.shape[1], :v.shape[2]] += 1
    return np.rint(acc / cnt).astype(a.dtype)


def main():
    src, dst, levels = sys.argv[1], sys.argv[2], int(sys.argv[3])
    chunk = int(sys.argv[4]) if len(sys.argv) > 4 else 128
    t0 = time.perf_counter()
    shape, dtype = shape_of(src)
    comp = numcodecs.Zstd(level=3)
    root = zarr.open_group(dst, mode="w")
    store = root.store

    def create(name, shp):
        return zarr.open_array(store=zarr.storage.DirectoryStore(dst + "/" + name, dimension_separator="/"),
                               mode="w", shape=shp, chunks=tuple(min(chunk, n) for n in shp), dtype=dtype,
                               compressor=comp)

    arrays = [create("s0", shape)]
    for z0, slab in pages(src, chunk):
        arrays[0][z0:z0 + slab.shape[0]] = slab
    for lv in range(1, levels):
        prev = arrays[-1]
        shp = tuple((s + 1) // 2 for s in prev.shape)
        cur = create("s%d" % lv, shp)
        for z0 in range(0, shp[0], chunk):
            cur[z0:z0 + chunk] = mean2(prev[2 * z0:2 * z0 + 2 * chunk])
        arrays.append(cur)
    root.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"],
        "datasets": [{"path": "s%d" % i, "coordinateTransformations": [{"type": "scale", "scale": [2.0 ** i] * 3}]}
                     for i in range(levels)],
    }]
    wall = time.perf_counter() - t0
    r = resource.getrusage(resource.RUSAGE_SELF)
    print("peer %s: shape %s %s levels %d wall %.2f s cpu %.2f s peak_rss %.1f MiB" % (
        src, shape, dtype, levels, wall, r.ru_utime + r.ru_stime, r.ru_maxrss / 1024))


if __name__ == "__main__":
    main()
