#!/bin/sh
# Compares the pure-Go Blosc1 decoder with c-blosc (python3-blosc) on the same
# 4 MiB int16 chunk (lz4, byte shuffle, level 5, as numcodecs' default).
# Go runs with GOMAXPROCS=1 and with all cores, c-blosc with nthreads=1 and
# nthreads=cores. Prints MB/s (10^6 bytes of decoded data per second), best
# of ROUNDS one-second runs each, and the Go/C ratios at equal parallelism.
# The rounds alternate Go and C so that both sides see the same load on a
# shared machine; the load average is printed before and after. For the
# 1-core pair it also prints decoded bytes per CPU-second of the process
# (GC threads included on the Go side), which a busy machine disturbs less.
# Usage: bench/blosc.sh   (from anywhere inside the repository)
#        ROUNDS=5 PYTHON=/usr/bin/python3 BENCH_RAW=1 bench/blosc.sh   (BENCH_RAW: also print every run)
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
ROUNDS=${ROUNDS:-5}
NCPU=$(getconf _NPROCESSORS_ONLN)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

go test -c -o "$tmp/codec.test" ./codec/
BLOSC_BENCH_CHUNK="$tmp/chunk.blosc" "$tmp/codec.test" -test.count=1 -test.run '^TestWriteBenchChunk$' >/dev/null

have_c=1
if ! "$PY" -c 'import blosc' 2>/dev/null; then
	have_c=0
	echo "python3-blosc not importable; install Debian python3-blosc for the C figures" >&2
fi

# One round of c-blosc: a one-second run with 1 thread, then one with NCPU.
cat >"$tmp/c.py" <<'EOF'
import sys, time, blosc
enc = open(sys.argv[1], "rb").read()
ncpu = int(sys.argv[2])
n = len(blosc.decompress(enc))
for threads in (1, ncpu):
    blosc.set_nthreads(threads)
    reps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        blosc.decompress(enc)
        reps += 1
        dt = time.perf_counter() - t0
        if dt > 1.0:
            break
    print("c%d %.1f" % (threads, n * reps / dt / 1e6))
    if threads == 1:
        print("cpu-c1 %.1f" % (n * reps / (time.process_time() - c0) / 1e6))
print("version %s" % blosc.blosclib_version.split()[0])
print("sizes %d %d" % (len(enc), n))
EOF

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	"$tmp/codec.test" -test.run '^$' -test.bench '^BenchmarkBloscLZ4Decode$' \
		-test.benchtime 1s -test.cpu "1,$NCPU" >>"$tmp/results"
	if [ "$have_c" = 1 ]; then
		"$PY" "$tmp/c.py" "$tmp/chunk.blosc" "$NCPU" >>"$tmp/results"
	fi
	i=$((i + 1))
done
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

[ -n "${BENCH_RAW:-}" ] && cat "$tmp/results" >&2
awk -v ncpu="$NCPU" -v rounds="$ROUNDS" '
function keep(k, v) { if (v > best[k]) best[k] = v }
/^BenchmarkBloscLZ4Decode/ {
	p = 1
	if (match($1, /-[0-9]+$/)) p = substr($1, RSTART + 1)
	for (i = 1; i <= NF; i++) {
		if ($i == "MB/s") keep("go" p, $(i - 1))
		if ($i == "cpu-MB/s") keep("cpu-go" p, $(i - 1))
	}
}
/^c[0-9]+ / || /^cpu-c1 / { keep($1, $2) }
/^version / { version = $2 }
/^sizes / { printf "chunk:   %d bytes -> %d bytes (ratio %.2f)\n", $2, $3, $3 / $2 }
END {
	printf "go:      %.0f MB/s (GOMAXPROCS=1), %.0f MB/s (GOMAXPROCS=%d)   best of %d\n", best["go1"], best["go" ncpu], ncpu, rounds
	if (version == "") exit
	printf "c-blosc %s: %.0f MB/s (1 thread), %.0f MB/s (%d threads)   best of %d\n", version, best["c1"], best["c" ncpu], ncpu, rounds
	printf "go/c:    %.2f (1 core), %.2f (%d cores)\n", best["go1"] / best["c1"], best["go" ncpu] / best["c" ncpu], ncpu
	if (best["cpu-go1"] > 0 && best["cpu-c1"] > 0)
		printf "per CPU-second, 1 core: go %.0f MB/s, c %.0f MB/s, go/c %.2f\n", best["cpu-go1"], best["cpu-c1"], best["cpu-go1"] / best["cpu-c1"]
}' "$tmp/results" | awk '!seen[$0]++'
