#!/usr/bin/env bash
# Query benchmark: builds a store of SENSORS × PACKETS packets over 2018 Q2 and Q3 (a generated
# realistic trace per sensor and quarter, deleted after ingest), then times `teiten top ports`
# with previous ranks and `teiten ip` over it. Prints a Markdown table for docs/BENCHMARKS.md.
#   bench/run_queries.sh SENSORS PACKETS_PER_SENSOR_QUARTER
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:?sensors}
P=${2:?packets per sensor per quarter}
DIR=${BENCH_DIR:-/var/tmp/teiten-bench}/queries-$S-$P
B=${BUILD_DIR:-build}
mkdir -p "$DIR"
CFG="$DIR/teiten.toml"
{
  echo '[store]'; echo 'path = "store"'; echo 'timezone = "Asia/Tokyo"'
  echo '[geo]'
  echo "country_db = \"$PWD/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb\""
  echo "asn_db = \"$PWD/var/geo/asn.mmdb\""
  for i in $(seq 1 "$S"); do
    echo '[[sensor]]'; echo "id = \"s$i\""; echo "group = \"g$((i % 2))\""
    echo "prefixes = [\"10.$i.0.0/24\"]"
  done
} > "$CFG"
[ -f "$DIR/ranges.csv" ] || "$B/src/cli/teiten" geo --config "$CFG" --ranges-csv "$DIR/ranges.csv"
if [ ! -f "$DIR/built" ]; then
  rm -rf "$DIR/store"
  t0=$(date +%s)
  for i in $(seq 1 "$S"); do
    for q in 2018-04-01:91 2018-07-01:92; do
      start=${q%%:*}; days=${q#*:}
      truth=()
      [ "$i$start" = "12018-07-01" ] && truth=(--truth "$DIR/truth.json" --truth-sources)
      "$B/bench/teiten-gen-trace" --packets "$P" --sources 400000 --seed "$i$days" --start "$start" \
        --days "$days" --monitored "10.$i.0.0/24" --ranges-csv "$DIR/ranges.csv" --out "$DIR/t.pcap" \
        "${truth[@]}" >/dev/null
      "$B/src/cli/teiten" ingest --config "$CFG" --sensor "s$i" "$DIR/t.pcap" | tail -1
      rm -f "$DIR/t.pcap"
    done
  done
  t1=$(date +%s)
  # Each ingest returned once committed and left its merge to a background `teiten merge`;
  # `teiten merge` waits for the one running, then merges what is still due.
  "$B/src/cli/teiten" merge --config "$CFG" >/dev/null
  echo "built in $(( t1 - t0 )) s, then $(( $(date +%s) - t1 )) s until the background merges were done" > "$DIR/built"
fi
# Packets actually stored (a build stopped early still measures what it holds).
packets=$(python3 -c "import json,sys; print(sum(i['kept'] for i in json.load(open(sys.argv[1]))['inputs']))" "$DIR/store/MANIFEST")
bytes=$(du -sb "$DIR/store" | cut -f1)  # the whole store directory, not some of its folders
median() {  # median wall ms of 7 runs of a command (after one warm-up)
  "$@" >/dev/null 2>&1
  for _ in 1 2 3 4 5 6 7; do
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))
  done | sort -n | sed -n 4p
}
# The busiest source of sensor 1's 2018 Q3 trace, from the generator's ground truth.
ip=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(max(d['sources'], key=lambda s: s[-1])[0])" "$DIR/truth.json")
top_ms=$(median "$B/src/cli/teiten" top ports --config "$CFG" --period 2018Q3 -n 10)
topc_ms=$(median "$B/src/cli/teiten" top countries --config "$CFG" --period 2018Q3 -n 10)
ser_ms=$(median "$B/src/cli/teiten" series --config "$CFG" --period 2018Q3 --granularity day \
  --port 23/tcp --port 445/tcp --port 22/tcp --port 80/tcp --port 1433/tcp)
serc_ms=$(median "$B/src/cli/teiten" series --config "$CFG" --period 2018Q3 --granularity day \
  --country CN --country US --country RU --country BR --country JP)
sum_ms=$(median "$B/src/cli/teiten" summary --config "$CFG" --period 2018Q3)
ip_ms=$(median "$B/src/cli/teiten" ip --config "$CFG" "$ip")
ipn_ms=$(median "$B/src/cli/teiten" ip --config "$CFG" 192.0.2.1)
"$B/src/cli/teiten" ip --config "$CFG" "$ip" > "$DIR/ip.out" || true
echo
echo "| store | packets | bytes/packet | top ports 2018Q3 | top countries 2018Q3 | series 5 ports × 92 days | series 5 countries | summary 2018Q3 | ip $ip | ip 192.0.2.1 (unseen) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
echo "| up to $S sensors × 2 quarters | $packets | $(awk -v b="$bytes" -v n="$packets" 'BEGIN{printf "%.2f", b/n}') | $top_ms ms | $topc_ms ms | $ser_ms ms | $serc_ms ms | $sum_ms ms | $ip_ms ms | $ipn_ms ms |"
cat "$DIR/built"
