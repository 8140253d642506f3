#!/usr/bin/env bash
# Ingest benchmark: teiten against a bare libpcap read loop, nfpcapd and tshark on the same
# generated trace, in one run. Prints one Markdown table of figures for docs/BENCHMARKS.md.
#   bench/run_ingest.sh PACKETS [SPOOFED_SHARE] [SOURCES]
# Needs a release build (scripts/setup.sh) and, for the references, tshark and nfdump.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:?packets}
SPOOF=${2:-0}
SOURCES=${3:-200000}
DIR=${BENCH_DIR:-/var/tmp/teiten-bench}
B=${BUILD_DIR:-build}
mkdir -p "$DIR"
CFG="$DIR/teiten.toml"
cat > "$CFG" <<TOML
[store]
path = "store"
timezone = "Asia/Tokyo"
[geo]
country_db = "$PWD/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb"
asn_db = "$PWD/var/geo/asn.mmdb"
[[sensor]]
id = "bench"
prefixes = ["203.0.113.0/24", "198.51.100.0/24"]
TOML
[ -f "$DIR/ranges.csv" ] || "$B/src/cli/teiten" geo --config "$CFG" --ranges-csv "$DIR/ranges.csv"
T="$DIR/trace-$N-$SPOOF.pcap"
if [ ! -f "$T" ]; then
  "$B/bench/teiten-gen-trace" --packets "$N" --sources "$SOURCES" --spoofed-share "$SPOOF" --seed 1 \
    --start 2018-07-01 --days 7 --monitored 203.0.113.0/24,198.51.100.0/24 \
    --ranges-csv "$DIR/ranges.csv" --out "$T" >/dev/null
fi
pcap_bytes=$(stat -c %s "$T")
timed() {  # timed NAME CMD... → prints "NAME wall_s peak_kb"
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$DIR/time.$name" "$@" >"$DIR/out.$name" 2>&1 || true
  echo "$name $(cat "$DIR/time.$name")"
}
cat "$T" > /dev/null  # page cache warm for everyone
r_loop=$(timed pcap_loop "$B/bench/teiten-pcap-loop" "$T")
rm -rf "$DIR/store"
r_teiten=$(timed teiten "$B/src/cli/teiten" ingest --config "$CFG" --sensor bench "$T")
store_bytes=$(du -sb "$DIR/store" | cut -f1)  # the whole store directory
seg_bytes=$(du -sb "$DIR/store/seg" | awk '{print $1}')
kept=$(grep -o 'trace[^ ]* *[0-9,]* *[0-9,]*' "$DIR/out.teiten" | awk '{gsub(",","",$3); print $3}')
r_nf=""
if command -v nfpcapd >/dev/null; then
  rm -rf "$DIR/nf" && mkdir -p "$DIR/nf"
  r_nf=$(timed nfpcapd nfpcapd -r "$T" -w "$DIR/nf")
  nf_bytes=$(du -sb "$DIR/nf" | awk '{print $1}')
fi
r_tshark=""
if command -v tshark >/dev/null; then
  # tshark is ~100x slower: time it on the first million packets and report its rate.
  M=$((N < 1000000 ? N : 1000000))
  editcap -r "$T" "$DIR/head.pcap" "1-$M" >/dev/null 2>&1
  r_tshark=$(timed tshark tshark -n -r "$DIR/head.pcap" -T fields -e ip.src -e tcp.dstport -e udp.dstport)
fi
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.2f", n / s / 1e6 }'; }
read -r _ loop_s loop_kb <<<"$r_loop"
read -r _ t_s t_kb <<<"$r_teiten"
echo
echo "| trace | tool | wall s | Mpps | peak RSS MB | bytes/packet |"
echo "|---|---|---:|---:|---:|---:|"
echo "| $N pkts, spoofed share $SPOOF | bare libpcap loop | $loop_s | $(rate "$N" "$loop_s") | $((loop_kb / 1024)) | pcap $(awk -v b="$pcap_bytes" -v n="$N" 'BEGIN{printf "%.1f", b/n}') |"
echo "| | teiten ingest | $t_s | $(rate "$N" "$t_s") | $((t_kb / 1024)) | $(awk -v b="$store_bytes" -v n="$kept" 'BEGIN{printf "%.2f", b/n}') (segments $(awk -v b="$seg_bytes" -v n="$kept" 'BEGIN{printf "%.2f", b/n}')) |"
if [ -n "$r_nf" ]; then
  read -r _ nf_s nf_kb <<<"$r_nf"
  echo "| | nfpcapd | $nf_s | $(rate "$N" "$nf_s") | $((nf_kb / 1024)) | $(awk -v b="$nf_bytes" -v n="$N" 'BEGIN{printf "%.1f", b/n}') (flows) |"
fi
if [ -n "$r_tshark" ]; then
  read -r _ ts_s ts_kb <<<"$r_tshark"
  echo "| | tshark (first $M) | $ts_s | $(rate "$M" "$ts_s") | $((ts_kb / 1024)) | — |"
fi
