#!/bin/sh
# JPEG decode rate per core: imgdataset's codec/jpeg (libjpeg-turbo through
# purego, and the image/jpeg fallback) against PIL on libjpeg-turbo (the
# decoder CloudVolume's simplejpeg and tensorstore also use), on the same
# chunk files, in the same run, interleaved, 3 rounds.
#
# Chunks: 32 synthetic EM-texture 64³ chunks stored as 64×4096 grey images at
# quality 75, once encoded by PIL/libjpeg (as Neuroglancer's writers store
# them) and once by image/jpeg (as imgdataset's precomputed writer does).
# Rate: megapixels per CPU-second of the decoding thread (getrusage
# RUSAGE_THREAD for Go, process_time for the single-threaded Python), so that
# other load on the machine dilutes it less than wall time; each figure is at
# least JPEGBENCH_MIN (default 3s) of CPU. Each decode writes a new buffer.
#
# Usage: bench/jpeg.sh   (from anywhere inside the repository)
# Environment: JPEGBENCH_ROUNDS (3), JPEGBENCH_MIN (3s), JPEGBENCH_CHUNKS (32)
# Results: stdout and bench/results/jpeg-<date>.txt (raw JSON lines, then the summary).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
rounds=${JPEGBENCH_ROUNDS:-3}
min=${JPEGBENCH_MIN:-3s}
n=${JPEGBENCH_CHUNKS:-32}
py=/usr/bin/python3
stamp=$(date +%Y%m%d-%H%M%S)
# The tree's state before this run's own result file exists.
commit="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(if [ -n "$(git status --porcelain 2>/dev/null)" ]; then echo ' + uncommitted changes'; fi)"
mkdir -p bench/results
res="$root/bench/results/jpeg-$stamp.txt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

if ! $py -c 'import PIL.Image' 2>/dev/null; then
	echo "bench/jpeg.sh: $py has no PIL (apt-get install python3-pil): nothing to compare with" >&2
	exit 1
fi
go build -o "$tmp/jpegbench" ./bench/cmd/jpegbench
{
	echo "# bench/jpeg.sh $stamp"
	echo "# $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3), commit $commit"
	echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# $n chunks of 64x4096 px per set; >= $min CPU per figure; $rounds rounds"
} | tee "$res"
"$tmp/jpegbench" gen -dir "$tmp/chunks" -n "$n"
$py bench/py/jpeg_peer.py encode "$tmp/chunks/raw" "$tmp/chunks/pil-q75"
secs=$(echo "$min" | sed 's/s$//')
r=1
while [ "$r" -le "$rounds" ]; do
	for set in pil-q75 go-q75; do
		"$tmp/jpegbench" rate -dir "$tmp/chunks/$set" -impl libjpeg-turbo -min "$min" | tee -a "$res"
		$py bench/py/jpeg_peer.py rate "$tmp/chunks/$set" "$secs" | tee -a "$res"
		"$tmp/jpegbench" rate -dir "$tmp/chunks/$set" -impl go -min "$min" | tee -a "$res"
	done
	r=$((r + 1))
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$res"
$py - "$res" <<'PY' | tee -a "$res"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
sets = sorted({r["set"] for r in rows})
print("\n## summary: median Mpx per CPU-second of one thread (min-max over rounds)")
for s in sets:
    by = {}
    for r in rows:
        if r["set"] == s:
            by.setdefault(r["tool"], []).append(r["mpx_per_cpu_s"])
    pil = next((statistics.median(v) for k, v in by.items() if k.startswith("PIL")), None)
    print("set %s:" % s)
    for tool, v in sorted(by.items()):
        m = statistics.median(v)
        ratio = " = %.2fx PIL" % (m / pil) if pil else ""
        print("  %-50s %7.1f  (%.1f-%.1f, n=%d)%s" % (tool, m, min(v), max(v), len(v), ratio))
PY
