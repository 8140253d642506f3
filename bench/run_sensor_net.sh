#!/usr/bin/env bash
# The sensor network's two throughput figures (issue 11), as a Markdown table for
# docs/BENCHMARKS.md. Needs root (network namespaces).
#   A. Live capture: one sensor on a veth link, tcpreplay sending a simulated darknet trace at
#      rising rates; for each, the rate tcpreplay achieved and what the sensor saw — its frames
#      against the packets sent, and the kernel's drops (pcap_stats).
#   B. Collector: 10 sensors (watched-directory mode, one capture file each, batches of
#      BATCH_ROWS) delivering to one collector over TLS on loopback at once; batches and packets
#      committed per second, against `teiten ingest` of the same 10 files into a new store.
#   C. With INTO=DIR (a store bench/run_queries.sh built, e.g. /var/tmp/teiten-bench/
#      queries-10-50000000): the collector of B, the same traffic dated inside that store's
#      quarter (2018-08-20) from ten sensors of its own (n1..n10), committing into an empty store
#      and then into that store, in one run: issue 16's "the collector's commits measured against
#      the 1 G store". SKIP_CAPTURE=1 leaves out A.
#   bench/run_sensor_net.sh [PACKETS_PER_SENSOR=200000] [BATCH_ROWS=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
ROWS=${2:-2000}
B=$(readlink -f "${BUILD_DIR:-build}")
BIN=$B/src/cli/teiten
SRC=$(pwd)
DIR=${BENCH_DIR:-/var/tmp/teiten-bench}/sensor-net
rm -rf "$DIR"; mkdir -p "$DIR"
NS=tbench$$
cleanup() { set +e; pkill -9 -f "$DIR/" 2>/dev/null; ip netns del "$NS" 2>/dev/null; }
trap cleanup EXIT

# Traces: net3's mix scaled to N packets per sensor, ten sensors' worth.
scale=$(python3 -c "print($N / 3000)")
INTO=${INTO:-}
sed -e 's/^name = .*/name = "bench10"/' "$SRC/tests/net/net3.toml" >"$DIR/bench10.toml"
# Dated inside the big store's quarter, so the commits land on its busiest keys.
[ -n "$INTO" ] && sed -i 's/^start = .*/start = "2018-08-20"/' "$DIR/bench10.toml"
for i in 4 5 6 7 8 9 10; do
  printf '\n[[sensor]]\nid = "s%s"\ngroup = "a"\ncountry = "JP"\nprefixes = ["10.81.%s.0/24"]\n' "$i" "$i" >>"$DIR/bench10.toml"
done
"$BIN" simulate --scenario "$DIR/bench10.toml" --out "$DIR/trace" --scale "$scale" >/dev/null
ID=s; [ -n "$INTO" ] && ID=n  # the big store's own sensors are s1..s10, on other networks
sensors_toml() { for i in $(seq 1 10); do printf '[[sensor]]\nid = "%s%s"\nprefixes = ["10.81.%s.0/24"]\n' "$ID" "$i" "$i"; done; }
# watcher_toml I WATCH SPOOL: sensor $ID$I sending the captures of directory WATCH to the collector.
watcher_toml() {
  printf '[[sensor]]\nid = "%s%s"\nprefixes = ["10.81.%s.0/24"]\n[daemon]\nwatch_dir = "%s"\nspool = "%s"\ncollector = "https://127.0.0.1:18443"\ncert = "pki/%s%s.crt"\nkey = "pki/%s%s.key"\nca = "pki/ca.crt"\nbatch_rows = %s\nbatch_seconds = 1\nmetrics = ""\n' \
    "$ID" "$1" "$1" "$2" "$3" "$ID" "$1" "$ID" "$1" "$ROWS"
}
"$SRC/scripts/pki.sh" init "$DIR/pki" >/dev/null
"$SRC/scripts/pki.sh" collector "$DIR/pki" 127.0.0.1 >/dev/null
for i in $(seq 1 10); do "$SRC/scripts/pki.sh" sensor "$DIR/pki" "$ID$i" >/dev/null; done
c() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }  # 290436 → 290,436

if [ -z "${SKIP_CAPTURE:-}" ]; then

echo "### A. Live capture, one sensor ($(capinfos -c -M "$DIR"/trace/s1/*.pcap | awk '/Number/ {print $4}') packets per replay)"
echo
echo "| asked pps | achieved pps (tcpreplay) | sent | sensor frames | kernel dropped |"
echo "|---:|---:|---:|---:|---:|"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add cap type veth peer name inj
ip -n "$NS" link set cap up; ip -n "$NS" link set inj up
ip netns exec "$NS" sysctl -qw net.ipv6.conf.cap.disable_ipv6=1 net.ipv6.conf.inj.disable_ipv6=1
printf '[[sensor]]\nid = "s1"\nprefixes = ["10.81.1.0/24"]\n[daemon]\ninterface = "cap"\nspool = "%s/spool-a"\nspool_budget_mb = 8192\ncollector = "https://127.0.0.1:1"\ncert = "%s/pki/s1.crt"\nkey = "%s/pki/s1.key"\nca = "%s/pki/ca.crt"\nbatch_seconds = 1\nmetrics = "127.0.0.1:9810"\ncapture_buffer_mb = 256\n' \
  "$DIR" "$DIR" "$DIR" "$DIR" >"$DIR/capture.toml"
ip netns exec "$NS" "$BIN" sensor --config "$DIR/capture.toml" 2>"$DIR/capture.log" &
sensor=$!
sleep 1
metric() { ip netns exec "$NS" curl -sf http://127.0.0.1:9810/metrics | awk -v n="$1" '$1 ~ "^"n"({|$)" {s += $2} END {printf "%d", s}'; }
for pps in 50000 100000 200000 400000 top; do
  f0=$(metric teiten_sensor_frames_total); d0=$(metric 'teiten_sensor_lost_total{reason="kernel_dropped"}')
  if [ "$pps" = top ]; then arg=--topspeed; else arg=--pps=$pps; fi
  out=$(ip netns exec "$NS" tcpreplay $arg -i inj "$DIR"/trace/s1/*.pcap 2>&1)
  sleep 2.5
  f1=$(metric teiten_sensor_frames_total); d1=$(metric 'teiten_sensor_lost_total{reason="kernel_dropped"}')
  sent=$(echo "$out" | awk '/Actual:/ {print $2}')
  rate=$(echo "$out" | awk '/Rated:/ {for (i = 1; i <= NF; i++) if ($i ~ /pps/) print int($(i-1))}')
  echo "| $(c "$pps") | $(c "$rate") | $(c "$sent") | $(c $((f1 - f0))) | $(c $((d1 - d0))) |"
done
kill -TERM "$sensor"; wait "$sensor" || true
echo
fi

if [ -n "$INTO" ]; then
  # The collector into an empty store and into the big one, one after the other: the commit
  # time the collector records (teiten_collector_commit_seconds) and the whole delivery.
  tz=$(awk -F'"' '/^timezone/ {print $2; exit}' "$INTO/teiten.toml")
  stored=$(python3 -c "import json,sys; print(sum(i['kept'] for i in json.load(open(sys.argv[1]))['inputs']))" "$INTO/store/MANIFEST" 2>/dev/null || echo "?")
  echo "### C. Collector commits into an empty store and into the store of $(c "$stored") packets (batches of $ROWS packets)"
  echo
  echo "| into | packets | wall s | batches | commits | mean commit ms | packets/s |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for where in empty big; do
    store=$DIR/store-c-empty; [ $where = big ] && store=$(readlink -f "$INTO/store")
    { printf '[store]\npath = "%s"\ntimezone = "%s"\n[collect]\nlisten = "127.0.0.1:18443"\ncert = "pki/collector.crt"\nkey = "pki/collector.key"\nca = "pki/ca.crt"\nmetrics = "127.0.0.1:19811"\nrequests_per_second = 100000\nburst = 100000\n' "$store" "$tz"; sensors_toml; } >"$DIR/centre-c.toml"
    total=0
    for i in $(seq 1 10); do
      rm -rf "$DIR/c$where$i" "$DIR/spool-c$where$i"; mkdir -p "$DIR/c$where$i"
      ln "$DIR"/trace/s$i/*.pcap "$DIR/c$where$i/"
      touch -d '1 min ago' "$DIR"/c$where$i/*.pcap
      watcher_toml "$i" "c$where$i" "spool-c$where$i" >"$DIR/c$where$i.toml"
      total=$((total + $(capinfos -c -M "$DIR"/trace/s$i/*.pcap | awk '/Number/ {print $4}')))
    done
    "$BIN" collect --config "$DIR/centre-c.toml" 2>"$DIR/collect-c$where.log" &
    collector=$!
    sleep 1
    t0=$(date +%s.%N)
    pids=()
    for i in $(seq 1 10); do "$BIN" sensor --config "$DIR/c$where$i.toml" 2>"$DIR/c$where$i.log" & pids+=($!); done
    m() { curl -sf http://127.0.0.1:19811/metrics; }
    until [ "$(m | awk '$1 ~ /^teiten_collector_rows_total/ {s += $2} END {printf "%d", s}')" -ge "$total" ]; do sleep 0.2; done
    t1=$(date +%s.%N)
    read -r batches commits secs < <(m | awk '$1 ~ /^teiten_collector_batches_total.*committed/ {b += $2}
      $1 == "teiten_collector_commit_seconds_count" {n = $2} $1 == "teiten_collector_commit_seconds_sum" {s = $2}
      END {printf "%d %d %f\n", b, n, s}')
    for p in "${pids[@]}"; do kill -TERM "$p"; done; wait "${pids[@]}" 2>/dev/null || true
    kill -TERM "$collector"; wait "$collector" || true
    label="an empty store"; [ $where = big ] && label="the store of $(c "$stored") packets"
    python3 -c "import sys; t0, t1, s = map(float, sys.argv[1:4]); b, n, tot = map(int, sys.argv[4:7]); print(f'| {sys.argv[7]} | {tot:,} | {t1 - t0:.1f} | {b:,} | {n:,} | {1000 * s / max(n, 1):.1f} | {tot / (t1 - t0):,.0f} |')" \
      "$t0" "$t1" "$secs" "$batches" "$commits" "$total" "$label"
  done
  exit 0
fi

echo "### B. Collector, 10 sensors at once over TLS on loopback (batches of $ROWS packets)"
echo
{ printf '[store]\npath = "store-b"\ntimezone = "UTC"\n[collect]\nlisten = "127.0.0.1:18443"\ncert = "pki/collector.crt"\nkey = "pki/collector.key"\nca = "pki/ca.crt"\nmetrics = "127.0.0.1:19811"\nrequests_per_second = 100000\nburst = 100000\n'; sensors_toml; } >"$DIR/centre.toml"
{ printf '[store]\npath = "store-ingest"\ntimezone = "UTC"\n'; sensors_toml; } >"$DIR/ingest.toml"
total=0
for i in $(seq 1 10); do
  mkdir -p "$DIR/w$i"
  ln "$DIR"/trace/s$i/*.pcap "$DIR/w$i/"
  touch -d '1 min ago' "$DIR"/w$i/*.pcap
  watcher_toml "$i" "w$i" "spool-$i" >"$DIR/s$i.toml"
  total=$((total + $(capinfos -c -M "$DIR"/trace/s$i/*.pcap | awk '/Number/ {print $4}')))
done
"$BIN" collect --config "$DIR/centre.toml" 2>"$DIR/collect.log" &
collector=$!
sleep 1
t0=$(date +%s.%N)
pids=()
for i in $(seq 1 10); do "$BIN" sensor --config "$DIR/s$i.toml" 2>"$DIR/s$i.log" & pids+=($!); done
stored() { curl -sf http://127.0.0.1:19811/metrics | awk '$1 ~ /^teiten_collector_rows_total/ {s += $2} END {printf "%d", s}'; }
until [ "$(stored)" -ge "$total" ]; do sleep 0.2; done
t1=$(date +%s.%N)
batches=$(curl -sf http://127.0.0.1:19811/metrics | awk '$1 ~ /^teiten_collector_batches_total.*committed/ {s += $2} END {printf "%d", s}')
commits=$(curl -sf http://127.0.0.1:19811/metrics | awk '$1 == "teiten_collector_commit_seconds_count" {printf "%d", $2}')
for p in "${pids[@]}"; do kill -TERM "$p"; done; wait "${pids[@]}" 2>/dev/null || true
kill -TERM "$collector"; wait "$collector" || true
# C. What the collector's commits leave in the store, and the same after folding them.
files() { echo "$(ls "$DIR/store-b/seg" | wc -l) $(ls "$DIR/store-b/idx" | wc -l) $(stat -c %s "$DIR/store-b/MANIFEST")"; }
read -r seg0 idx0 man0 < <(files)
merge_out=$("$BIN" merge --config "$DIR/centre.toml" --format csv)
in0=$(echo "$merge_out" | awk -F, '$1 == "inputs before" {print $2}')
in1=$(echo "$merge_out" | awk -F, '$1 == "inputs after" {print $2}')
read -r seg1 idx1 man1 < <(files)
"$BIN" verify --config "$DIR/centre.toml" >/dev/null
/usr/bin/time -f "%e" -o "$DIR/ingest.time" "$BIN" ingest --config "$DIR/ingest.toml" --sensor s1 "$DIR"/trace/s1/*.pcap >/dev/null
ingest_one=$(cat "$DIR/ingest.time")
t2=$(date +%s.%N)
for i in $(seq 2 10); do "$BIN" ingest --config "$DIR/ingest.toml" --sensor "s$i" "$DIR"/trace/s$i/*.pcap >/dev/null; done
t3=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$t3" "$ingest_one" "$batches" "$commits" "$total" \
  "$in0" "$seg0" "$idx0" "$man0" "$in1" "$seg1" "$idx1" "$man1" <<'PY'
import sys
t0, t1, t2, t3, one = map(float, sys.argv[1:6])
batches, commits, total = map(int, sys.argv[6:9])
net = t1 - t0
ing = one + (t3 - t2)
print("| path | packets | wall s | batches | commits | batches/s | packets/s |")
print("|---|---:|---:|---:|---:|---:|---:|")
print(f"| 10 sensors → collector (TLS, spool, commit) | {total:,} | {net:.1f} | {batches:,} | {commits:,} | {batches / net:,.0f} | {total / net:,.0f} |")
print(f"| `teiten ingest` of the same 10 files | {total:,} | {ing:.1f} | – | 10 | – | {total / ing:,.0f} |")
c = [int(x.replace(",", "")) for x in sys.argv[9:17]]
print()
print("| collector's store | inputs | segment files | index files | MANIFEST bytes |")
print("|---|---:|---:|---:|---:|")
print(f"| as committed | {c[0]:,} | {c[1]:,} | {c[2]:,} | {c[3]:,} |")
print(f"| folded (`teiten merge`; the collector does it every minute) | {c[4]:,} | {c[5]:,} | {c[6]:,} | {c[7]:,} |")
PY
