#!/usr/bin/env bash
# Side-by-side format benchmarks (docs/benchmarks.md is written from the output):
#   1. header-only inspect of the tiff+dm corpus: imgdataset (one process for all
#      files, and one CLI process per file) vs tifffile + hyperspy (same two ways);
#   2. full decode of a 1 GiB uncompressed uint8 TIFF stack vs `cat file >/dev/null`
#      (cold cache when /proc/sys/vm/drop_caches is writable, and warm), streamed
#      through one reused buffer of 64 MiB (slabs) or 8 MiB (slabs8: fits the
#      CPU caches better, as cat's 128 KiB buffer does), and the
#      peak RSS of `inspect` for the 1 GiB file vs a 10 MiB file;
#   3. reading a 1 GiB int16 Zarr v2 array (64^3 chunks, numcodecs Zstd level 1,
#      written by zarr-python) whole: imgdataset vs zarr-python 2.13 z[:];
#   4. peak RSS of `imgdataset convert` (TIFF -> OME-Zarr) vs chunk edge and source size.
# Each measurement is repeated REPS times (default 3), the tools interleaved, and
# medians are reported; load averages are printed per section because the
# machine is shared. Big files live in a temp dir that is removed at exit.
# Usage: bench/formats.sh [REPS]      (from anywhere inside the repository)
# Env:   PYTHON (default /usr/bin/python3), CORPUS (default /work/shared/testdata),
#        BENCH_TMP (parent of the temp dir, default /tmp), OUT (results file),
#        PARTS (which measurements to run, default "1 2 3 4"; e.g. PARTS="1 2"
#        skips the Zarr and convert parts), PY_PROC_LOOP (0 skips the slow
#        one-python-process-per-file loop of part 1, about 190 s a repetition).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-3}
PY=${PYTHON:-/usr/bin/python3}
CORPUS=${CORPUS:-/work/shared/testdata}
OUT=${OUT:-bench/results/formats-$(date +%Y%m%d-%H%M%S).txt}
PARTS=" ${PARTS:-1 2 3 4} "
PY_PROC_LOOP=${PY_PROC_LOOP:-1}
part() { [[ "$PARTS" == *" $1 "* ]]; }
tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/imgdataset-formats.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$(dirname "$OUT")"
exec > >(tee "$OUT") 2>&1

raw=$tmp/raw.tsv    # label  wall_s  user_s  sys_s  maxrss_KiB   (from /usr/bin/time)
inner=$tmp/inner.txt # label  <the tool's own key value line>
: >"$raw"
: >"$inner"

load() { echo "# load average ($1): $(cut -d' ' -f1-3 /proc/loadavg)"; }

# meas LABEL CMD...: run CMD under /usr/bin/time, keep its stdout as inner lines.
meas() {
	local label=$1
	shift
	if ! /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$@" >"$tmp/stdout" 2>"$tmp/stderr"; then
		echo "FAILED: $label: $*"
		tail -5 "$tmp/stderr"
	fi
	read -r wall user sys rss < <(tail -1 "$tmp/time")
	printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$wall" "$user" "$sys" "$rss" >>"$raw"
	sed "s/^/$label\t/" "$tmp/stdout" >>"$inner"
}

cold=0
drop() { [ "$cold" = 1 ] && sync && echo 3 >/proc/sys/vm/drop_caches; return 0; }
if sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then cold=1; fi

echo "# imgdataset format benchmarks, $(date -u +%FT%TZ)"
echo "# repo $(git rev-parse --short HEAD 2>/dev/null || echo '?'), uncommitted files under format/ volume/ store/ codec/: $(git status --short -- format volume store codec 2>/dev/null | wc -l)"
echo "# $(go version); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "# $("$PY" -c 'import tifffile, zarr, numcodecs, hyperspy; print("tifffile", tifffile.__version__, "zarr", zarr.__version__, "numcodecs", numcodecs.__version__, "hyperspy", hyperspy.__version__)')"
echo "# reps $REPS; parts$PARTS; python per-process loop: $PY_PROC_LOOP; drop_caches writable: $cold; temp dir $tmp"
load start

bin=$tmp/bin
go build -o "$bin/imgdataset" ./cmd/imgdataset
for c in inspectall readall mkvol; do go build -o "$bin/$c" "./bench/cmd/$c"; done

# 1. Header-only inspect of the corpus, read in place.
if part 1; then
find "$CORPUS/tiff" -type f ! -name '.*' | sort >"$tmp/tiff.list"
find "$CORPUS/dm" -type f ! -name '.*' | sort >"$tmp/dm.list"
cat "$tmp/tiff.list" "$tmp/dm.list" >"$tmp/all.list"
load "inspect"
for r in $(seq "$REPS"); do
	for set in tiff dm all; do
		mapfile -t files <"$tmp/$set.list"
		meas "inspect-go-inproc-$set" "$bin/inspectall" -reps 5 "${files[@]}"
		meas "inspect-py-inproc-$set" "$PY" bench/py/inspect_peer.py 5 "${files[@]}"
	done
	meas inspect-go-cli-loop sh -c 'while read -r f; do "$1" inspect --json "$f" >/dev/null 2>&1 || true; done <"$2"' sh "$bin/imgdataset" "$tmp/all.list"
	if [ "$PY_PROC_LOOP" != 0 ]; then
		meas inspect-py-proc-loop sh -c 'while read -r f; do "$1" bench/py/inspect_peer.py 1 "$f" >/dev/null 2>&1 || true; done <"$2"' sh "$PY" "$tmp/all.list"
	fi
done
fi

# 2. 1 GiB uncompressed uint8 TIFF (1024 pages of 1024x1024, format/tiff.Write).
# Part 4 converts big.tif too, so it is generated for either.
if part 2 || part 4; then
load "tiff generate"
meas tiff-generate "$bin/mkvol" -shape 1024,1024,1024 -dtype uint8 -o "$tmp/big.tif"
"$bin/mkvol" -shape 10,1024,1024 -dtype uint8 -o "$tmp/small.tif"
echo "# big.tif $(stat -c %s "$tmp/big.tif") bytes, small.tif $(stat -c %s "$tmp/small.tif") bytes"
fi
if part 2; then
load "tiff decode"
for r in $(seq "$REPS"); do
	if [ "$cold" = 1 ]; then
		drop; meas tiff-cold-cat sh -c 'cat "$1" >/dev/null' sh "$tmp/big.tif"
		drop; meas tiff-cold-slabs "$bin/readall" -mode slabs "$tmp/big.tif"
		drop; meas tiff-cold-slabs8 "$bin/readall" -mode slabs -budget $((8 << 20)) "$tmp/big.tif"
		drop; meas tiff-cold-checksum "$bin/readall" -mode checksum "$tmp/big.tif"
	fi
	cat "$tmp/big.tif" >/dev/null
	meas tiff-warm-cat sh -c 'cat "$1" >/dev/null' sh "$tmp/big.tif"
	meas tiff-warm-slabs "$bin/readall" -mode slabs "$tmp/big.tif"
	meas tiff-warm-slabs8 "$bin/readall" -mode slabs -budget $((8 << 20)) "$tmp/big.tif"
	meas tiff-warm-checksum "$bin/readall" -mode checksum "$tmp/big.tif"
	meas tiff-inspect-1GiB "$bin/imgdataset" inspect --json "$tmp/big.tif"
	meas tiff-inspect-10MiB "$bin/imgdataset" inspect --json "$tmp/small.tif"
done
fi

# 3. 1 GiB int16 Zarr, 64^3 chunks, Zstd level 1, written by zarr-python.
if part 3; then
load "zarr generate"
meas zarr-generate-python "$PY" bench/py/zarr_peer.py gen "$tmp/z.zarr" 512 1024 1024 64 1
echo "# z.zarr stored $(du -sb "$tmp/z.zarr" | cut -f1) bytes for 1073741824 decoded"
load "zarr read"
for r in $(seq "$REPS"); do
	meas zarr-go-full "$bin/readall" -mode full -reps 3 "$tmp/z.zarr"
	meas zarr-py-full "$PY" bench/py/zarr_peer.py read "$tmp/z.zarr" 3
	meas zarr-go1-full env GOMAXPROCS=1 "$bin/readall" -mode full -reps 3 "$tmp/z.zarr"
done
# Slab height vs chunk depth: 64 MiB slabs are 32 planes of a 64-deep chunk grid.
meas zarr-go-slabs-64MiB "$bin/readall" -mode slabs -reps 2 -budget $((64 << 20)) "$tmp/z.zarr"
meas zarr-go-slabs-128MiB "$bin/readall" -mode slabs -reps 2 -budget $((128 << 20)) "$tmp/z.zarr"
meas zarr-go-checksum "$bin/readall" -mode checksum "$tmp/z.zarr"
rm -rf "$tmp/z.zarr"
fi

# 4. OME-Zarr writing: peak RSS vs chunk edge, for a 1 GiB and a 256 MiB source.
if part 4; then
"$bin/mkvol" -shape 256,1024,1024 -dtype uint8 -o "$tmp/quarter.tif"
load "convert"
for r in $(seq "$REPS"); do
	for c in 64 128 256; do
		meas "convert-1GiB-c$c" "$bin/imgdataset" convert "$tmp/big.tif" -o "$tmp/out.zarr" --chunks "$c" --levels 1
		rm -rf "$tmp/out.zarr"
	done
done
for c in 64 128 256; do
	meas "convert-256MiB-c$c" "$bin/imgdataset" convert "$tmp/quarter.tif" -o "$tmp/out.zarr" --chunks "$c" --levels 1
	rm -rf "$tmp/out.zarr"
done
fi
load end

echo
echo "## raw measurements (label wall_s user_s sys_s maxrss_KiB)"
cat "$raw"
echo
echo "## tool output (label, line)"
cat "$inner"
echo
"$PY" bench/py/formats_summary.py "$raw" "$inner" "$cold" "$PARTS"
