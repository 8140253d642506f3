#!/usr/bin/env bash
# Scans, DoS backscatter, payloads and OS guesses from real tools (issue 12 points 3, 4, 7, 6). In
# network namespaces made here — a scanner, a darknet, a victim and an attacker — real nmap -sS,
# masscan, zmap and SIPVicious's svmap scan the darknet's 10.77.0.0/24, the scanner's own kernel
# connects to three of its addresses, and hping3 floods a victim with SYNs whose sources are spoofed
# inside that /24, so that the victim's kernel answers (SYN-ACK from a listening port, RST from a
# closed one) into the darknet. tcpdump captures what reaches the darknet; `teiten ingest` reads
# it; then:
#   - `teiten scans` finds each scanner (by its own source address) on the port it scanned, with
#     every one of the 256 addresses covered and the tool named;
#   - `teiten dos` finds the victim, with packets equal to tshark's count of its replies in the
#     same captures;
#   - `teiten payloads --templates --port 5060/udp` puts svmap's OPTIONS probes (each with its
#     own target, branch and tag) in one template, with as many packets as tshark counts;
#   - `teiten os` gives every source p0f itself (`p0f -r`) fingerprints in the capture the same
#     guess, Nmap's SYN scan among them.
#
#   tests/net/scanners.sh TEITEN_BINARY
#
# Exit 77 (skipped) without root, network namespaces or the tools. Traffic stays inside the
# namespaces made here, which are the only ones removed at the end.
set -euo pipefail
BIN=$(readlink -f "$1")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
for t in nmap masscan zmap hping3 svmap p0f tcpdump tshark python3 ip; do
  command -v "$t" >/dev/null || { echo "SKIP: $t is not installed"; exit 77; }
done
. "$(dirname "$0")/darknet_lib.sh"
darknet_setup tsc$$ scanners 10.77.0.0/24

step "capture"
for i in dk0 dv0; do
  # `ip netns exec` directly, not through nsx: a backgrounded function is a subshell whose PID
  # is not tcpdump's, and killing it left tcpdump running after the test.
  ip netns exec "$D" tcpdump -i "$i" -U -w "$W/$i.pcap" -s 0 'dst net 10.77.0.0/24' \
    2>"$W/$i.tcpdump.log" &
  echo $! >>"$PIDS"
done
sleep 2

GW_MAC=$(ip -n "$D" -o link show dk0 | sed -E 's/.*link\/ether ([0-9a-f:]+).*/\1/')
step "nmap -sS 23/tcp from 10.76.0.1"
nsx "$S" nmap -n -Pn -sS -p 23 --max-retries 0 -T5 10.77.0.0/24 >"$W/nmap.log" 2>&1 || fail "nmap: $(tail -3 "$W/nmap.log")"
step "masscan 445/tcp from 10.76.0.11"
nsx "$S" masscan -p445 10.77.0.0/24 --rate 1000 --adapter sc0 --adapter-ip 10.76.0.11 \
  --router-mac "$GW_MAC" --wait 1 >"$W/masscan.log" 2>&1 || fail "masscan: $(tail -3 "$W/masscan.log")"
step "zmap 80/tcp from 10.76.0.12"
: >"$W/no-blacklist"
nsx "$S" zmap -p 80 -i sc0 -S 10.76.0.12 -G "$GW_MAC" -b "$W/no-blacklist" -B 1M -c 1 \
  -o "$W/zmap.out" 10.77.0.0/24 >"$W/zmap.log" 2>&1 || fail "zmap: $(tail -3 "$W/zmap.log")"

step "a Linux kernel's own SYNs (connect) to 22/tcp from 10.76.0.21"
ip -n "$S" addr add 10.76.0.21/24 dev sc0
for k in 5 6 7; do
  nsx "$S" python3 -c "
import socket
s = socket.socket()
s.bind(('10.76.0.21', 0))
s.settimeout(1.5)
try:
    s.connect(('10.77.0.$k', 22))
except OSError:
    pass"
done
step "svmap (SIPVicious) 5060/udp from 10.76.0.1"
nsx "$S" timeout 120 svmap 10.77.0.0/24 -p 5060 >"$W/svmap.log" 2>&1 || true

step "hping3: 70 s of SYNs spoofed from the darknet to the victim's 80/tcp (open) and 81/tcp (closed)"
ip netns exec "$V" python3 -m http.server 80 --bind 10.79.0.2 >/dev/null 2>&1 &
echo $! >>"$PIDS"
sleep 1
for i in $(seq 0 69); do
  nsx "$A" hping3 -q -S -p 80 -a "10.77.0.$((i * 3 % 256))" -c 1 10.79.0.2 >/dev/null 2>&1 &
  nsx "$A" hping3 -q -S -p 81 -a "10.77.0.$((i * 7 % 256))" -c 1 10.79.0.2 >/dev/null 2>&1 &
  sleep 1
done
wait_for() { sleep "$1"; }
wait_for 8  # the SYN-ACKs' one retransmission (after 1 s, then give up after 2 more)
for pid in $(head -2 "$PIDS"); do kill -INT "$pid" 2>/dev/null || true; done
sleep 1

step "ingest"
DAY=$(TZ=UTC date +%F)
cat >"$W/t.toml" <<TOML
[store]
path = "$W/store"
timezone = "UTC"
[[sensor]]
id = "dk"
prefixes = ["10.77.0.0/24"]
TOML
"$BIN" ingest --config "$W/t.toml" --sensor dk "$W/dk0.pcap" "$W/dv0.pcap" || fail "ingest"
PERIOD="$DAY"
[ "$(TZ=UTC date +%F)" = "$DAY" ] || PERIOD="$DAY..$(TZ=UTC date +%F)"

step "teiten scans"
"$BIN" scans --config "$W/t.toml" --period "$PERIOD" -n 100 | tee "$W/scans.txt"
for spec in "10.76.0.1 23/tcp nmap" "10.76.0.11 445/tcp masscan" "10.76.0.12 80/tcp zmap"; do
  set -- $spec
  "$BIN" scans --config "$W/t.toml" --period "$PERIOD" --port "$2" --format json >"$W/scan-$3.json"
  python3 - "$W/scan-$3.json" "$1" "$3" <<'PY' || fail "scans: $spec"
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["source"] == sys.argv[2]]
assert len(rows) == 1, f"{sys.argv[3]}: {len(rows)} scans from {sys.argv[2]}"
r = rows[0]
assert r["addresses"] == 256 and abs(r["coverage"] - 1.0) < 1e-9, f"{sys.argv[3]}: {r}"
assert r["tool"] == sys.argv[3], f"tool {r['tool']} for {sys.argv[3]}"
print(f"ok: {sys.argv[3]} from {sys.argv[2]}: {r['probes']} probes, {r['addresses']} addresses, tool {r['tool']}")
PY
done
# tshark's count of each scanner's probes against teiten's.
for spec in "10.76.0.1 23" "10.76.0.11 445" "10.76.0.12 80"; do
  set -- $spec
  want=$(tshark -r "$W/dk0.pcap" -Y "ip.src==$1 && tcp.dstport==$2 && tcp.flags.syn==1 && tcp.flags.ack==0" 2>/dev/null | wc -l)
  got=$(python3 -c "import json,sys; print(sum(r['probes'] for r in json.load(open(sys.argv[1])) if r['source']==sys.argv[2]))" \
    "$W/scan-$(case $2 in 23) echo nmap;; 445) echo masscan;; 80) echo zmap;; esac).json" "$1")
  [ "$want" = "$got" ] || fail "probes from $1 to $2/tcp: tshark $want, teiten $got"
  echo "ok: $1 → $2/tcp: $got probes, as tshark counts"
done

step "teiten payloads 5060/udp"
"$BIN" payloads --config "$W/t.toml" --period "$PERIOD" --port 5060/udp -n 2
"$BIN" payloads --config "$W/t.toml" --period "$PERIOD" --port 5060/udp --templates -n 2
"$BIN" payloads --config "$W/t.toml" --period "$PERIOD" --port 5060/udp --templates -n 100000 \
  --format json >"$W/payloads.json"
want=$(tshark -r "$W/dk0.pcap" -Y 'udp.dstport==5060 && sip.Method=="OPTIONS" && udp contains "sipvicious"' 2>/dev/null | wc -l)
python3 - "$W/payloads.json" "$want" <<'PY' || fail "payloads"
import json, sys
groups = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
assert want >= 256, f"tshark counts only {want} svmap probes"
svmap = [g for g in groups if g["strings"].startswith("OPTIONS sip:#@#.#.#.# SIP/#.#")]
assert len(svmap) == 1, f"{len(svmap)} templates of svmap's OPTIONS"
assert svmap[0]["packets"] == want, f"teiten {svmap[0]['packets']} packets, tshark {want}"
print(f"ok: svmap's {want} OPTIONS probes in one template ({svmap[0]['variants']} distinct payloads), as tshark counts")
PY

step "teiten os against p0f -r on the same capture"
p0f -r "$W/dk0.pcap" -o "$W/p0f.log" >/dev/null 2>&1 || fail "p0f -r"
"$BIN" os --config "$W/t.toml" --period "$PERIOD" -n 10
"$BIN" os --config "$W/t.toml" --period "$PERIOD" -n 100000 --format json >"$W/os.json"
python3 - "$W/p0f.log" "$W/os.json" <<'PY' || fail "os"
import collections, json, sys
want = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    if "] mod=syn|" not in line:
        continue
    kv = dict(f.split("=", 1) for f in line.strip().split("] ", 1)[1].split("|") if "=" in f)
    os = kv.get("os") or kv.get("app")
    want[kv["cli"].rsplit("/", 1)[0]]["unknown" if os == "???" else os] += 1
ours = {r["source"]: r["os"] for r in json.load(open(sys.argv[2]))}
assert want.get("10.76.0.1", {}).get("NMap SYN scan"), f"p0f: {dict(want)}"
for src, c in want.items():
    guess = c.most_common(1)[0][0]
    assert ours.get(src) == guess, f"{src}: p0f {guess}, teiten {ours.get(src)}"
    print(f"ok: {src}: {guess} (p0f and teiten)")
PY

step "tool tags: teiten top tools and teiten ip"
"$BIN" top tools --config "$W/t.toml" --period "$PERIOD" | tee "$W/tools.txt"
# Every source of the capture, with the tags its traffic must get: the scanners by their own
# packets, the victim by its replies, the kernel's connects none.
for spec in "10.76.0.1 nmap,sipvicious" "10.76.0.11 masscan" "10.76.0.12 zmap" "10.76.0.21 -" \
  "10.79.0.2 backscatter"; do
  set -- $spec
  "$BIN" ip --config "$W/t.toml" "$1" --format json >"$W/ip-$1.json"
  python3 - "$W/ip-$1.json" "$1" "$2" <<'PY' || fail "tags of $spec"
import json, sys
rows = {r["field"]: r["value"] for r in json.load(open(sys.argv[1]))}
got = rows["tags"].replace(" ", "")
assert got == sys.argv[3], f"{sys.argv[2]}: tags {got!r}, want {sys.argv[3]!r} (evidence: {rows['tag_evidence']})"
print(f"ok: {sys.argv[2]}: {rows['tags']} ({rows['tag_evidence'] or 'no evidence'})")
PY
done
# Every source the darknet saw is one of those five: precision and recall are over all of them.
n=$(tshark -r "$W/dk0.pcap" -T fields -e ip.src 2>/dev/null | sort -u | wc -l)
nv=$(tshark -r "$W/dv0.pcap" -T fields -e ip.src 2>/dev/null | sort -u | wc -l)
echo "sources in the captures: $n (scanners), $nv (victim)"

step "teiten dos"
"$BIN" dos --config "$W/t.toml" --period "$PERIOD" | tee "$W/dos.txt"
"$BIN" dos --config "$W/t.toml" --period "$PERIOD" --format json >"$W/dos.json"
want=$(tshark -r "$W/dv0.pcap" -Y "ip.src==10.79.0.2 && (tcp.flags.reset==1 || (tcp.flags.syn==1 && tcp.flags.ack==1))" 2>/dev/null | wc -l)
python3 - "$W/dos.json" "$want" <<'PY' || fail "dos"
import json, sys
rows = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
assert want >= 140, f"tshark counts only {want} replies"
v = [r for r in rows if r["victim"] == "10.79.0.2"]
assert len(v) == 1 and len(rows) == 1, rows
assert v[0]["packets"] == want, f"teiten {v[0]['packets']} packets, tshark {want}"
assert "80/TCP" in v[0]["attacked ports"] and "81/TCP" in v[0]["attacked ports"], v[0]
print(f"ok: victim 10.79.0.2, {want} packets as tshark counts, {v[0]['minutes']} min, peak {v[0]['peak/min']}/min")
PY
echo "PASS"
