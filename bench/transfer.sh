#!/usr/bin/env bash
# Measures the download engine beside its peers, in one run, on one loopback
# mirror (bench/cmd/benchmirror: 20 ms added before every request, 25 MB/s per
# response and so per HTTP/1.1 connection):
#
#   1. one large file (default 2 GB):  imgdataset run  vs  aria2c -x16 -s16  vs  curl (one stream)
#   2. 20,000 objects of 32 KiB behind a directory listing (a flat zarr-like store):
#      imgdataset run (listing resolver: the index; no HEADs beyond 1,000 unsized files, sizes come with the GETs)
#      vs  rclone copy --transfers 64 (http remote: index + a HEAD per file, then GETs)
#      vs  a sequential /usr/bin/python3 urllib loop over the URL list (the seed scripts' way)
#      and benchtransfer (transfer.Run alone on pre-sized objects: no listing, no HEAD)
#   3. peak RSS of imgdataset (/usr/bin/time -v) for the large file and for a 10× smaller one.
#
# MB/s is 10^6 bytes per second of wall time, from process start to exit. Each
# tool's output is compared with the served bytes. Results go to stdout and to
# bench/results/transfer-<date>-<time>.txt. Tools missing after one apt-get attempt are
# skipped with a note.
#
# Usage: bench/transfer.sh   (from anywhere inside the repository)
# Knobs (environment): BIG_BYTES=2000000000 MID_BYTES=200000000 N_SMALL=20000
#   SMALL_BYTES=32768 RUNS=2 CURL_RUNS=1 PY_OBJECTS=2000 (0 = all N_SMALL)
#   LATENCY=20ms RATE=25000000 BENCH_TMP=/tmp (where ~3 GB of data and outputs go)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

BIG_BYTES=${BIG_BYTES:-2000000000}
MID_BYTES=${MID_BYTES:-200000000}
N_SMALL=${N_SMALL:-20000}
SMALL_BYTES=${SMALL_BYTES:-32768}
RUNS=${RUNS:-2}
CURL_RUNS=${CURL_RUNS:-1}
PY_OBJECTS=${PY_OBJECTS:-2000}
LATENCY=${LATENCY:-20ms}
RATE=${RATE:-25000000}
PY=/usr/bin/python3

work=$(mktemp -d "${BENCH_TMP:-/tmp}/imgdataset-bench.XXXXXX")
srv_pid=
cleanup() {
	if [ -n "$srv_pid" ]; then kill "$srv_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

mkdir -p bench/results
results=bench/results/transfer-$(date +%Y%m%d-%H%M%S).txt
: >"$results"
say() { echo "$*" | tee -a "$results"; }

# --- peers -------------------------------------------------------------------
missing=()
for t in aria2c rclone curl; do command -v "$t" >/dev/null || missing+=("$t"); done
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing peers (missing: ${missing[*]})" >&2
	pkgs=()
	for t in "${missing[@]}"; do case $t in aria2c) pkgs+=(aria2) ;; *) pkgs+=("$t") ;; esac; done
	{ apt-get update -qq && apt-get install -y -qq "${pkgs[@]}"; } >/dev/null 2>&1 || echo "apt-get install ${pkgs[*]} failed" >&2
fi
have() { command -v "$1" >/dev/null; }

# --- build ---------------------------------------------------------------------
bin=$work/bin
mkdir -p "$bin"
go build -o "$bin/imgdataset" ./cmd/imgdataset
go build -o "$bin/benchmirror" ./bench/cmd/benchmirror
go build -o "$bin/benchtransfer" ./bench/cmd/benchtransfer

# --- data and server -----------------------------------------------------------
data=$work/data
mkdir -p "$data"
"$bin/benchmirror" gen-file "$data/big.bin" "$BIG_BYTES"
"$bin/benchmirror" gen-file "$data/mid.bin" "$MID_BYTES"
"$bin/benchmirror" gen-tree "$data/store" "$N_SMALL" "$SMALL_BYTES"
"$bin/benchmirror" serve -root "$data" -latency "$LATENCY" -rate "$RATE" -url-file "$work/url" 2>"$work/server.log" &
srv_pid=$!
for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
base=$(cat "$work/url")
stats() { curl -s "$base/_stats?reset=1"; }

say "imgdataset transfer benchmark  $(date -u +%Y-%m-%dT%H:%MZ)  commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)$(git diff --quiet 2>/dev/null || echo +dirty)"
say "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "server:  benchmirror on $base, +$LATENCY per request, $RATE B/s per response (HTTP/1.1, keep-alive)"
first() { "$@" 2>/dev/null | sed -n 1p; } # no SIGPIPE under pipefail, unlike head -1
say "peers:   $(have aria2c && first aria2c --version || echo 'aria2c missing') | $(have rclone && first rclone version || echo 'rclone missing') | $(first curl --version | cut -d' ' -f1-2) | Python $($PY -c 'import sys; print(sys.version.split()[0])')"
say ""

# timed NAME BYTES CMD... : runs CMD, records wall seconds in $work/times.tsv.
# imgdataset runs go through /usr/bin/time -v for the peak RSS.
timed() {
	local name=$1 bytes=$2
	shift 2
	local t0 t1 rc=0 rss=-
	stats >/dev/null
	t0=$(date +%s.%N)
	if [ "$1" = "$bin/imgdataset" ] && [ -x /usr/bin/time ]; then
		/usr/bin/time -v -o "$work/time.txt" "$@" >"$work/cmd.out" 2>"$work/cmd.err" || rc=$?
		rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time.txt")
	else
		"$@" >"$work/cmd.out" 2>"$work/cmd.err" || rc=$?
	fi
	t1=$(date +%s.%N)
	last_t0=$t0 last_t1=$t1
	local s req
	s=$(echo "$t1 - $t0" | bc)
	req=$(stats)
	if [ "$rc" != 0 ]; then
		say "  $name: FAILED (exit $rc): $(tail -3 "$work/cmd.err" | tr '\n' ' ')"
		return 1
	fi
	printf '%s\t%s\t%s\t%s\n' "$name" "$bytes" "$s" "$rss" >>"$work/times.tsv"
	local line
	line=$(awk -v n="$name" -v b="$bytes" -v s="$s" -v r="$rss" -v q="$req" 'BEGIN {
		printf "  %-44s %8.2f s %8.1f MB/s   %s", n, s, b / s / 1e6, q
		if (r != "-") printf "  peak RSS %.0f MiB", r / 1024
	}')
	say "$line"
}

# phases FILE T0 : splits an imgdataset run with --progress json into resolve
# (start → the transfer's plan event), transfer (plan → last dataset_done) and
# the rest (reading/cataloguing → exit).
phases() {
	$PY - "$1" "$2" "$3" <<'EOF' | tee -a "$results"
import sys, json, datetime
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
plan = done = None
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    ev = json.loads(line)
    t = datetime.datetime.fromisoformat(ev["time"][:26].rstrip("Z") + "+00:00").timestamp()
    if ev["type"] == "plan" and plan is None:
        plan = t
    if ev["type"] == "dataset_done":
        done = t
if plan and done:
    print("      phases: resolve %.2f s, transfer %.2f s, read+catalog %.2f s" % (plan - t0, done - plan, t1 - done))
EOF
}

same() { cmp -s "$1" "$2" || { say "  OUTPUT DIFFERS: $2"; return 1; }; }

# --- 1. one large file -----------------------------------------------------------
cat >"$work/big.yaml" <<EOF
version: 1
datasets:
  - {name: big, url: "$base/big.bin", kind: file}
EOF
cat >"$work/mid.yaml" <<EOF
version: 1
datasets:
  - {name: mid, url: "$base/mid.bin", kind: file}
EOF
out=$work/out
say "== 1. one file of $BIG_BYTES bytes (load $(cut -d' ' -f1 /proc/loadavg))"
for r in $(seq "$RUNS"); do
	rm -rf "$out"
	timed "big imgdataset run (#$r)" "$BIG_BYTES" "$bin/imgdataset" run "$work/big.yaml" --out "$out" --progress json --no-convert &&
		phases "$work/cmd.err" "$last_t0" "$last_t1" && same "$data/big.bin" "$out/big/big.bin" || true
	rm -rf "$out"
	if have aria2c; then
		timed "big aria2c -x16 -s16 (#$r)" "$BIG_BYTES" aria2c -x16 -s16 -q --file-allocation=none --allow-overwrite=true -d "$out" -o big.bin "$base/big.bin" &&
			same "$data/big.bin" "$out/big.bin" || true
		rm -rf "$out"
	fi
	if [ "$r" -le "$CURL_RUNS" ]; then
		mkdir -p "$out"
		timed "big curl, one stream (#$r)" "$BIG_BYTES" curl -sS -o "$out/big.bin" "$base/big.bin" && same "$data/big.bin" "$out/big.bin" || true
		rm -rf "$out"
	fi
done
timed "big benchtransfer (engine alone)" "$BIG_BYTES" "$bin/benchtransfer" -base "$base/" -name big.bin -size "$BIG_BYTES" -out "$out" || true
rm -rf "$out"

# --- 3. memory: same run on a 10x smaller file ---------------------------------------
say ""
say "== 3. memory: imgdataset on $MID_BYTES bytes (load $(cut -d' ' -f1 /proc/loadavg))"
timed "mid imgdataset run" "$MID_BYTES" "$bin/imgdataset" run "$work/mid.yaml" --out "$out" --progress none --no-convert &&
	same "$data/mid.bin" "$out/mid/mid.bin" || true
rm -rf "$out"

# --- 2. many small objects -------------------------------------------------------
cat >"$work/store.yaml" <<EOF
version: 1
datasets:
  - {name: store, url: "$base/store/", kind: listing}
EOF
small_total=$((N_SMALL * SMALL_BYTES))
check_tree() { # DIR: every object present with the right bytes (a sample of 50 compared)
	local n
	n=$(find "$1" -type f | wc -l)
	[ "$n" = "$N_SMALL" ] || { say "  WRONG OBJECT COUNT in $1: $n"; return 1; }
	for f in $(awk 'NR % 400 == 1' "$data/store.names"); do same "$data/store/$f" "$1/$f" || return 1; done
}
say ""
say "== 2. $N_SMALL objects of $SMALL_BYTES bytes behind a listing (load $(cut -d' ' -f1 /proc/loadavg))"
for r in $(seq "$RUNS"); do
	rm -rf "$out"
	timed "small imgdataset run (#$r)" "$small_total" "$bin/imgdataset" run "$work/store.yaml" --out "$out" --progress json --no-convert &&
		phases "$work/cmd.err" "$last_t0" "$last_t1" && check_tree "$out/store" || true
	rm -rf "$out"
	timed "small imgdataset run --per-host 64 (#$r)" "$small_total" "$bin/imgdataset" run "$work/store.yaml" --out "$out" --progress json --no-convert --per-host 64 &&
		phases "$work/cmd.err" "$last_t0" "$last_t1" && check_tree "$out/store" || true
	rm -rf "$out"
	if have rclone; then
		timed "small rclone --transfers 64 (#$r)" "$small_total" rclone copy --config /dev/null --http-url "$base/store/" :http: "$out" --transfers 64 &&
			check_tree "$out" || true
		rm -rf "$out"
		timed "small rclone --transfers 64 --checkers 64 (#$r)" "$small_total" rclone copy --config /dev/null --http-url "$base/store/" :http: "$out" --transfers 64 --checkers 64 &&
			check_tree "$out" || true
		rm -rf "$out"
	fi
done
timed "small benchtransfer (engine, 16/host)" "$small_total" "$bin/benchtransfer" -base "$base/store/" -names "$data/store.names" -size "$SMALL_BYTES" -out "$out" || true
rm -rf "$out"
timed "small benchtransfer (engine, 64/host)" "$small_total" "$bin/benchtransfer" -base "$base/store/" -names "$data/store.names" -size "$SMALL_BYTES" -out "$out" -per-host 64 || true
rm -rf "$out"
# The same on tmpfs, where fsync costs nothing: how much of the engine's time is
# the per-file durable commit (temp file, fsync, rename, journal).
if [ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 {print $4}')" -gt $((small_total / 1024 * 2)) ]; then
	shm=$(mktemp -d /dev/shm/imgdataset-bench.XXXXXX)
	timed "small benchtransfer (64/host, out on tmpfs)" "$small_total" "$bin/benchtransfer" -base "$base/store/" -names "$data/store.names" -size "$SMALL_BYTES" -out "$shm/out" -per-host 64 || true
	rm -rf "$shm"
fi
py_n=$PY_OBJECTS
[ "$py_n" -gt 0 ] && [ "$py_n" -lt "$N_SMALL" ] || py_n=$N_SMALL
head -n "$py_n" "$data/store.names" >"$work/py.names"
mkdir -p "$out"
timed "small python3 urllib loop ($py_n obj)" "$((py_n * SMALL_BYTES))" $PY - "$base/store/" "$work/py.names" "$out" <<'EOF' || true
import os, shutil, sys, urllib.request
base, names, out = sys.argv[1:4]
for name in open(names).read().split():
    with urllib.request.urlopen(base + name) as r, open(os.path.join(out, name), "wb") as f:
        shutil.copyfileobj(r, f)
EOF
rm -rf "$out"

# --- summary ---------------------------------------------------------------------
say ""
say "== summary (ratio = imgdataset MB/s / peer MB/s, of the medians over runs; load now $(cut -d' ' -f1-3 /proc/loadavg))"
$PY - "$work/times.tsv" "$BIG_BYTES" <<'EOF' | tee -a "$results"
import sys, statistics, re
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
big = int(sys.argv[2])
by = {}
rss = {}
for name, b, s, r in rows:
    key = re.sub(r" \(#\d+\)$", "", name)
    by.setdefault(key, []).append(int(b) / float(s) / 1e6)
    if r != "-":
        rss.setdefault(key, []).append(int(r))
rate = {k: statistics.median(v) for k, v in by.items()}
best = {k: max(v) for k, v in by.items()}
for k, v in rate.items():
    print("  %-44s %8.1f MB/s median, %8.1f best  (%d run%s)" % (k, v, best[k], len(by[k]), "" if len(by[k]) == 1 else "s"))
def ratio(a, b, target, label):
    if a not in rate or b not in rate:
        print("  %-62s skipped (a tool is missing or failed)" % label)
        return
    x, xb = rate[a] / rate[b], best[a] / best[b]
    verdict = ("MET" if x >= target else "NOT MET") if target else "(no target)"
    print("  %-62s %6.2fx (best/best %.2fx)  %s %s" % (label, x, xb, "target >= %gx" % target if target else "", verdict))
print()
ratio("big imgdataset run", "big aria2c -x16 -s16", 1.0, "1a. large file: imgdataset / aria2c -x16 -s16")
ratio("big imgdataset run", "big curl, one stream", 8.0, "1b. large file: imgdataset / curl")
ratio("big benchtransfer (engine alone)", "big aria2c -x16 -s16", 0, "1a'. large file: engine alone / aria2c")
ratio("small imgdataset run", "small rclone --transfers 64", 1.0, "2a. small: imgdataset (default) / rclone --transfers 64")
ratio("small imgdataset run --per-host 64", "small rclone --transfers 64", 1.0, "2a'. small: imgdataset --per-host 64 / rclone --transfers 64")
ratio("small imgdataset run --per-host 64", "small rclone --transfers 64 --checkers 64", 1.0, "2a''. small: imgdataset --per-host 64 / rclone + --checkers 64")
ratio("small benchtransfer (engine, 64/host)", "small benchtransfer (64/host, out on tmpfs)", 0, "2c. small: engine on ext4 / engine on tmpfs (fsync cost)")
py = [k for k in rate if k.startswith("small python3 urllib loop")]
if py:
    ratio("small imgdataset run", py[0], 10.0, "2b. small: imgdataset (default) / python3 loop")
if "big imgdataset run" in rss and "mid imgdataset run" in rss:
    a, b = max(rss["big imgdataset run"]), max(rss["mid imgdataset run"])
    print("  %-62s %6.2fx  (%.0f MiB vs %.0f MiB; target: independent of size)" % (
        "3. peak RSS, large file / 10x smaller file", a / b, a / 1024, b / 1024))
EOF
say ""
say "(results also in $results)"
