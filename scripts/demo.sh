#!/usr/bin/env bash
# teiten's main job on the embedded default store: simulate a quarter of darknet traffic at
# three sensors, ingest it, and show the quarter's top tables.
#   scripts/demo.sh            (about a minute on 2 cores, most of it the first build)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build Release
T=build/src/cli/teiten
GEN=build/bench/teiten-gen-trace
DEMO=var/demo
rm -rf "$DEMO/store"
mkdir -p "$DEMO/pcap"
cat > "$DEMO/teiten.toml" <<TOML
[store]
path = "store"
timezone = "Asia/Tokyo"

[geo]
country_db = "../../node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb"
asn_db = "../geo/asn.mmdb"

[[sensor]]
id = "jp-tyo-1"
name = "Tokyo 1"
group = "domestic"
country = "JP"
prefixes = ["203.0.113.0/24"]

[[sensor]]
id = "jp-osa-1"
name = "Osaka 1"
group = "domestic"
country = "JP"
prefixes = ["198.51.100.0/24"]

[[sensor]]
id = "partner-1"
name = "Partner CSIRT 1"
group = "partner"
country = "PH"
prefixes = ["192.0.2.0/24"]
TOML
CFG="$DEMO/teiten.toml"
# Sources are drawn from the real IPv4 ranges of the geo database, so enrichment gives real
# regions and networks.
[ -f var/geo/ranges.csv ] || "$T" geo --config "$CFG" --ranges-csv var/geo/ranges.csv
GEO=(--ranges-csv var/geo/ranges.csv)
seed=1
for s in jp-tyo-1:203.0.113.0/24 jp-osa-1:198.51.100.0/24 partner-1:192.0.2.0/24; do
  id=${s%%:*}; net=${s#*:}
  # 2018 Q2 and Q3, so that the quarter has previous ranks to compare with.
  for q in 2018-04-01:91 2018-07-01:92; do
    start=${q%%:*}; days=${q#*:}
    out="$DEMO/pcap/$id-$start.pcap.zst"
    if [ ! -f "$out" ]; then
      "$GEN" --packets 1500000 --sources 60000 --seed $((seed++)) --start "$start" --days "$days" \
        --monitored "$net" "${GEO[@]}" --out "$DEMO/pcap/tmp.pcap" >/dev/null
      zstd -q -f --rm -T2 "$DEMO/pcap/tmp.pcap" -o "$out"
    fi
    "$T" ingest --config "$CFG" --sensor "$id" "$out"
  done
done
echo
"$T" top ports --config "$CFG" --period 2018Q3
echo
"$T" top countries --config "$CFG" --period 2018Q3 --lang ja
echo
"$T" top asns --config "$CFG" --period 2018Q3 -n 5
echo
"$T" summary --config "$CFG" --period 2018Q3 -n 5
echo
echo "The store is in $DEMO/store; try: $T series --config $CFG --period 2018Q3 --by-country 445/tcp"
