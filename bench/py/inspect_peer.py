"""Header-only inspect with the Python peers, for bench/formats.sh.

TIFF: tifffile.TiffFile(path).series[0].shape/dtype plus the ImageJ metadata
and the X/YResolution/ResolutionUnit tags (no pixel reads). DM: hyperspy
hs.load(path, lazy=True) shape and axes (the lazy load maps the data, it does
not read it).

Usage: inspect_peer.py REPS FILE...   prints the same one-line summary as
bench/cmd/inspectall (median wall time of one pass over all files, import
time excluded and printed apart).
"""
import logging
import statistics
import sys
import time
import warnings

logging.disable(logging.CRITICAL)
warnings.simplefilter("ignore")


tifffile = hs = None


def is_tiff(p):
    return p.lower().endswith((".tif", ".tiff"))


def inspect_tiff(p):
    with tifffile.TiffFile(p) as t:
        s = t.series[0]
        out = {"shape": tuple(s.shape), "dtype": str(s.dtype), "imagej": t.imagej_metadata}
        tags = t.pages[0].tags
        for name in ("XResolution", "YResolution", "ResolutionUnit"):
            tag = tags.get(name)
            out[name] = tag.value if tag is not None else None
        return out


def inspect_dm(p):
    s = hs.load(p, lazy=True)
    sigs = s if isinstance(s, list) else [s]
    out = []
    for x in sigs:
        axes = [(a.name, a.size, a.scale, a.offset, a.units) for a in x.axes_manager._axes]
        out.append({"shape": tuple(x.data.shape), "dtype": str(x.data.dtype), "axes": axes})
    return out


def one(p):
    if is_tiff(p):
        return inspect_tiff(p)
    return inspect_dm(p)


def main():
    reps = int(sys.argv[1])
    files = sorted(sys.argv[2:])
    # Import only what the files need, as a one-format script would.
    global tifffile, hs
    t0 = time.perf_counter()
    if any(is_tiff(p) for p in files):
        import tifffile
    t1 = time.perf_counter()
    if not all(is_tiff(p) for p in files):
        import hyperspy.api as hs
    t2 = time.perf_counter()
    times, failed = [], 0
    for r in range(reps):
        failed = 0
        start = time.perf_counter()
        for p in files:
            try:
                one(p)
            except Exception as e:  # noqa: BLE001 - a peer failure is counted, not fatal
                failed += 1
                if r == 0:
                    print("fail:", p, type(e).__name__, str(e)[:200], file=sys.stderr)
        times.append(time.perf_counter() - start)
    med = statistics.median(times)
    print("files %d failed %d reps %d median_pass_s %.6f per_file_ms %.4f min_pass_s %.6f import_tifffile_s %.3f import_hyperspy_s %.3f"
          % (len(files), failed, len(times), med, med * 1000 / len(files), min(times), t1 - t0, t2 - t1))


if __name__ == "__main__":
    main()
