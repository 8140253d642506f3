#!/usr/bin/env bash
# The systemd units in packaging/systemd: valid to systemd itself (`systemd-analyze verify`), and
# hardened — `systemd-analyze security` rates each "OK" or better (exposure below 4.0 of 10).
#   tests/net/systemd_units.sh TEITEN_BINARY
set -euo pipefail
BIN=$(readlink -f "$1")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is not installed"; exit 77; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
for unit in teiten-collect teiten-sensor; do
  sed "s|/usr/local/bin/teiten|$BIN|" "$SRC/packaging/systemd/$unit.service" >"$W/$unit.service"
  systemd-analyze verify "$W/$unit.service"
  exposure=$(systemd-analyze security --offline=true "$W/$unit.service" 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [ -n "$exposure" ] || { echo "FAIL: no exposure level for $unit"; exit 1; }
  python3 -c "import sys; sys.exit(0 if float('$exposure') < 4.0 else 1)" ||
    { echo "FAIL: $unit exposure $exposure (want < 4.0)"; exit 1; }
  echo "$unit: valid, exposure $exposure"
done
