"""Summary of bench/formats.sh: medians, ratios and the targets.

Usage: formats_summary.py RAW.tsv INNER.txt COLD(0|1) [PARTS]
PARTS lists the measurements that ran (default "1 2 3 4"); only those are summarised.
RAW rows: label wall_s user_s sys_s maxrss_KiB (one per process, /usr/bin/time).
INNER rows: label TAB the tool's own "key value ..." line.
"""
import re
import statistics
import sys
from collections import defaultdict

GIB = 1 << 30
raw = defaultdict(list)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if len(f) == 5:
        try:
            raw[f[0]].append(tuple(float(x) for x in f[1:]))
        except ValueError:
            pass
inner = defaultdict(list)
KEY = re.compile(r"\b(files|failed|median_pass_s|per_file_ms|rep|read_s|open_s|user_s|sys_s|maxrss_MiB|MBps) (\S+)")
for line in open(sys.argv[2]):
    label, _, rest = line.rstrip("\n").partition("\t")
    kv = {k: float(v) for k, v in KEY.findall(rest)}
    if kv:
        inner[label].append(kv)
cold = sys.argv[3] == "1"
parts = set((sys.argv[4] if len(sys.argv) > 4 else "1 2 3 4").split())


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def wall(label):
    return med([r[0] for r in raw[label]])


def cpu(label):
    return med([r[1] + r[2] for r in raw[label]])


def rss_mib(label):
    return med([r[3] / 1024 for r in raw[label]])


def verdict(ok):
    return "MET" if ok else "NOT MET"


def n(label):
    return len(raw[label])


def part1():
    print("### 1. header-only inspect, tiff+dm corpus (%s files)" % int(med([x["files"] for x in inner["inspect-go-inproc-all"]])))
    print("in one process (median pass of 5, median over reps); ratio = python / go")
    print("%-6s %12s %12s %8s %8s %7s" % ("set", "go ms/file", "py ms/file", "fail go", "fail py", "ratio"))
    ratio_all = None
    for s in ("tiff", "dm", "all"):
        g = med([x["per_file_ms"] for x in inner["inspect-go-inproc-" + s]])
        p = med([x["per_file_ms"] for x in inner["inspect-py-inproc-" + s]])
        fg = med([x["failed"] for x in inner["inspect-go-inproc-" + s]])
        fp = med([x["failed"] for x in inner["inspect-py-inproc-" + s]])
        r = p / g
        if s == "all":
            ratio_all = r
        print("%-6s %12.4f %12.4f %8d %8d %6.1fx" % (s, g, p, fg, fp, r))
    gw, gc = wall("inspect-go-cli-loop"), cpu("inspect-go-cli-loop")
    tiff_ratio = med([x["per_file_ms"] for x in inner["inspect-py-inproc-tiff"]]) / med([x["per_file_ms"] for x in inner["inspect-go-inproc-tiff"]])
    if n("inspect-py-proc-loop") == 0:
        print("one process per file (whole corpus, %d reps): imgdataset inspect --json %.2f s wall %.2f s cpu; python loop not run"
              % (n("inspect-go-cli-loop"), gw, gc))
        print("target >= 10x: in-process %s (%.1fx; tiff only %.1fx)" % (verdict(ratio_all >= 10), ratio_all, tiff_ratio))
        print()
        return
    pw, pc = wall("inspect-py-proc-loop"), cpu("inspect-py-proc-loop")
    print("one process per file (whole corpus, %d reps): imgdataset inspect --json %.2f s wall %.2f s cpu; python %.2f s wall %.2f s cpu; ratio %.1fx wall %.1fx cpu"
          % (n("inspect-go-cli-loop"), gw, gc, pw, pc, pw / gw, pc / gc))
    print("target >= 10x: in-process %s (%.1fx; tiff only %.1fx), per-process %s (%.1fx)" % (verdict(ratio_all >= 10), ratio_all, tiff_ratio, verdict(pw / gw >= 10), pw / gw))
    print()


def part2():
    print("### 2. 1 GiB uncompressed uint8 TIFF: decode vs cat (process wall incl. header parse)")
    for mode in (["cold"] if cold else []) + ["warm"]:
        c = wall("tiff-%s-cat" % mode)
        for what in ("slabs8", "slabs", "checksum"):
            t = wall("tiff-%s-%s" % (mode, what))
            if n("tiff-%s-%s" % (mode, what)) == 0:
                continue
            print("%s: cat %.2f s (%.0f MB/s), readall %-8s %.2f s (%.0f MB/s) = %3.0f%% of cat; cpu cat %.2f s, readall %.2f s  -> target >= 70%%: %s"
                  % (mode, c, GIB / c / 1e6, what, t, GIB / t / 1e6, 100 * c / t, cpu("tiff-%s-cat" % mode), cpu("tiff-%s-%s" % (mode, what)), verdict(c / t >= 0.7)))
    if not cold:
        print("(drop_caches not writable: warm cache only)")
    b, s = rss_mib("tiff-inspect-1GiB"), rss_mib("tiff-inspect-10MiB")
    print("inspect --json peak RSS: 1 GiB file %.1f MiB, 10 MiB file %.1f MiB (ratio %.2f; wall %.3f s vs %.3f s)"
          % (b, s, b / s, wall("tiff-inspect-1GiB"), wall("tiff-inspect-10MiB")))
    print("peak RSS: slabs %.0f MiB (64 MiB buffer), slabs8 %.0f MiB (8 MiB buffer), checksum %.0f MiB"
          % (rss_mib("tiff-warm-slabs"), rss_mib("tiff-warm-slabs8") if n("tiff-warm-slabs8") else float("nan"), rss_mib("tiff-warm-checksum")))
    print()


def part3():
    print("### 3. 1 GiB int16 Zarr, 64^3 chunks, zstd 1 (zarr-python written): whole-array read")


    def passes(label, first):
        xs = [x for x in inner[label] if (x.get("rep") == 0) == first]
        return med([x["read_s"] for x in xs]), med([x["user_s"] + x["sys_s"] for x in xs])


    rows = [("imgdataset, all cores", "zarr-go-full"), ("imgdataset, GOMAXPROCS=1", "zarr-go1-full"), ("zarr-python 2.13 z[:]", "zarr-py-full")]
    for first, name in ((True, "first pass (allocates the 1 GiB result)"), (False, "later passes (same buffer reused)")):
        print(name + ":")
        pyw, pyc = passes("zarr-py-full", first)
        for title, label in rows:
            w, c = passes(label, first)
            print("  %-26s %6.2f s  %6.0f MB/s  cpu %5.2f s   py/this %.2fx" % (title, w, GIB / w / 1e6, c, pyw / w))
    gw, _ = passes("zarr-go-full", True)
    pw, _ = passes("zarr-py-full", True)
    gw2, _ = passes("zarr-go-full", False)
    pw2, _ = passes("zarr-py-full", False)
    print("process peak RSS: imgdataset %.0f MiB, GOMAXPROCS=1 %.0f MiB, zarr-python %.0f MiB"
          % (rss_mib("zarr-go-full"), rss_mib("zarr-go1-full"), rss_mib("zarr-py-full")))
    print("target >= 3x: first pass %s (%.2fx), reused buffer %s (%.2fx)" % (verdict(pw / gw >= 3), pw / gw, verdict(pw2 / gw2 >= 3), pw2 / gw2))
    for label in ("zarr-go-slabs-64MiB", "zarr-go-slabs-128MiB", "zarr-go-checksum"):
        xs = inner[label]
        print("%-22s read %s s, cpu %s s per pass" % (label, " ".join("%.2f" % x["read_s"] for x in xs), " ".join("%.2f" % (x["user_s"] + x["sys_s"]) for x in xs)))
    print()


def part4():
    print("### 4. convert TIFF -> OME-Zarr (--levels 1): peak RSS vs chunk edge")
    print("%-6s %10s %14s %16s %16s %12s" % ("chunk", "chunk MiB", "chunk-row MiB", "RSS 1GiB src MiB", "RSS 256MiB src", "wall 1GiB s"))
    for c in (64, 128, 256):
        print("%-6d %10.2f %14.0f %16.0f %16.0f %12.1f" % (c, c ** 3 / 2 ** 20, c * 1024 * 1024 / 2 ** 20, rss_mib("convert-1GiB-c%d" % c), rss_mib("convert-256MiB-c%d" % c), wall("convert-1GiB-c%d" % c)))


print("## summary (medians over repetitions; ratios of medians)")
print()
for num, fn in ((1, part1), (2, part2), (3, part3), (4, part4)):
    if str(num) in parts:
        fn()
