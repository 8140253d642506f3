#!/usr/bin/env bash
# Report benchmark: times `teiten report --period 2018Q3 --format html` in Japanese and English
# over the store bench/run_queries.sh builds (run that first), whole process including opening
# the store; the median of RUNS runs after one warm-up. Prints a Markdown table for
# docs/BENCHMARKS.md ("Reports").
#   bench/run_report.sh SENSORS PACKETS_PER_SENSOR_QUARTER [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:?sensors}
P=${2:?packets per sensor per quarter}
RUNS=${3:-5}
DIR=${BENCH_DIR:-/var/tmp/teiten-bench}/queries-$S-$P
B=${BUILD_DIR:-build}
CFG="$DIR/teiten.toml"
[ -f "$DIR/built" ] || { echo "no store in $DIR: run bench/run_queries.sh $S $P first" >&2; exit 1; }
packets=$(python3 -c "import json,sys; print(sum(i['kept'] for i in json.load(open(sys.argv[1]))['inputs']))" "$DIR/store/MANIFEST")
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
median() {  # median wall ms of RUNS runs of a command (after one warm-up)
  "$@" >/dev/null
  for _ in $(seq 1 "$RUNS"); do
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))
  done | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}
row=""
for lang in ja en; do
  ms=$(median "$B/src/cli/teiten" report --config "$CFG" --period 2018Q3 --lang "$lang" \
    --format html -o "$OUT/report-$lang.html")
  row="$row | $ms ms"
  # What the report says it holds (its summary line), to stderr.
  "$B/src/cli/teiten" report --config "$CFG" --period 2018Q3 --lang "$lang" --format html \
    -o "$OUT/report-$lang.html" | tail -1 >&2
done
echo
echo "| store | packets | report 2018Q3 ja, html | report 2018Q3 en, html |"
echo "|---|---:|---:|---:|"
echo "| up to $S sensors × 2 quarters | $packets$row |"
