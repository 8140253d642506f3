#!/usr/bin/env bash
# The demo's config (scripts/demo.sh, bench/conformance.sh): the tsubame-2018q3 scenario's
# sensors (data/scenarios/tsubame-2018q3.toml: four in Japan, six in Asia-Pacific), a store in
# ./store beside the config, UTC days as the scenario's.
#   scripts/demo_config.sh COUNTRY_MMDB ASN_MMDB > teiten.toml
set -euo pipefail
printf '[store]\npath = "store"\ntimezone = "UTC"\n\n[geo]\n'
printf 'country_db = "%s"\n' "${1:?country database path, as the config should name it}"
printf 'asn_db = "%s"\n' "${2:?ASN database path, as the config should name it}"
n=16
for s in s01:jp:JP s02:jp:JP s03:jp:JP s04:jp:JP s05:apac:TW s06:apac:KR s07:apac:MY \
  s08:apac:TH s09:apac:PH s10:apac:AU; do
  IFS=: read -r id group cc <<<"$s"
  printf '\n[[sensor]]\nid = "%s"\nname = "%s"\ngroup = "%s"\ncountry = "%s"\n' \
    "$id" "$id" "$group" "$cc"
  printf 'prefixes = ["100.64.%d.0/24"]\n' $((n++))
done
