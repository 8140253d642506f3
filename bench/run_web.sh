#!/usr/bin/env bash
# Web benchmark (issue 13): `teiten serve` over the store bench/run_queries.sh builds (run that
# first). Measures, in one run:
#   1. each API endpoint's first answer after the server started (a fresh snapshot: nothing
#      remembered) and its second, with curl;
#   2. each dashboard page in headless Chromium, from navigation until every chart is drawn
#      (tests/web/browser_check.mjs, puppeteer-core from npm ci, Debian's chromium);
#   3. CLIENTS concurrent keep-alive clients for SECONDS over the endpoints and pages
#      (tests/web/load.py): answers, errors, p50/p95/p99.
# Prints Markdown for docs/BENCHMARKS.md ("Web").
#   bench/run_web.sh SENSORS PACKETS_PER_SENSOR_QUARTER [CLIENTS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/serve_lib.sh
S=${1:?sensors}
P=${2:?packets per sensor per quarter}
CLIENTS=${3:-50}
SECONDS_=${4:-60}
DIR=${BENCH_DIR:-/var/tmp/teiten-bench}/queries-$S-$P
B=${BUILD_DIR:-build}
[ -f "$DIR/built" ] || { echo "no store in $DIR: run bench/run_queries.sh $S $P first" >&2; exit 1; }
packets=$(python3 -c "import json,sys; print(sum(i['kept'] for i in json.load(open(sys.argv[1]))['inputs']))" "$DIR/store/MANIFEST")
OUT=$(mktemp -d)
"$B/src/cli/teiten" serve --store "$DIR/store" --listen 127.0.0.1:0 2>"$OUT/serve.err" &
SERVE=$!
trap 'kill $SERVE 2>/dev/null; wait $SERVE 2>/dev/null; rm -rf "$OUT"' EXIT
wait_serve_port "$OUT/serve.err"
# The server makes the default pages' answers (the quarter's findings, MUSTAN, top tables) for
# each new snapshot before users ask: time it, then measure pages as a user arriving after it.
wait_log "$OUT/serve.err" "default answers made" 1 || true
WARM=$(sed -n 's/.*default answers made in \([0-9]*\) ms/\1/p' "$OUT/serve.err" | head -1)
# Then it answers ahead the quarters before those (up to eight; none in a store of one quarter).
wait_log "$OUT/serve.err" "earlier quarters' answers made" 1 || true
EARLIER=$(sed -n "s/.*: \([0-9]*\) earlier quarters' answers made in \([0-9]*\) ms/\1 quarters in \2 ms/p" "$OUT/serve.err" | head -1)
# The busiest port and a source of it, from the store itself.
TOP_PORT=$(curl -sf "$BASE/api/v1/top/ports?period=2018Q3&n=1" |
  python3 -c "import json,sys; print(json.load(sys.stdin)['rows'][0]['key'])")
SRC=$(curl -sf "$BASE/api/v1/sources?period=2018Q3&port=$TOP_PORT&n=1" |
  python3 -c "import json,sys; d=json.load(sys.stdin); print(d['sources'][0]['address'])")
PORT_Q=$(python3 -c "import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1]))" "$TOP_PORT")
ENDPOINTS=(
  "/api/v1/top/ports?period=2018Q3"
  "/api/v1/top/countries?period=2018Q3"
  "/api/v1/summary?period=2018Q3"
  "/api/v1/series?period=2018Q3&port=$PORT_Q"
  "/api/v1/series?period=2018Q3&by_country=$PORT_Q"
  "/api/v1/sources?period=2018Q3&port=$PORT_Q"
  "/api/v1/sensors"
  "/api/v1/ip/$SRC"
)
echo "Store: $DIR/store, $(printf "%'d" "$packets") packets; $(nproc) cores; $(date -u +%F)"
echo "Default answers made by the server after opening the snapshot: ${WARM:-?} ms; then earlier quarters: ${EARLIER:-none}"
echo
echo "| endpoint | first answer (ms) | second (ms) |"
echo "|---|---:|---:|"
for e in "${ENDPOINTS[@]}"; do
  t1=$(curl -s -o /dev/null -w '%{time_total}' "$BASE$e")
  t2=$(curl -s -o /dev/null -w '%{time_total}' "$BASE$e")
  printf '| `%s` | %.1f | %.1f |\n' "$e" "$(echo "$t1*1000" | bc -l)" "$(echo "$t2*1000" | bc -l)"
done
echo
# 2018Q3 is the quarter before the last day's (2018Q4 holds one day in Asia/Tokyo), whose
# findings and outages the server warms with the defaults; 2018Q2 is warmed in its pass over
# earlier quarters (summary, top tables, findings, outages; other answers are made on demand).
for period in 2018Q3 2018Q2; do
  echo "| page of $period (headless Chromium, until every chart is drawn) | ms |"
  echo "|---|---:|"
  node tests/web/browser_check.mjs "$BASE" "$period" "$TOP_PORT" "" >"$OUT/pages.json"
  python3 - "$OUT/pages.json" <<'EOF'
import json, sys
for p in json.load(open(sys.argv[1]))["pages"]:
    url = p["url"].split("/", 3)[-1]
    bad = len(p["console_errors"]) + len(p["failed"])
    print(f"| `/{url}` | {p['ms']:,}{' (errors: %d)' % bad if bad else ''} |")
EOF
  echo
done
echo
python3 tests/web/load.py "$BASE" --clients "$CLIENTS" --seconds "$SECONDS_" "${ENDPOINTS[@]}" \
  "/?period=2018Q3" "/port?port=$PORT_Q&period=2018Q3" >"$OUT/load.json"
python3 - "$OUT/load.json" "$CLIENTS" "$SECONDS_" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ms = d["ms"]
print(f"{sys.argv[2]} clients for {sys.argv[3]} s: {d['requests']:,} answers, {d['errors']} errors; "
      f"p50 {ms['p50']:.1f} ms, p95 {ms['p95']:.1f} ms, p99 {ms['p99']:.1f} ms")
EOF
