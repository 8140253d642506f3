#!/usr/bin/env bash
# Conformance of two builds: every CLI answer over the shipped scenario, before and after a
# change to the store. Each binary ingests the same simulated traces (tsubame-2018q3, 10
# sensors, 2018 Q2 and Q3) into its own store, answers the same questions (tables and JSON:
# summary, top of every dimension, series, sources, scans, DoS, payloads, OS guesses, outages,
# MUSTAN, notify, feeds and the quarterly and monthly reports as JSON), once as ingested and once
# after `teiten merge --all`; the outputs must be byte for byte the same.
#   bench/conformance.sh OLD_TEITEN NEW_TEITEN [WORK_DIR]
# DAYS_PER_FILE (default 31) sets the captures' length: 2 makes ~900 small ingests of at most
# three days each, the way a store fed by hourly or daily files grows.
# Exit 0 when every answer agrees; otherwise the differing answers are named and diffed.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$(realpath "${1:?old teiten binary}")
NEW=$(realpath "${2:?new teiten binary}")
W=${3:-/var/tmp/teiten-conformance}
mkdir -p "$W"
W=$(realpath "$W")
DPF=${DAYS_PER_FILE:-31}
TRACES="$W/traces-$DPF"
if [ ! -f "$TRACES/ground_truth.json" ]; then
  [ -f var/geo/ranges.csv ] || { echo "run scripts/demo.sh once first (var/geo/ranges.csv)" >&2; exit 2; }
  "$NEW" simulate --scenario tsubame-2018q3 --out "$TRACES" --ranges-csv var/geo/ranges.csv \
    --days-per-file "$DPF" --compress >/dev/null
fi

config() {  # config DIR: the demo's ten sensors, a store in DIR/store
  scripts/demo_config.sh \
    "$PWD/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb" \
    "$PWD/var/geo/asn.mmdb" >"$1/teiten.toml"
}

# answers BIN DIR: every question, one file each, into DIR/answers/.
answers() {
  local T=$1 D=$2 C="$2/teiten.toml" A="$2/answers"
  rm -rf "$A" && mkdir -p "$A"
  local q=0
  ask_named() {  # ask_named NAME ARGS...: a CLI answer (stdout, then its exit status) into NAME
    local name=$1; shift
    q=$((q + 1))
    local rc=0
    "$T" "$@" --config "$C" >"$A/$name.out" 2>"$A/$name.err" || rc=$?
    echo "exit $rc" >>"$A/$name.out"
  }
  for p in 2018Q3 2018Q2 2018-07 2018-08 2018-09 2018-08-15 2018-07-20..2018-08-10 2018-06-25..2018-07-05; do
    for fmt in table json; do
      ask_named "summary.$p.$fmt" summary --period "$p" --format "$fmt"
      for dim in ports countries asns sensors tools; do
        ask_named "top.$dim.$p.$fmt" top "$dim" --period "$p" -n 20 --format "$fmt"
      done
      ask_named "top.ports.jp.$p.$fmt" top ports --period "$p" --group jp -n 20 --format "$fmt"
      ask_named "top.ports.s05.$p.$fmt" top ports --period "$p" --sensor s05 -n 20 --format "$fmt"
      ask_named "top.tools.23.$p.$fmt" top tools --period "$p" --port 23/tcp -n 20 --format "$fmt"
      ask_named "top.ports.mirai.$p.$fmt" top ports --period "$p" --tag mirai -n 20 --format "$fmt"
    done
  done
  for p in 2018Q3 2018-08 2018-07-20..2018-08-10; do
    ask_named "series.ports.$p" series --period "$p" --port 23/tcp --port 445/tcp --port 80/tcp --format json
    ask_named "series.country.$p" series --period "$p" --by-country 445/tcp --format json
    ask_named "series.jp.$p" series --period "$p" --group jp --port 23/tcp --format json
    ask_named "series.week.$p" series --period "$p" --granularity week --country CN --format json
  done
  # Sources of the quarter from China and Japan (notify's lists), each as `teiten ip` tells it.
  ask_named "notify.CN.2018Q3" notify --period 2018Q3 --country CN --format csv
  ask_named "notify.JP.2018-08" notify --period 2018-08 --country JP --format json
  { head -n 13 "$A/notify.CN.2018Q3.out" | tail -n +2 | cut -d, -f3; } | while read -r ip; do
    [ -n "$ip" ] && ask_named "ip.$ip" ip "$ip" --format json
  done
  ask_named "ip.unseen" ip 192.0.2.1 --format json
  ask_named "scans.2018Q3" scans --period 2018Q3 --format json
  ask_named "dos.2018Q3" dos --period 2018Q3 --format json
  ask_named "payloads.2018Q3" payloads --period 2018Q3 --port 5060/udp --format json
  ask_named "os.2018Q3" os --period 2018Q3 --format json
  ask_named "outages.2018Q3" outages --period 2018Q3 --format json
  ask_named "mustan.2018-09-30" mustan --end 2018-09-30 --format json
  ask_named "mustan.445" mustan --end 2018-08-31 --port 445/tcp --format json
  ask_named "feed.2018Q3" feed --period 2018Q3 --format json
  for p in 2018Q3 2018-08; do
    for lang in en ja; do
      ask_named "report.$p.$lang" report --period "$p" --lang "$lang" --format json -o "$A/report.$p.$lang.json"
      sed -i "s|$D|DIR|g" "$A/report.$p.$lang.out"
    done
  done
  echo "$q questions"
}

for side in old new; do
  D="$W/$side"
  rm -rf "$D" && mkdir -p "$D"
  config "$D"
  T=$OLD
  [ "$side" = new ] && T=$NEW
  for dir in "$TRACES"/s*/; do
    "$T" ingest --config "$D/teiten.toml" --sensor "$(basename "$dir")" "$dir"*.pcap.zst >/dev/null
  done
  answers "$T" "$D" >/dev/null
  mv "$D/answers" "$D/answers.ingested"
  "$T" merge --config "$D/teiten.toml" --all >/dev/null
  answers "$T" "$D" >/dev/null
  mv "$D/answers" "$D/answers.merged"
  "$T" verify --config "$D/teiten.toml" >"$D/verify.out" 2>&1 || { echo "$side: verify failed"; cat "$D/verify.out"; exit 1; }
done

# Reports say when they were made and by which build: compare what they say about the data.
strip() {
  sed -E -e 's/"(generated|generated_at|version_string|build)": *"[^"]*"/"\1": ""/g' \
    -e 's/ in [0-9.]+ s$//' "$1"
}
fail=0
n=0
for stage in ingested merged; do
  for f in "$W/old/answers.$stage"/*; do
    b=$(basename "$f")
    n=$((n + 1))
    if ! cmp -s <(strip "$f") <(strip "$W/new/answers.$stage/$b"); then
      echo "DIFFERS ($stage): $b"
      # (diff exits 1 on a difference: without `|| true`, set -e ended the run at the first)
      diff <(strip "$f") <(strip "$W/new/answers.$stage/$b") | head -20 || true
      fail=1
    fi
  done
  # The new build answers every question the old one did, and the merged store as the ingested.
  for f in "$W/new/answers.$stage"/*; do
    [ -e "$W/old/answers.$stage/$(basename "$f")" ] || { echo "only new ($stage): $(basename "$f")"; fail=1; }
  done
done
errs=$(cat "$W"/new/answers.*/*.out | grep -c '^exit [^0]' || true)
echo "$n answers compared ($((n / 2)) questions, as ingested and merged); $errs of the new build's exited non-zero"
[ "$fail" = 0 ] && echo "conformance: every answer the same" || echo "conformance: answers differ"
exit "$fail"
