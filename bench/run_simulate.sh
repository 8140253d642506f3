#!/usr/bin/env bash
# Generation benchmark (issue 3, point 6: ≥ 10 M packets/s, memory bounded). Times, whole
# process, in one run on one disk:
#   1. `teiten simulate` tsubame-2018q3 at full telescope scale (--scale 1: ≈ 1.5 M packets per
#      /24 sensor per day, 2 M sources) for a slice of DAYS days of 2018 Q3, 10 sensors, to disk;
#   2. the same slice to /dev/shm (tmpfs: generation without the device);
#   3. references: the device alone (dd of the same number of bytes with O_DIRECT) and the bare
#      generator (two teiten-gen-trace processes, one per core, same packets in all, to disk);
#   4. the whole scenario (2018 Q2 and Q3, 1,830 sensor-days) at --scale 0.1, to disk;
#   5. the demo's run (shipped scale 0.002, --compress --days-per-file 31).
# Each is the median of RUNS runs (5 is run once). Prints a Markdown table for
# docs/BENCHMARKS.md ("Trace generation"). Needs ≈ 25 GB free under BENCH_DIR.
#   bench/run_simulate.sh [DAYS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
DAYS=${1:-7}
RUNS=${2:-3}
B=${BUILD_DIR:-build}
T=$B/src/cli/teiten
DIR=${BENCH_DIR:-/var/tmp/teiten-bench}/simulate
SHM=/dev/shm/teiten-bench-simulate
mkdir -p "$DIR"
trap 'rm -rf "$SHM" "$DIR/out" "$DIR/gt" "$DIR/dd"' EXIT
RANGES=var/geo/ranges.csv
if [ ! -f "$RANGES" ]; then
  printf '[store]\npath = "%s/store"\n[geo]\ncountry_db = "%s"\nasn_db = "%s"\n' "$DIR" \
    "$PWD/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb" \
    "$PWD/var/geo/asn.mmdb" >"$DIR/geo.toml"
  "$T" geo --config "$DIR/geo.toml" --ranges-csv "$RANGES" >/dev/null
fi
LAST=$(printf '2018-07-%02d' "$DAYS")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$(lscpu | sed -n 's/^Model name: *//p' | head -1), commit $(git rev-parse --short HEAD)" >&2

# Runs "$@" RUNS times after clearing OUT each time; prints "wall user sys maxrss_kb" of the
# median wall run.
timed() {
  local out=$1 runs=$2
  shift 2
  for _ in $(seq 1 "$runs"); do
    rm -rf "$out"
    sync
    /usr/bin/time -f '%e %U %S %M' -o "$DIR/time" "$@" >"$DIR/log" 2>&1 || { cat "$DIR/log" >&2; exit 1; }
    cat "$DIR/time"
  done | sort -n | sed -n "$(((runs + 1) / 2))p"
}
packets_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['packets'])" "$1/ground_truth.json"; }
row() {  # name packets "wall user sys kb"
  read -r wall user sys kb <<<"$3"
  python3 -c "
import sys
name, p, wall, user, sys_, kb = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
print(f'| {name} | {p:,} | {wall:.2f} s | {user:.1f} + {sys_:.1f} s | {p / wall / 1e6:.1f} | {p / (user + sys_) / 1e6:.1f} | {kb / 1024:,.0f} MB |')
" "$1" "$2" "$wall" "$user" "$sys" "$kb"
}

SLICE=(simulate --scenario tsubame-2018q3 --scale 1 --days "2018-07-01..$LAST" --ranges-csv "$RANGES")
echo "| run | packets | wall | user + sys | M packets/s | M packets/CPU-s | peak RSS |"
echo "|---|---:|---:|---:|---:|---:|---:|"
t=$(timed "$DIR/out" "$RUNS" "$T" "${SLICE[@]}" --out "$DIR/out")
p=$(packets_of "$DIR/out")
bytes=$(du -sb "$DIR/out" | cut -f1)
row "simulate, scale 1, $DAYS days × 10 sensors, to disk" "$p" "$t"
t=$(timed "$SHM" "$RUNS" "$T" "${SLICE[@]}" --out "$SHM")
row "same, to /dev/shm" "$p" "$t"
rm -rf "$SHM"
t=$(timed "$DIR/dd" "$RUNS" dd if=/dev/zero of="$DIR/dd" bs=1M count=$((bytes >> 20)) oflag=direct)
row "reference: dd of the same $((bytes >> 20)) MiB, O_DIRECT" "$p" "$t"
rm -f "$DIR/dd"
half=$((p / 2))
t=$(timed "$DIR/gt" "$RUNS" sh -c "mkdir -p '$DIR/gt'; $B/bench/teiten-gen-trace --packets $half --sources 2000000 --seed 1 --out '$DIR/gt/1.pcap' & $B/bench/teiten-gen-trace --packets $half --sources 2000000 --seed 2 --out '$DIR/gt/2.pcap'; wait")
row "reference: bare generator, 2 processes, to disk" "$((2 * half))" "$t"
rm -rf "$DIR/gt"
t=$(timed "$DIR/out" 1 "$T" simulate --scenario tsubame-2018q3 --scale 0.1 --ranges-csv "$RANGES" --out "$DIR/out")
row "simulate, whole scenario (Q2 + Q3), scale 0.1, to disk" "$(packets_of "$DIR/out")" "$t"
t=$(timed "$DIR/out" "$RUNS" "$T" simulate --scenario tsubame-2018q3 --ranges-csv "$RANGES" \
  --days-per-file 31 --compress --out "$DIR/out")
row "simulate, the demo's run (scale 0.002, --compress)" "$(packets_of "$DIR/out")" "$t"
