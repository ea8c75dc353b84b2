#!/usr/bin/env bash
# 1 GiB int16 zstd Zarr read whole, imgdataset against zarr-python 2.13, side
# by side in one run (issue 15): per CPU-second and by wall clock.
#
#   bench/zarr.sh [REPS]      (default 3; from anywhere inside the repository)
#
# The array is 512×1024×1024 int16, 64³ chunks, numcodecs Zstd level 1, written
# by zarr-python (bench/py/zarr_peer.py). Each repetition runs, interleaved so
# that load changes hit all alike, one process of each reader that reads the
# array three times: pass 0 into a fresh buffer (first-touch page faults
# included; both sides ask for huge pages, as numpy does), passes 1-2 into the
# same buffer. Readers: imgdataset with libzstd (the default when the library
# loads), imgdataset with IMGDATASET_ZSTD=go (pure-Go klauspost/compress),
# imgdataset on one core (GOMAXPROCS=1), and zarr-python z[:]. Then the zstd
# decoders alone on the same chunks (bench/cmd/zstdbench, one thread).
# Medians over repetitions; CPU = user + system of the pass (getrusage).
# Env: PYTHON (default /usr/bin/python3), BENCH_TMP (default /tmp), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-3}
PY=${PYTHON:-/usr/bin/python3}
OUT=${OUT:-bench/results/zarr-$(date +%Y%m%d-%H%M%S).txt}
tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/imgdataset-zarr.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$(dirname "$OUT")"
exec > >(tee "$OUT") 2>&1

echo "# bench/zarr.sh $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)$(if [ -n "$(git status --porcelain -- codec format store volume 2>/dev/null)" ]; then echo ' + uncommitted changes'; fi)"
echo "# $(go version); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# $("$PY" -c 'import zarr, numcodecs, numpy; print("zarr", zarr.__version__, "numcodecs", numcodecs.__version__, "numpy", numpy.__version__)'); libzstd $(ls /usr/lib/*/libzstd.so.1.* 2>/dev/null | sed 's/.*\.so\.//' | head -1)"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
go build -o "$tmp/readall" ./bench/cmd/readall
go build -o "$tmp/zstdbench" ./bench/cmd/zstdbench
"$PY" bench/py/zarr_peer.py gen "$tmp/z.zarr" 512 1024 1024 64 1 >/dev/null
echo "# z.zarr: $(du -sb "$tmp/z.zarr" | cut -f1) bytes stored for 1073741824 decoded"

raw=$tmp/raw.tsv # reader rep pass wall cpu
: >"$raw"
# keep LABEL REP: turn a reader's pass lines into rows of $raw.
keep() {
	awk -v l="$1" -v r="$2" '{ for (i = 1; i < NF; i++) { if ($i == "rep") p = $(i+1); if ($i == "read_s") w = $(i+1); if ($i == "user_s") u = $(i+1); if ($i == "sys_s") s = $(i+1) }
		printf "%s\t%s\t%s\t%s\t%.2f\n", l, r, p, w, u + s }' >>"$raw"
}
for r in $(seq "$REPS"); do
	echo "# rep $r, load $(cut -d' ' -f1-3 /proc/loadavg)"
	"$tmp/readall" -mode full -reps 3 "$tmp/z.zarr" | keep go-libzstd "$r"
	"$PY" bench/py/zarr_peer.py read "$tmp/z.zarr" 3 | keep zarr-python "$r"
	IMGDATASET_ZSTD=go "$tmp/readall" -mode full -reps 3 "$tmp/z.zarr" | keep go-purego "$r"
	GOMAXPROCS=1 "$tmp/readall" -mode full -reps 3 "$tmp/z.zarr" | keep go-libzstd-1core "$r"
done
echo "# raw rows: reader rep pass wall_s cpu_s"
cat "$raw"
echo
echo "# zstd decoders alone, same chunks (the first 256 chunk files), one thread, MB decoded per CPU-second:"
(cd "$tmp/z.zarr" && ls | grep -v '^\.' | head -256 >"$tmp/list")
(cd "$tmp/z.zarr" && "$tmp/zstdbench" -rounds 5 $(cat "$tmp/list"))
echo
"$PY" - "$raw" <<'PY'
import sys, statistics as st
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
def med(reader, first):
    ws = [float(r[3]) for r in rows if r[0] == reader and (r[2] == "0") == first]
    cs = [float(r[4]) for r in rows if r[0] == reader and (r[2] == "0") == first]
    return (st.median(ws), st.median(cs)) if ws else (float("nan"), float("nan"))
print("%-18s %-12s %8s %8s %14s %14s" % ("reader", "pass", "wall_s", "cpu_s", "wall vs py", "per-CPU vs py"))
for first, name in ((True, "first"), (False, "reused buffer")):
    pw, pc = med("zarr-python", first)
    for reader in ("go-libzstd", "go-purego", "go-libzstd-1core", "zarr-python"):
        w, c = med(reader, first)
        print("%-18s %-12s %8.2f %8.2f %13.2fx %13.2fx" % (reader, name, w, c, pw / w, pc / c))
PY
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
