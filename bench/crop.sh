#!/bin/sh
# Crops 1000³ uint8 voxels from a 1152³ sharded JPEG (q75, 64³ chunks)
# Neuroglancer precomputed volume served on loopback with 20 ms added to every
# request, writes OME-Zarr, and compares the voxel rate with cores × the
# single-core image/jpeg decode rate of the volume's own chunks, measured in
# the same run. Also reports requests per chunk/shard and the crop process's
# peak RSS (/usr/bin/time -v). Two routes: precomputed over plain HTTP from a
# file server, and over gs:// from the GCS mirror (the mirror package).
#
# Usage: bench/crop.sh   (from anywhere inside the repository)
# Environment:
#   CROPBENCH_DIR    where the source volume is written (default /tmp/imgdataset-cropbench);
#                    an existing volume there is reused
#   CROPBENCH_KEEP=1 keep the source volume afterwards (it is deleted otherwise)
#   CROPBENCH_MODES  routes to run (default "file gcs")
#   CROPBENCH_WORKERS  e.g. "8": extra experimental runs (volume.Copy with that many workers)
#   CROPBENCH_SIZE, CROPBENCH_CROP, CROPBENCH_ORIGIN, CROPBENCH_LATENCY  (1152, 1000, 64, 20ms)
#   CROPBENCH_HASH   sharding hash of a generated volume (murmurhash3_x86_128, as hemibrain; or identity)
#   CROPBENCH_PROFILES=DIR  keep each crop's CPU profile (and the binary) in DIR for pprof
#   CROPBENCH_REPS   crops per route (default 1); figures of each are printed
#   CROPBENCH_DECODE_TIME  length of each single-core decode measurement (default 4s)
# Results go to stdout and bench/results/crop-<date>.txt; a CPU profile of
# each crop is summarised (pprof -top) in the same file.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
dir=${CROPBENCH_DIR:-/tmp/imgdataset-cropbench}
modes=${CROPBENCH_MODES:-file gcs}
size=${CROPBENCH_SIZE:-1152}
crop=${CROPBENCH_CROP:-1000}
origin=${CROPBENCH_ORIGIN:-64}
latency=${CROPBENCH_LATENCY:-20ms}
stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p bench/results
res="$root/bench/results/crop-$stamp.txt"
tmp=$(mktemp -d)
srv=
cleanup() {
	if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; fi
	rm -rf "$tmp"
	rm -rf "$dir"/out-*.zarr
	if [ "${CROPBENCH_KEEP:-0}" != 1 ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT INT TERM

go build -o "$tmp/cropbench" ./bench/cmd/cropbench
{
	echo "# bench/crop.sh $stamp"
	echo "# $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(if [ -n "$(git status --porcelain 2>/dev/null)" ]; then echo ' + uncommitted changes'; fi)"
	echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$res"
"$tmp/cropbench" gen -dir "$dir" -size "$size" -hash "${CROPBENCH_HASH:-murmurhash3_x86_128}" | tee -a "$res"

# run_crop ROUTE LABEL [cropbench crop flags…]: one served run, appended to $res.
run_crop() {
	mode=$1
	label=$2
	shift 2
	rm -f "$tmp/addr.json"
	"$tmp/cropbench" serve -dir "$dir" -mode "$mode" -latency "$latency" -addr-file "$tmp/addr.json" &
	srv=$!
	i=0
	while [ ! -s "$tmp/addr.json" ]; do
		i=$((i + 1))
		if [ $i -gt 600 ]; then echo "server did not start" >&2; exit 1; fi
		sleep 0.1
	done
	echo "## $label" | tee -a "$res"
	rm -rf "$dir/out-$mode.zarr"
	/usr/bin/time -v -o "$tmp/time.txt" "$tmp/cropbench" crop -dir "$dir" -addr-file "$tmp/addr.json" -mode "$mode" \
		-decode-time "${CROPBENCH_DECODE_TIME:-4s}" -origin "$origin" -size "$crop" -out "$dir/out-$mode.zarr" -cpuprofile "$tmp/$mode.pprof" "$@" | tee -a "$res"
	awk -F': ' '/Maximum resident set size/ { printf "peak RSS:         %.0f MB (crop process, /usr/bin/time -v)\n", $2 / 1024 }
		/Elapsed \(wall clock\)/ { print "process wall:     " $2 }' "$tmp/time.txt" | tee -a "$res"
	# The server shares the machine's cores: its CPU (whole life, startup
	# included) is time the crop did not have.
	awk -v t="$(getconf CLK_TCK)" '{ printf "server CPU:       %.2f s (serve process, /proc/PID/stat)\n", ($14 + $15) / t }' "/proc/$srv/stat" | tee -a "$res"
	echo "CPU profile (pprof -top):" >>"$res"
	go tool pprof -top -nodecount=25 "$tmp/cropbench" "$tmp/$mode.pprof" 2>/dev/null |
		sed -n '1,32p' | sed 's/^/  /' >>"$res" || true
	if [ -n "${CROPBENCH_PROFILES:-}" ]; then
		mkdir -p "$CROPBENCH_PROFILES"
		cp "$tmp/$mode.pprof" "$CROPBENCH_PROFILES/$mode-$stamp-$(date +%H%M%S).pprof"
		cp "$tmp/cropbench" "$CROPBENCH_PROFILES/cropbench"
	fi
	rm -rf "$dir/out-$mode.zarr"
	kill "$srv"
	wait "$srv" 2>/dev/null || true
	srv=
}

for mode in $modes; do
	for r in $(seq "${CROPBENCH_REPS:-1}"); do
		run_crop "$mode" "route $mode: pipeline.Crop (run $r)"
	done
done
# CROPBENCH_WORKERS="8 16": also copy the same window with volume.Copy and that
# many workers over the file route, to show the effect of more requests in flight.
for w in ${CROPBENCH_WORKERS:-}; do
	run_crop file "route file: experiment, volume.Copy with $w workers" -workers "$w"
done
echo "results: $res"
