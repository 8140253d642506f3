#!/usr/bin/env bash
# Installs what teiten needs on Debian 12 (apt-get, npm ci), builds it, and converts the free
# ASN data to an .mmdb. Safe to run again: each step is skipped when already done.
#   scripts/setup.sh [build-dir] [cmake build type]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
TYPE=${2:-Release}

PKGS=(build-essential cmake ninja-build pkg-config git ca-certificates tzdata gzip zstd
  libpcap-dev libmaxminddb-dev libzstd-dev zlib1g-dev libroaring-dev libtomlplusplus-dev
  libcli11-dev nlohmann-json3-dev libsimdjson-dev libhowardhinnant-date-dev libfmt-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev tshark wireshark-common mmdb-bin
  chromium fonts-noto-cjk python3-html5lib python3-pil libxml2-utils clang libclang-rt-dev
  libcpp-httplib-dev libssl-dev libsodium-dev openssl curl iproute2 nftables tcpreplay tcpdump
  nmap masscan zmap hping3 p0f sipvicious python3-jsonschema)
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Geo data from npm (the lock file pins the exact version; nothing is fetched at run time).
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.teiten-lock; then
  echo "setup: npm ci (geo databases)"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.teiten-lock
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE="$TYPE" >/dev/null
fi
cmake --build "$BUILD" -j"$(nproc)" --target teiten teiten-geo-build teiten-gen-trace teiten-pcap-loop

# The ASN database ships as CSV: convert it once to GeoLite2-ASN-shaped MMDB.
ASN_DIR=node_modules/@ip-location-db/asn
GEO_OUT=var/geo
mkdir -p "$GEO_OUT"
if [ ! -f "$GEO_OUT/asn.mmdb" ] || [ "$ASN_DIR/asn-ipv4.csv" -nt "$GEO_OUT/asn.mmdb" ]; then
  version=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$ASN_DIR/package.json" | head -1)
  # The package version carries its build date: 2.3.YYYYMMDDHH.
  stamp=${version##*.}
  epoch=$(date -u -d "${stamp:0:8} ${stamp:8:2}:00" +%s 2>/dev/null || date -u +%s)
  echo "setup: converting ASN data (ip-location-db asn $version) to $GEO_OUT/asn.mmdb"
  "$BUILD/src/enrich/writer/teiten-geo-build" --asn-v4 "$ASN_DIR/asn-ipv4.csv" \
    --asn-v6 "$ASN_DIR/asn-ipv6.csv" --out "$GEO_OUT/asn.mmdb" \
    --description "ip-location-db asn $version (RouteViews, DB-IP, NRO; CC BY 4.0)" --epoch "$epoch"
fi
