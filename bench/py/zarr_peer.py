"""zarr-python 2.13 peer for bench/formats.sh.

  zarr_peer.py gen PATH Z Y X CHUNK LEVEL   write an int16 array, numcodecs Zstd(LEVEL)
  zarr_peer.py read PATH [REPS]             time z[:] (whole array into one ndarray),
                                            then REPS-1 more passes into the same ndarray

The values are a smooth ramp plus 6 bits of noise, like bench/cmd/mkvol, so
the compression ratio is in the range of real EM data. read prints, per
pass, the decoded bytes, wall time, MB/s (10^6 bytes/s), CPU seconds and the
peak RSS.
"""
import resource
import sys
import time

import numcodecs
import numpy as np
import zarr


def gen(path, z, y, x, chunk, level):
    a = zarr.open(path, mode="w", shape=(z, y, x), chunks=(chunk, chunk, chunk), dtype="<i2",
                  compressor=numcodecs.Zstd(level=level))
    rng = np.random.default_rng(0)
    yy, xx = np.meshgrid(np.arange(y, dtype=np.int64), np.arange(x, dtype=np.int64), indexing="ij")
    for z0 in range(0, z, chunk):
        z1 = min(z, z0 + chunk)
        zz = np.arange(z0, z1, dtype=np.int64)[:, None, None]
        v = (xx[None] + 2 * yy[None] + 3 * zz) // 8 + rng.integers(0, 64, size=(z1 - z0, y, x))
        a[z0:z1] = (v % 4096).astype("<i2")
    print("wrote", path, a.shape, a.chunks, a.compressor, "stored bytes", a.nbytes_stored)


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def read(path, reps):
    z = zarr.open(path, mode="r")
    out = None
    for r in range(reps):
        u0, s0 = cpu()
        t0 = time.perf_counter()
        if out is None:
            out = z[:]  # the call the issue names; allocates the result
        else:
            z.get_basic_selection(Ellipsis, out=out)  # same decode into the same buffer: no first-touch faults
        dt = time.perf_counter() - t0
        u1, s1 = cpu()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("zarr-python %s rep %d bytes %d read_s %.4f MBps %.1f user_s %.2f sys_s %.2f maxrss_MiB %.1f"
              % (zarr.__version__, r, out.nbytes, dt, out.nbytes / dt / 1e6, u1 - u0, s1 - s0, rss), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], *map(int, sys.argv[3:8]))
    else:
        read(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
