#!/usr/bin/env bash
# The sample reports and the page images in docs/img: each shipped seed scenario (TSUBAME 2018 Q3
# and 2015 Q4, TALOT2 2007-08) simulated at its shipped scale, ingested, and reported in Japanese
# and English as HTML and PDF; the first page and the first page of notable phenomena of each PDF
# rendered to PNG.
#   scripts/sample_reports.sh [OUT]      (default var/samples; about ten minutes on 2 cores)
# TEITEN=path/to/teiten uses that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TEITEN:-}" ]; then
  scripts/setup.sh build Release
  TEITEN=$PWD/build/src/cli/teiten
fi
command -v pdftoppm >/dev/null || {
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q poppler-utils; else sudo apt-get install -y -q poppler-utils; fi
}
T=$TEITEN
OUT=${1:-var/samples}
IMG=docs/img
mkdir -p "$OUT" "$IMG"
CFGDIR=$(mktemp -d)
trap 'rm -rf "$CFGDIR"' EXIT
[ -f var/geo/ranges.csv ] || {
  printf '[store]\npath = "%s/s"\n[geo]\ncountry_db = "%s"\nasn_db = "%s"\n' "$CFGDIR" \
    "$PWD/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb" \
    "$PWD/var/geo/asn.mmdb" >"$CFGDIR/geo.toml"
  "$T" geo --config "$CFGDIR/geo.toml" --ranges-csv var/geo/ranges.csv
}

# scenario period stem
for job in tsubame-2018q3:2018Q3:report-2018Q3 tsubame-2015q4:2015Q4:report-2015Q4 \
  talot2-2007-08:2007-08:report-2007-08; do
  IFS=: read -r scn period stem <<<"$job"
  dir=$OUT/$scn
  rm -rf "$dir"
  mkdir -p "$dir"
  "$T" simulate --scenario "$scn" --out "$dir/pcap" --ranges-csv var/geo/ranges.csv \
    --days-per-file 31 >/dev/null
  # The config names the scenario's sensors, as its ground truth lists them.
  python3 - "$dir" "$PWD" <<'PY'
import json, sys
d, root = sys.argv[1], sys.argv[2]
g = json.load(open(d + "/pcap/ground_truth.json"))
q = lambda s: json.dumps(str(s))
t = ('[store]\npath = "store"\ntimezone = "UTC"\n\n[geo]\n'
     f'country_db = {q(root + "/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb")}\n'
     f'asn_db = {q(root + "/var/geo/asn.mmdb")}\n')
for s in g["sensors"]:
    t += (f'\n[[sensor]]\nid = {q(s["id"])}\nname = {q(s["id"])}\ngroup = {q(s["group"])}\n'
          f'country = {q(s["country"])}\nprefixes = [{", ".join(q(p) for p in s["prefixes"])}]\n')
open(d + "/teiten.toml", "w").write(t)
PY
  for f in "$dir"/pcap/*/*.pcap; do
    "$T" ingest --config "$dir/teiten.toml" --sensor "$(basename "$(dirname "$f")")" "$f" >/dev/null
  done
  rm -rf "$dir/pcap"/*/
  for lang in ja en; do
    for fmt in html pdf; do
      "$T" report --config "$dir/teiten.toml" --period "$period" --lang "$lang" --format "$fmt" \
        -o "$OUT/$stem.$lang.$fmt"
    done
    pdf=$OUT/$stem.$lang.pdf
    pdftoppm -f 1 -l 1 -r 80 -png -singlefile "$pdf" "$IMG/$stem.$lang.p1"
    # The page after the one where the notable phenomena begin: their first figures.
    first=$(pdftotext "$pdf" - |
      awk 'BEGIN{RS="\f"} !n && /(2\. 注目された現象|2\. Notable phenomena|(^|\n)2\.1 )/ {n=NR}
           END {if (n) print n}')
    pages=$(pdfinfo "$pdf" | awk '/^Pages:/ {print $2}')
    if [ -n "$first" ] && [ "$first" -lt "$pages" ]; then
      pdftoppm -f $((first + 1)) -l $((first + 1)) -r 80 -png -singlefile "$pdf" \
        "$IMG/$stem.$lang.findings"
    fi
  done
done
echo
echo "Reports: $OUT/report-*.{ja,en}.{html,pdf}; page images: $IMG/report-*.png"
