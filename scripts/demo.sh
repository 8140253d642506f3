#!/usr/bin/env bash
# teiten's main job, end to end: simulate TSUBAME 2018 Q3 (and the quarter before it) at ten
# sensors with `teiten simulate`, ingest the traces with `teiten ingest`, show the quarter's top
# ports and regions with their previous ranks and its summary, and write the quarterly report.
#   scripts/demo.sh            (the first run spends most of its time building)
# TEITEN_BUILD picks the build directory (default build); TEITEN_DEMO_SCALE the scenario scale
# (default its own, 0.002: about 3,000 packets per sensor per day, 5.6 M packets in all).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TEITEN_BUILD:-build}
scripts/setup.sh "$BUILD" Release
T=$BUILD/src/cli/teiten
SCENARIO=tsubame-2018q3
DEMO=var/demo
# A previous run's background merge may still be at work on the store this run replaces, or be
# waiting to merge its keys once they are cold (as `teiten merge --linger UNTIL`, what the merger
# becomes meanwhile): either is stopped first (a merge killed at any moment loses nothing, and
# the store goes anyway).
if [ -d "$DEMO/store" ]; then
  pattern="merge --(background|linger [0-9]+) --store $(realpath "$DEMO/store")\$"
  pkill -9 -f "$pattern" || true
  while pgrep -f "$pattern" >/dev/null; do sleep 0.05; done
fi
rm -rf "$DEMO/store" "$DEMO/traces" "$DEMO/pcap"
mkdir -p "$DEMO"

# The scenario's sensors; its days are UTC days, so the store's are too. Paths relative to the
# config's folder.
scripts/demo_config.sh \
  ../../node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb \
  ../geo/asn.mmdb >"$DEMO/teiten.toml"
CFG="$DEMO/teiten.toml"

# Sources are drawn from the IPv4 ranges of the geo database the store enriches with, so every
# source's region is the one the scenario gave it.
[ -f var/geo/ranges.csv ] || "$T" geo --config "$CFG" --ranges-csv var/geo/ranges.csv
SCALE=()
[ -n "${TEITEN_DEMO_SCALE:-}" ] && SCALE=(--scale "$TEITEN_DEMO_SCALE")
echo "== teiten simulate --scenario $SCENARIO (2018 Q2 and Q3, 10 sensors)"
"$T" simulate --scenario "$SCENARIO" "${SCALE[@]}" --out "$DEMO/traces" \
  --ranges-csv var/geo/ranges.csv --days-per-file 31 --compress | tail -n 1
echo
echo "== teiten ingest"
for dir in "$DEMO"/traces/s*/; do
  "$T" ingest --config "$CFG" --sensor "$(basename "$dir")" --format csv "$dir"*.pcap.zst |
    tail -n +2
done | awk -F, '{n++; k += $3} END { printf "%d files, %d packets kept\n", n, k }'
echo
"$T" summary --config "$CFG" --period 2018Q3 -n 0 | sed '/^$/q'
"$T" top ports --config "$CFG" --period 2018Q3
echo
"$T" top countries --config "$CFG" --period 2018Q3 --lang ja
echo
"$T" top tools --config "$CFG" --period 2018Q3
echo
"$T" report --config "$CFG" --period 2018Q3 --lang ja --format html -o "$DEMO/report-2018Q3.ja.html"
"$T" report --config "$CFG" --period 2018Q3 --lang en --format html -o "$DEMO/report-2018Q3.en.html"
echo "The store is in $DEMO/store; try: $T series --config $CFG --period 2018Q3 --by-country 445/tcp"
echo "Report (ja): $DEMO/report-2018Q3.ja.html"
echo "Report (en): $DEMO/report-2018Q3.en.html"
echo "Dashboard: $T serve --config $CFG   then open http://127.0.0.1:8080/ (this machine only)"
