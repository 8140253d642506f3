#!/usr/bin/env bash
# Store bounds under hostile captures (issue 10, SPEC §4 "spoofed flood" and §5): ingests
#   - a spoofed flood: PACKETS packets, each from a new random source, a quarter to random ports,
#     spread over 38 days;
#   - 3,000 packets spread over 3,000 days;
# each into a new store, and prints peak memory, wall time and the whole store directory's bytes
# per packet as a Markdown table for docs/BENCHMARKS.md.
#   bench/run_flood.sh [PACKETS=10000000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
DIR=${BENCH_DIR:-/var/tmp/teiten-bench}/flood
B=${BUILD_DIR:-build}
mkdir -p "$DIR"
[ -f "$DIR/flood-$N.pcap" ] || "$B/bench/teiten-gen-flood" "$DIR/flood-$N.pcap" "$N" 38
[ -f "$DIR/days-3000.pcap" ] || "$B/bench/teiten-gen-flood" "$DIR/days-3000.pcap" 3000 3000 0.25 7
echo "| capture | packets | wall s | M packets/s | peak RSS MB | store bytes/packet | files |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for name in "flood-$N" days-3000; do
  rm -rf "$DIR/store-$name"
  cat > "$DIR/$name.toml" <<TOML
[store]
path = "store-$name"
timezone = "Asia/Tokyo"
[[sensor]]
id = "flood"
prefixes = ["203.0.113.0/24"]
TOML
  cat "$DIR/$name.pcap" > /dev/null
  /usr/bin/time -f "%e %M" -o "$DIR/time.$name" \
    "$B/src/cli/teiten" ingest --config "$DIR/$name.toml" --sensor flood "$DIR/$name.pcap" \
    > "$DIR/out.$name" 2>&1 || { cat "$DIR/out.$name"; exit 1; }
  read -r wall kb < "$DIR/time.$name"
  packets=$(python3 -c "import json,sys; print(sum(i['kept'] for i in json.load(open(sys.argv[1]))['inputs']))" "$DIR/store-$name/MANIFEST")
  bytes=$(du -sb "$DIR/store-$name" | cut -f1)
  files=$(find "$DIR/store-$name" -type f | wc -l)
  awk -v n="$name" -v p="$packets" -v w="$wall" -v kb="$kb" -v b="$bytes" -v f="$files" \
    'BEGIN { printf "| %s | %d | %.1f | %.2f | %.0f | %.1f | %d |\n", n, p, w, p / w / 1e6, kb / 1024, b / p, f }'
done
