#!/usr/bin/env bash
# Converting a TIFF stack to OME-Zarr with a 4-level pyramid (issue 16):
#   1. imgdataset convert BIG.tif -o OUT.zarr --levels 4 (OME-NGFF 0.4, zarr v2,
#      128³ chunks, zstd level 3) against bench/py/convert_peer.py, the same
#      conversion written with tifffile + zarr-python 2.13 + numpy (same chunks,
#      compressor and 2×2×2 mean), on a 2 GiB uint8 stack (2048 pages of
#      1024×1024, EM-like texture from bench/cmd/mkvol);
#   2. the same with 4 shards on this machine: the xargs line of
#      docs/scale-out.md (4 processes of --shard I/4, each with GOMAXPROCS its
#      share of the cores, then finalize), and the same line without
#      GOMAXPROCS, against one process;
#   3. peak RSS of both tools at two input sizes (2 GiB and 256 MiB).
# Before timing, both tools convert the small stack and every level of the two
# outputs is compared value for value (they must do the same work).
# Runs are interleaved per round (RUNS, default 3) so that the load of the
# shared machine hits every tool alike; medians of wall and CPU seconds
# (user+sys, children included) are reported, with the load average.
# Usage: bench/convert.sh            (from anywhere inside the repository)
# Env:   RUNS, BIG_Z (pages of the big stack, default 2048), SMALL_Z (256),
#        PYTHON (default /usr/bin/python3), BENCH_TMP (default /tmp), OUT,
#        PEER (default 1; 0 leaves out the peer and its check: only one
#        process against 4 shards, ~7 min instead of ~25).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BIG_Z=${BIG_Z:-2048}
SMALL_Z=${SMALL_Z:-256}
PY=${PYTHON:-/usr/bin/python3}
PEER=${PEER:-1}
OUT=${OUT:-bench/results/convert-$(date +%Y%m%d-%H%M%S).txt}
tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/imgdataset-convert.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$(dirname "$OUT")"
exec > >(tee "$OUT") 2>&1

raw=$tmp/raw.tsv # label wall_s user_s sys_s maxrss_KiB
: >"$raw"
load() { echo "# load average ($1): $(cut -d' ' -f1-3 /proc/loadavg)"; }

# meas LABEL CMD...: run CMD under /usr/bin/time; a failure is printed and
# its row dropped, so a median never includes a failed run.
meas() {
	local label=$1
	shift
	if ! /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$@" >"$tmp/stdout" 2>"$tmp/stderr"; then
		echo "FAILED: $label: $*"
		tail -5 "$tmp/stderr"
		return 0
	fi
	read -r wall user sys rss < <(tail -1 "$tmp/time")
	printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$wall" "$user" "$sys" "$rss" | tee -a "$raw"
}

echo "# imgdataset convert benchmark, $(date -u +%FT%TZ)"
echo "# repo $(git rev-parse --short HEAD 2>/dev/null || echo '?'), uncommitted files: $(git status --short 2>/dev/null | wc -l)"
echo "# $(go version); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "# $("$PY" -c 'import tifffile, zarr, numcodecs, numpy; print("tifffile", tifffile.__version__, "zarr", zarr.__version__, "numcodecs", numcodecs.__version__, "numpy", numpy.__version__)')"
echo "# runs $RUNS; big ${BIG_Z}x1024x1024 uint8, small ${SMALL_Z}x1024x1024; temp dir $tmp"
load start

bin=$tmp/bin
go build -o "$bin/imgdataset" ./cmd/imgdataset
go build -o "$bin/mkvol" ./bench/cmd/mkvol
export PATH=$bin:$PATH
shards=1
if ! imgdataset convert --help | grep -q -- '--shard'; then
	shards=0
	echo "# imgdataset convert has no --shard: the 4-shard runs are skipped"
fi

mkvol -shape "$BIG_Z,1024,1024" -dtype uint8 -o "$tmp/big.tif"
mkvol -shape "$SMALL_Z,1024,1024" -dtype uint8 -o "$tmp/small.tif"
ls -l "$tmp/big.tif" "$tmp/small.tif" | awk '{print "# input", $NF, $5, "bytes"}'

# The two tools must write the same arrays: every level of the small stack.
if [ "$PEER" = 1 ]; then
imgdataset convert "$tmp/small.tif" -o "$tmp/check-go.zarr" --levels 4 >/dev/null
"$PY" bench/py/convert_peer.py "$tmp/small.tif" "$tmp/check-py.zarr" 4
"$PY" - "$tmp/check-go.zarr" "$tmp/check-py.zarr" <<'EOF'
import sys
import numpy as np
import zarr
a, b = zarr.open_group(sys.argv[1], mode="r"), zarr.open_group(sys.argv[2], mode="r")
for lv in ("s0", "s1", "s2", "s3"):
    x, y = a[lv], b[lv]
    assert x.shape == y.shape and x.chunks == y.chunks and x.dtype == y.dtype, (lv, x, y)
    assert x.compressor == y.compressor, (lv, x.compressor, y.compressor)
    assert np.array_equal(x[:], y[:]), lv
    print("# check: %s %s %s %s equal in both outputs" % (lv, x.shape, x.dtype, x.compressor))
EOF
rm -rf "$tmp/check-go.zarr" "$tmp/check-py.zarr"
else
	echo "# PEER=0: the peer and the output check are left out"
fi

for r in $(seq "$RUNS"); do
	load "round $r"
	meas "imgdataset-big" imgdataset convert "$tmp/big.tif" -o "$tmp/o.zarr" --levels 4
	rm -rf "$tmp/o.zarr"
	if [ "$PEER" = 1 ]; then
		meas "peer-big" "$PY" bench/py/convert_peer.py "$tmp/big.tif" "$tmp/p.zarr" 4
		rm -rf "$tmp/p.zarr"
	fi
	if [ "$shards" = 1 ]; then
		# The xargs line of docs/scale-out.md, on the big stack: each task
		# gets GOMAXPROCS = its share of the cores.
		meas "imgdataset-4shards-big" bash -c "cd '$tmp' && seq 0 3 | GOMAXPROCS=\$(( (\$(nproc) + 3) / 4 )) xargs -P 4 -I{} imgdataset convert big.tif -o s.zarr --levels 4 --shard {}/4 && imgdataset finalize s.zarr"
		rm -rf "$tmp/s.zarr"
		# The same without GOMAXPROCS: four tasks that each size their
		# workers and heap for the whole machine.
		meas "imgdataset-4shards-allcores-big" bash -c "cd '$tmp' && seq 0 3 | xargs -P 4 -I{} imgdataset convert big.tif -o s.zarr --levels 4 --shard {}/4 && imgdataset finalize s.zarr"
		rm -rf "$tmp/s.zarr"
	fi
	meas "imgdataset-small" imgdataset convert "$tmp/small.tif" -o "$tmp/o.zarr" --levels 4
	rm -rf "$tmp/o.zarr"
	if [ "$PEER" = 1 ]; then
		meas "peer-small" "$PY" bench/py/convert_peer.py "$tmp/small.tif" "$tmp/p.zarr" 4
		rm -rf "$tmp/p.zarr"
	fi
done
load end

"$PY" - "$raw" "$BIG_Z" <<'EOF'
import statistics as st
import sys
rows = {}
for line in open(sys.argv[1]):
    label, wall, user, sys_, rss = line.split("\t")
    rows.setdefault(label, []).append((float(wall), float(user) + float(sys_), int(rss) / 1024))
med = {k: tuple(st.median(x[i] for x in v) for i in range(3)) for k, v in rows.items()}
gb = int(sys.argv[2]) * 1024 * 1024 / 1e9
print("\n# medians (n = runs)\n%-24s %3s %9s %9s %9s %8s" % ("label", "n", "wall s", "cpu s", "MB/s", "RSS MiB"))
for k, (w, c, m) in med.items():
    mbs = ("%9.1f" % (gb * 1000 / w)) if k.endswith("big") else "%9s" % "-"
    print("%-24s %3d %9.2f %9.2f %s %8.0f" % (k, len(rows[k]), w, c, mbs, m))
def ratio(a, b, i):
    return med[a][i] / med[b][i] if a in med and b in med else float("nan")
print("\n# ratios")
print("speed vs peer, big (peer wall / imgdataset wall): %.2fx (target >= 2x)" % ratio("peer-big", "imgdataset-big", 0))
print("CPU vs peer, big (peer cpu / imgdataset cpu):     %.2fx" % ratio("peer-big", "imgdataset-big", 1))
print("4 shards vs 1 process, wall (1 / 4 shards):      %.2fx (target >= 1.0x)" % ratio("imgdataset-big", "imgdataset-4shards-big", 0))
print("4 shards vs 1 process, cpu (4 shards / 1):       %.2fx" % ratio("imgdataset-4shards-big", "imgdataset-big", 1))
print("same, tasks without GOMAXPROCS, wall:           %.2fx" % ratio("imgdataset-big", "imgdataset-4shards-allcores-big", 0))
print("same, tasks without GOMAXPROCS, cpu:             %.2fx" % ratio("imgdataset-4shards-allcores-big", "imgdataset-big", 1))
print("imgdataset peak RSS, big / small input:          %.2fx (%.0f vs %.0f MiB; target: independent of size)" % (
    ratio("imgdataset-big", "imgdataset-small", 2), med.get("imgdataset-big", (0, 0, 0))[2], med.get("imgdataset-small", (0, 0, 0))[2]))
print("peer peak RSS, big / small input:                %.2fx (%.0f vs %.0f MiB)" % (
    ratio("peer-big", "peer-small", 2), med.get("peer-big", (0, 0, 0))[2], med.get("peer-small", (0, 0, 0))[2]))
EOF
