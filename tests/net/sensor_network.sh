#!/usr/bin/env bash
# The sensor network as real processes (issue 11): in network namespaces made here, a collector
# and three sensors capture live packets replayed onto their interfaces (tcpreplay) from
# `teiten simulate` traces; after each trouble the centre's per-port packets and distinct
# sources are compared with the same traces ingested from files (`teiten ingest`, itself checked
# against tshark elsewhere). Each replay adds the traces' packets once more: after k replays a
# port holds exactly k × its packets in the reference, with the same distinct sources.
#
#   tests/net/sensor_network.sh TEITEN_BINARY [COLLECTOR_DOWN_SECONDS=120]
#
# Exit 77 (skipped) without root, network namespaces or the tools. Traffic stays inside the
# namespaces; nothing is sent to another address.
set -euo pipefail
BIN=$(readlink -f "$1")
DOWN=${2:-120}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
for t in tcpreplay openssl python3 nft curl ip; do
  command -v "$t" >/dev/null || { echo "SKIP: $t is not installed"; exit 77; }
done
P=tn$$
if [ "$(id -u)" != 0 ] || ! ip netns add "${P}probe" 2>/dev/null; then
  echo "SKIP: needs root and network namespaces"; exit 77
fi
ip netns del "${P}probe"

W=$(mktemp -d /tmp/teiten-net-XXXXXX)
C=${P}c
PIDS="$W/pids"; : >"$PIDS"
cleanup() {
  set +e
  while read -r pid; do kill -9 "$pid" 2>/dev/null; done <"$PIDS"
  pkill -9 -f "$W/" 2>/dev/null  # anything else of this run (its config paths name $W)
  sleep 0.5
  for n in "$C" "${P}s1" "${P}s2" "${P}s3"; do ip netns del "$n" 2>/dev/null; done
  umount "$W/centre" 2>/dev/null; umount "$W/s3/spool" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
step() { echo "== $(date -u +%T) $*"; }
fail() { echo "FAIL: $*"; echo "--- collector log (tail)"; tail -20 "$W/collect.log"; for i in 1 2 3; do echo "--- s$i log (tail)"; tail -8 "$W/s$i/log"; done; exit 1; }

# --- traces and the reference ---------------------------------------------------------------
step "traces and reference store"
"$BIN" simulate --scenario "$SRC/tests/net/net3.toml" --out "$W/trace" >/dev/null
GEO_C="$SRC/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb"
GEO_A="$SRC/var/geo/asn.mmdb"
sensors_toml() {
  for i in 1 2 3; do printf '[[sensor]]\nid = "s%s"\nprefixes = ["10.81.%s.0/24"]\n' "$i" "$i"; done
}
{ printf '[store]\npath = "ref"\ntimezone = "UTC"\n[geo]\ncountry_db = "%s"\nasn_db = "%s"\n' "$GEO_C" "$GEO_A"; sensors_toml; } >"$W/ref.toml"
for i in 1 2 3; do "$BIN" ingest --config "$W/ref.toml" --sensor "s$i" "$W"/trace/s$i/*.pcap >/dev/null; done
"$BIN" top ports --config "$W/ref.toml" --period 2026-01-05 -n 100000 --format json >"$W/ref-ports.json"
"$BIN" top sensors --config "$W/ref.toml" --period 2026-01-05 -n 100 --format json >"$W/ref-sensors.json"

# --- certificates -----------------------------------------------------------------------------
step "certificates"
PKI="$W/pki"
"$SRC/scripts/pki.sh" init "$PKI" >/dev/null
"$SRC/scripts/pki.sh" collector "$PKI" 10.90.1.1 10.90.2.1 10.90.3.1 127.0.0.1 >/dev/null
for s in s1 s2 s3 s4 s5; do "$SRC/scripts/pki.sh" sensor "$PKI" $s >/dev/null; done
"$SRC/scripts/pki.sh" revoke "$PKI" "$PKI/s5.crt" >/dev/null
# An expired certificate for s2, as a sensor whose renewal was forgotten.
openssl req -new -key "$PKI/s2.key" -subj /CN=s2 -out "$W/old.csr" 2>/dev/null
TEITEN_SAN=DNS:x openssl ca -batch -config "$PKI/openssl-ca.cnf" -in "$W/old.csr" -out "$PKI/s2-expired.crt" \
  -extensions sensor_ext -startdate 20250101000000Z -enddate 20250201000000Z -notext 2>/dev/null

# --- namespaces: the centre, and per sensor an uplink and a capture link ----------------------
step "namespaces"
ip netns add "$C"
ip -n "$C" link set lo up
for i in 1 2 3; do
  S=${P}s$i
  ip netns add "$S"
  ip -n "$S" link set lo up
  ip link add "up$i" netns "$C" type veth peer name uplink netns "$S"
  ip -n "$C" addr add "10.90.$i.1/24" dev "up$i"; ip -n "$C" link set "up$i" up
  ip -n "$S" addr add "10.90.$i.2/24" dev uplink; ip -n "$S" link set uplink up
  ip -n "$S" link add cap type veth peer name inj
  ip -n "$S" link set cap up; ip -n "$S" link set inj up
  # No IPv6 autoconfiguration chatter on the capture link: only the replayed packets.
  ip netns exec "$S" sysctl -qw net.ipv6.conf.cap.disable_ipv6=1 net.ipv6.conf.inj.disable_ipv6=1
done

# --- the centre -----------------------------------------------------------------------------
mkdir -p "$W/centre"
mount -t tmpfs -o size=256m tmpfs "$W/centre"
{ printf '[store]\npath = "centre/store"\ntimezone = "UTC"\n[geo]\ncountry_db = "%s"\nasn_db = "%s"\n' "$GEO_C" "$GEO_A"
  printf '[collect]\nlisten = "0.0.0.0:8443"\ncert = "pki/collector.crt"\nkey = "pki/collector.key"\nca = "pki/ca.crt"\ncrl = "pki/ca.crl"\nmetrics = "127.0.0.1:9811"\ncommit_wait_seconds = 20\n'
  sensors_toml; printf '[[sensor]]\nid = "s5"\nprefixes = ["10.81.5.0/24"]\n'; } >"$W/centre.toml"
COLLECTOR_PID=""
start_collector() {
  ip netns exec "$C" "$BIN" collect --config "$W/centre.toml" 2>>"$W/collect.log" &
  COLLECTOR_PID=$!; echo "$COLLECTOR_PID" >>"$PIDS"
  for _ in $(seq 100); do
    ip netns exec "$C" curl -sf http://127.0.0.1:9811/metrics >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "collector did not start"
}
stop_collector() {  # signal
  kill "-$1" "$COLLECTOR_PID" 2>/dev/null || true
  wait "$COLLECTOR_PID" 2>/dev/null || true
}

# --- the sensors ----------------------------------------------------------------------------
declare -A SENSOR_PID
for i in 1 2 3; do
  mkdir -p "$W/s$i/spool"
  url="https://10.90.$i.1:8443"
  [ "$i" = 1 ] && url="https://127.0.0.1:9443"  # s1 is far away: through a 200 ms relay
  printf '[[sensor]]\nid = "s%s"\nprefixes = ["10.81.%s.0/24"]\n[daemon]\ninterface = "cap"\nspool = "s%s/spool"\ncollector = "%s"\ncert = "pki/s%s.crt"\nkey = "pki/s%s.key"\nca = "pki/ca.crt"\nbatch_seconds = 1\nmetrics = "127.0.0.1:9810"\n' \
    "$i" "$i" "$i" "$url" "$i" "$i" >"$W/s$i.toml"
done
# s1 also keeps its raw packets (C6), in files of at most 50 KB.
printf 'raw_dir = "s1/raw"\nraw_file_mb = 0.05\n' >>"$W/s1.toml"
# s2 runs as nobody once its capture is open (the directories on its way must let it through).
printf 'user = "nobody"\n' >>"$W/s2.toml"
chmod 755 "$W" "$W/s2"
# s3's spool is a tiny disk of its own (filled on purpose at the end).
mount -t tmpfs -o size=1m tmpfs "$W/s3/spool"
ip netns exec "${P}s1" python3 "$SRC/tests/net/relay.py" 127.0.0.1 9443 10.90.1.1 8443 100 &
echo $! >>"$PIDS"
disown $!
start_sensor() {
  ip netns exec "${P}s$1" "$BIN" sensor --config "$W/s$1.toml" 2>>"$W/s$1/log" &
  SENSOR_PID[$1]=$!; echo "$!" >>"$PIDS"
  for _ in $(seq 100); do
    ip netns exec "${P}s$1" curl -sf http://127.0.0.1:9810/metrics >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "sensor s$1 did not start"
}
replay() {  # sensors…: each sends its trace onto its capture link, at a rate with no drops
  local pids=()
  for i in "$@"; do
    ip netns exec "${P}s$i" tcpreplay -q --pps=2000 -i inj "$W"/trace/s$i/*.pcap >/dev/null 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || fail "tcpreplay failed"; done
  sleep 2.5  # two batch periods: everything captured is in a spool
}
LIVE_PERIOD="$(date -u -d yesterday +%F)..$(date -u -d tomorrow +%F)"

# compare K [sensor-exceptions-json]: the centre equals K times the reference, port by port.
compare() {
  "$BIN" top ports --config "$W/centre.toml" --period "$LIVE_PERIOD" -n 100000 --format json >"$W/live-ports.json" 2>/dev/null || return 1
  "$BIN" top sensors --config "$W/centre.toml" --period "$LIVE_PERIOD" -n 100 --format json >"$W/live-sensors.json" 2>/dev/null || return 1
  python3 - "$1" "$W/ref-ports.json" "$W/live-ports.json" "$W/ref-sensors.json" "$W/live-sensors.json" "${2:-{\}}" <<'PY'
import json, sys
k = int(sys.argv[1]); exc = json.loads(sys.argv[6])
def rows(path, key):
    return {r[key]: (r["packets"], r["sources"]) for r in json.load(open(path))}
bad = []
rs, ls = rows(sys.argv[4], "sensor"), rows(sys.argv[5], "sensor")
for s, (p, src) in rs.items():
    want = k * p - exc.get(s, 0)
    got = ls.get(s, (0, 0))
    if got[0] != want or got[1] != src:
        bad.append(f"sensor {s}: {got[0]} packets / {got[1]} sources, want {want} / {src}")
if not exc:
    rp, lp = rows(sys.argv[2], "port"), rows(sys.argv[3], "port")
    for port, (p, src) in rp.items():
        got = lp.get(port, (0, 0))
        if got != (k * p, src):
            bad.append(f"port {port}: {got[0]} packets / {got[1]} sources, want {k * p} / {src}")
    for port in lp.keys() - rp.keys():
        bad.append(f"port {port} at the centre only")
if bad:
    print("\n".join(bad[:10]))
    sys.exit(1)
PY
}
# wait_for K [exceptions]: until the centre equals K replays (at most 300 s).
wait_for() {
  local t0=$SECONDS
  until compare "$@" >"$W/compare.out" 2>&1; do
    if ((SECONDS - t0 > 300)); then cat "$W/compare.out"; fail "centre ≠ $1 × reference after 300 s"; fi
    sleep 2
  done
  echo "   centre = $1 × reference, port by port and sensor by sensor ($((SECONDS - t0)) s to converge)"
}
metric() {  # namespace url name → value (summed over labels)
  ip netns exec "$1" curl -sf "$2" | awk -v n="$3" '$1 ~ "^"n"({|$)" {s += $2} END {print s + 0}'
}

start_collector
for i in 1 2 3; do start_sensor "$i"; done
K=0
status="/proc/${SENSOR_PID[2]}/status"
uid=$(awk '/^Uid:/ {print $3}' "$status"); caps=$(awk '/^CapEff:/ {print $2}' "$status")
[ "$uid" = "$(id -u nobody)" ] && [ "$caps" = 0000000000000000 ] || fail "s2 runs as uid $uid with capabilities $caps"
echo "   s2 captures as nobody with no capabilities (CapEff $caps)"

step "1. baseline"
replay 1 2 3; K=$((K + 1)); wait_for $K

python3 - "$W/s1/raw" <<'PY' || fail "raw retention"
import os, struct, sys
d = sys.argv[1]
files = sorted(os.listdir(d))
total = 0
for f in files:
    b = open(os.path.join(d, f), "rb").read()
    assert len(b) <= 50 * 1048576 // 1000 + 300, f"{f}: {len(b)} bytes, over the 50 KB limit"
    at = 24  # classic pcap: a 24-byte header, then 16-byte records
    while at + 16 <= len(b):
        caplen = struct.unpack_from("<I", b, at + 8)[0]
        at += 16 + caplen
        total += 1
    assert at == len(b), f"{f}: a record cut short"
assert len(files) >= 4, f"{len(files)} files: no rotation"
assert total == 3000, f"{total} packets kept raw, want 3000"
print(f"   raw retention: 3,000 packets in {len(files)} rotating files")
PY

step "2. collector stopped for $DOWN s while the sensors capture"
stop_collector TERM
replay 1 2 3; K=$((K + 1))
for f in "$W"/s2/spool/*.batch; do cp "$f" "$W/s2-batch.bin"; break; done
sleep "$DOWN"
spooled=$(metric "${P}s2" http://127.0.0.1:9810/metrics teiten_sensor_spool_batches)
[ "$spooled" -gt 0 ] || fail "s2's spool should hold batches while the collector is down"
echo "   s2 holds $spooled batches"
start_collector
wait_for $K

step "3. 30 % packet loss (and the 200 ms relay) on s1's link"
ip netns exec "${P}s1" nft -f - <<'NFT'
table inet lossy {
  chain out { type filter hook output priority 0; ip daddr 10.90.1.1 numgen random mod 100 < 30 drop; }
  chain in { type filter hook input priority 0; ip saddr 10.90.1.1 numgen random mod 100 < 30 drop; }
}
NFT
replay 1 2 3; K=$((K + 1)); wait_for $K
ip netns exec "${P}s1" nft delete table inet lossy

step "4. s2's link cut for 60 s mid-batch"
replay 2 &
r=$!
sleep 1
ip -n "${P}s2" link set uplink down
wait "$r"
replay 1 3
sleep 59
ip -n "${P}s2" link set uplink up
K=$((K + 1)); wait_for $K

step "5. kill -9 of the collector and of sensors at random moments"
for round in 1 2 3; do
  stop_collector 9
  replay 1 2 3; K=$((K + 1))
  victim=$((RANDOM % 3 + 1))
  kill -9 "${SENSOR_PID[$victim]}"; wait "${SENSOR_PID[$victim]}" 2>/dev/null || true
  start_sensor "$victim"
  start_collector
  sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
  stop_collector 9
  start_collector
  sleep "$((RANDOM % 3)).$((RANDOM % 10))"
  stop_collector 9
  start_collector
  echo "   round $round: killed s$victim and the collector three times"
done
wait_for $K

step "6. hostile senders"
curl_c() { ip netns exec "$C" curl -s -o "$W/curl.out" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/octet-stream' --cacert "$W/pki/ca.crt" "$@" https://127.0.0.1:8443/v1/batches || true; }
code=$(curl_c --cert "$W/pki/s1.crt" --key "$W/pki/s1.key" --data-binary @"$W/s2-batch.bin")
[ "$code" = 403 ] && grep -q "names sensor 's2' but the certificate is 's1'" "$W/curl.out" || fail "s1 sending s2's batch: $code $(cat "$W/curl.out")"
code=$(curl_c --cert "$W/pki/s2.crt" --key "$W/pki/s2.key" --data-binary @"$W/s2-batch.bin")
[ "$code" = 200 ] && grep -q '"duplicate":true' "$W/curl.out" || fail "s2's batch again: $code $(cat "$W/curl.out")"
code=$(curl_c --cert "$W/pki/s4.crt" --key "$W/pki/s4.key" --data-binary @"$W/s2-batch.bin")
[ "$code" = 403 ] || fail "unknown sensor s4: $code"
for bad in s5 s2-expired; do
  key=${bad%-expired}
  code=$(curl_c --cert "$W/pki/$bad.crt" --key "$W/pki/$key.key" --data-binary @"$W/s2-batch.bin")
  [ "$code" = 000 ] || fail "$bad certificate accepted: $code"
done
code=$(curl_c --data-binary @"$W/s2-batch.bin")
[ "$code" = 000 ] || fail "no certificate accepted: $code"
head -c 100000 /dev/urandom >"$W/garbage"
code=$(curl_c --cert "$W/pki/s1.crt" --key "$W/pki/s1.key" --data-binary @"$W/garbage")
[ "$code" = 400 ] || fail "garbage body: $code"
ip netns exec "$C" python3 -c "
import socket
for n in (1, 517, 100000):
    s = socket.create_connection(('127.0.0.1', 8443)); s.sendall(open('$W/garbage','rb').read()[:n]); s.close()"
grep -q '"reason":"certificate revoked"' "$W/collect.log" || fail "revoked certificate not logged"
grep -q '"reason":"certificate has expired"' "$W/collect.log" || fail "expired certificate not logged"
kill -0 "$COLLECTOR_PID" || fail "collector died"
wait_for $K
echo "   refused: another sensor's id (403), unknown sensor (403), revoked, expired and no certificate (handshake), garbage (400, raw bytes)"

step "7. the centre's store disk full, then room again"
# One free page: every commit writes several files (segment, rollups, index, manifest), each at
# least a page of tmpfs, so none can succeed however small the store's formats make it.
fill=$(( $(df --output=avail -B1 "$W/centre" | tail -1) - 4096 ))
fallocate -l "$fill" "$W/centre/filler"
replay 1 2 3; K=$((K + 1))
t0=$SECONDS
until grep -q '"event":"commit_failed"' "$W/collect.log"; do
  ((SECONDS - t0 < 60)) || fail "no commit failed on a full disk"
  sleep 1
done
rm "$W/centre/filler"
wait_for $K

step "8. s3's spool disk full while the collector is down"
stop_collector TERM
fallocate -l $(( $(df --output=avail -B1 "$W/s3/spool" | tail -1) - 40960 )) "$W/s3/spool/.filler"
for _ in 1 2 3 4; do replay 3; done
rm "$W/s3/spool/.filler"
sleep 2
start_collector
lost() {
  "$BIN" sensors --config "$W/centre.toml" --format json | python3 -c "
import json, re, sys
for r in json.load(sys.stdin):
    if r['sensor'] == 's3':
        print(sum(int(n.replace(',', '')) for n in re.findall(r'spool_write_failed ([\d,]+)', r['lost'])))"
}
check_spool_full() {
  "$BIN" top sensors --config "$W/centre.toml" --period "$LIVE_PERIOD" -n 100 --format json >"$W/live-sensors.json"
  python3 - "$K" "$(lost)" "$W/ref-sensors.json" "$W/live-sensors.json" <<'PY'
import json, sys
k, lost = int(sys.argv[1]), int(sys.argv[2])
ref = {r["sensor"]: r["packets"] for r in json.load(open(sys.argv[3]))}
live = {r["sensor"]: r["packets"] for r in json.load(open(sys.argv[4]))}
want = {"s1": k * ref["s1"], "s2": k * ref["s2"], "s3": (k + 4) * ref["s3"] - lost}
print(f"   s3: {live['s3']} stored + {lost} lost (spool_write_failed, reported) = {(k + 4) * ref['s3']} replayed")
assert lost > 0, "nothing was lost: the spool disk did not fill"
assert live == want, f"{live} != {want}"
PY
}
t0=$SECONDS
until check_spool_full >"$W/compare.out" 2>&1; do
  ((SECONDS - t0 < 120)) || { cat "$W/compare.out"; fail "spool-full totals"; }
  sleep 2
done
cat "$W/compare.out"
"$BIN" sensors --config "$W/centre.toml"

step "9. SIGTERM: both daemons stop cleanly"
for i in 1 2 3; do kill -TERM "${SENSOR_PID[$i]}"; done
for i in 1 2 3; do wait "${SENSOR_PID[$i]}" || fail "sensor s$i exit status $?"; done
stop_collector TERM
"$BIN" verify --config "$W/centre.toml" >/dev/null || fail "teiten verify found faults in the centre's store"
echo "PASS: sensor network ($K replays of 3 × 3,000 packets, $((SECONDS)) s)"
