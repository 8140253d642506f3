#!/usr/bin/env bash
# The dashboard while a collector commits (issues 13, 16): `teiten serve` over the store that
# bench/run_queries.sh built, while COMMITS captures of 1,000 packets of one sensor-hour are
# committed into its last day, one after another. Measures, in one run:
#   1. the server's work for each new snapshot (its log: answers taken over from the snapshot
#      before, and the time to make the default answers that are left), against the first
#      snapshot's, which made them all (what every snapshot cost when none were taken over);
#   2. after each commit, the first answer of the last day's quarter (touched by the commit), of
#      the quarter before it and of the one before that (not touched: the server warms the first
#      with the defaults, the second in its pass over earlier quarters), with curl.
# The captures are forgotten afterwards (`teiten forget`), so the store holds what it held.
# Prints Markdown for docs/BENCHMARKS.md.
#   bench/run_web_commits.sh SENSORS PACKETS_PER_SENSOR_QUARTER [COMMITS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/serve_lib.sh
S=${1:?sensors}
P=${2:?packets per sensor per quarter}
COMMITS=${3:-5}
DIR=${BENCH_DIR:-/var/tmp/teiten-bench}/queries-$S-$P
B=${BUILD_DIR:-build}
T=$B/src/cli/teiten
[ -f "$DIR/built" ] || { echo "no store in $DIR: run bench/run_queries.sh $S $P first" >&2; exit 1; }
OUT=$(mktemp -d)
"$T" serve --store "$DIR/store" --listen 127.0.0.1:0 2>"$OUT/serve.err" &
SERVE=$!
COMMITTED=()
cleanup() {
  kill $SERVE 2>/dev/null || true
  wait $SERVE 2>/dev/null || true
  for f in "${COMMITTED[@]}"; do "$T" forget --config "$DIR/teiten.toml" --input "$f" >/dev/null; done
  rm -rf "$OUT"
}
trap cleanup EXIT
wait_serve_port "$OUT/serve.err"
wait_warm() {  # wait_warm N: until the server has warmed N snapshots
  wait_log "$OUT/serve.err" "default answers made" "$1" ||
    { echo "the server did not warm snapshot $1" >&2; exit 1; }
}
wait_earlier() {  # wait_earlier N: until N passes over earlier quarters ended (if any: 120 s)
  wait_log "$OUT/serve.err" "earlier quarters' answers made" "$1" || true
}
wait_warm 1
wait_earlier 1
LAST=$(curl -sf "$BASE/api/v1/" | python3 -c "import json,sys; print(json.load(sys.stdin)['last_day'])")
Q=$(python3 -c "import sys; y,m,_=sys.argv[1].split('-'); print(f'{y}Q{(int(m)-1)//3+1}')" "$LAST")
before() {  # the quarter before a quarter's label
  python3 -c "import sys; y,q=map(int,sys.argv[1].split('Q')); print(f'{y-(q==1)}Q{4 if q==1 else q-1}')" "$1"
}
QB=$(before "$Q")
QE=$(before "$QB")
ms() { curl -s -o /dev/null -w '%{time_total}' "$BASE$1" | awk '{printf "%.1f", $1 * 1000}'; }
echo "Store: $DIR/store; $(nproc) cores; $(date -u +%F); last day $LAST ($Q), quarter before: $QB"
echo
echo "| snapshot | answers taken over | default answers made in (ms) | earlier quarters (ms) | summary $Q (ms) | summary $QB (ms) | findings $QB (ms) | summary $QE (ms) | findings $QE (ms) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
line() {  # line N: the Nth warm line's figures, and the Nth pass over earlier quarters' time
  sed -n 's/.*: \([0-9]*\) answers taken over; default answers made in \([0-9]*\) ms/\1 \2/p' \
    "$OUT/serve.err" | sed -n "${1}p" | tr '\n' ' '
  sed -n "s/.*earlier quarters' answers made in \([0-9]*\) ms/\1/p" "$OUT/serve.err" |
    sed -n "${1}p"
}
read -r took made earlier <<<"$(line 1)"
echo "| first (nothing to take over) | $took | $made | ${earlier:--} | $(ms "/api/v1/summary?period=$Q") | $(ms "/api/v1/summary?period=$QB") | $(ms "/api/v1/findings?period=$QB") | $(ms "/api/v1/summary?period=$QE") | $(ms "/api/v1/findings?period=$QE") |"
for c in $(seq 1 "$COMMITS"); do
  "$B/bench/teiten-gen-trace" --packets 1000 --sources 200 --seed "$(date +%s%N)" --start "$LAST" \
    --days 1 --monitored "10.1.0.0/24" --ranges-csv "$DIR/ranges.csv" --out "$OUT/c$c.pcap" >/dev/null
  "$T" ingest --config "$DIR/teiten.toml" --sensor s1 "$OUT/c$c.pcap" >/dev/null
  COMMITTED+=("$OUT/c$c.pcap")  # forgotten by path afterwards
  # The server moves to the new snapshot on the next request (or its refresher's tick).
  curl -sf -o /dev/null "$BASE/api/v1/"
  wait_warm $((c + 1))
  wait_earlier $((c + 1))
  read -r took made earlier <<<"$(line $((c + 1)))"
  echo "| after commit $c | $took | $made | ${earlier:--} | $(ms "/api/v1/summary?period=$Q") | $(ms "/api/v1/summary?period=$QB") | $(ms "/api/v1/findings?period=$QB") | $(ms "/api/v1/summary?period=$QE") | $(ms "/api/v1/findings?period=$QE") |"
done
