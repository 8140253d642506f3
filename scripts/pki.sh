#!/usr/bin/env bash
# The sensor network's certificates, with the openssl command line (docs/DEPLOY.md):
#
#   scripts/pki.sh init DIR                    a CA (EC P-256, 10 years) and an empty CRL
#   scripts/pki.sh collector DIR HOST...       the collector's key and certificate; HOST are its
#                                              DNS names and/or IP addresses, as sensors dial it
#   scripts/pki.sh request DIR SENSOR_ID       AT THE SENSOR: its key and a signing request
#                                              (the key never leaves the sensor)
#   scripts/pki.sh sign DIR REQUEST.csr [DAYS] AT THE CENTRE: a sensor certificate (default 825 days)
#   scripts/pki.sh sensor DIR SENSOR_ID [DAYS] request + sign in one place (tests, labs)
#   scripts/pki.sh revoke DIR CERT.crt         revokes it and writes DIR/ca.crl again
#   scripts/pki.sh crl DIR                     writes DIR/ca.crl again (do it before it expires:
#                                              every 30 days; the collector refuses all with a stale CRL)
#
# The certificate's common name is the sensor id: the collector takes a batch only from the
# sensor its certificate names. Keys are made mode 600.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,18p' "$0"; exit 2; }
mkdir -p "$dir"
conf="$dir/openssl-ca.cnf"
export TEITEN_SAN=${TEITEN_SAN:-DNS:unused}  # the config names it; only collector certificates use it

write_conf() {
  cat >"$conf" <<CNF
[ ca ]
default_ca = teiten_ca
[ teiten_ca ]
dir = $dir
database = \$dir/index.txt
new_certs_dir = \$dir/issued
certificate = \$dir/ca.crt
private_key = \$dir/ca.key
serial = \$dir/serial
crlnumber = \$dir/crlnumber
default_md = sha256
default_crl_days = 30
policy = any
unique_subject = no
copy_extensions = none
[ any ]
commonName = supplied
[ sensor_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ collector_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = \${ENV::TEITEN_SAN}
CNF
}

valid_id() { [[ "$1" =~ ^[a-z0-9_][a-z0-9._-]{0,63}$ ]]; }
newkey() { (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null); }
sign() {  # csr out ext days
  TEITEN_SAN=${TEITEN_SAN:-DNS:unused} openssl ca -batch -config "$conf" -in "$1" -out "$2" \
    -extensions "$3" -days "$4" -notext 2>"$dir/.last-error" || { cat "$dir/.last-error" >&2; exit 1; }
}

case "$cmd" in
  init)
    [ -f "$dir/ca.key" ] && { echo "pki: $dir/ca.key exists; not replacing the CA" >&2; exit 1; }
    write_conf
    mkdir -p "$dir/issued"; : >"$dir/index.txt"; echo 1000 >"$dir/serial"; echo 1000 >"$dir/crlnumber"
    newkey "$dir/ca.key"
    openssl req -new -x509 -key "$dir/ca.key" -out "$dir/ca.crt" -days 3650 -subj "/CN=teiten sensor network CA" \
      -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl ca -batch -config "$conf" -gencrl -out "$dir/ca.crl" 2>/dev/null
    echo "pki: CA in $dir (ca.crt is given to every sensor and the collector; ca.key stays here)";;
  collector)
    shift 2; [ $# -ge 1 ] || { echo "pki: collector needs at least one host name or address" >&2; exit 2; }
    san=""; for h in "$@"; do
      if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then san+="${san:+,}IP:$h"; else san+="${san:+,}DNS:$h"; fi
    done
    newkey "$dir/collector.key"
    openssl req -new -key "$dir/collector.key" -subj "/CN=$1" -out "$dir/collector.csr"
    TEITEN_SAN=$san sign "$dir/collector.csr" "$dir/collector.crt" collector_ext 825
    echo "pki: $dir/collector.crt for $san";;
  request)
    id=${3:-}; valid_id "$id" || { echo "pki: '$id' is not a sensor id ([a-z0-9._-], 1-64)" >&2; exit 2; }
    newkey "$dir/$id.key"
    openssl req -new -key "$dir/$id.key" -subj "/CN=$id" -out "$dir/$id.csr"
    echo "pki: $dir/$id.key (keep it here) and $dir/$id.csr (send it to the centre)";;
  sign)
    csr=${3:-}; days=${4:-825}
    id=$(openssl req -in "$csr" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p')
    valid_id "$id" || { echo "pki: request names '$id', not a sensor id" >&2; exit 2; }
    sign "$csr" "$dir/$id.crt" sensor_ext "$days"
    echo "pki: $dir/$id.crt for sensor $id (send it back with ca.crt)";;
  sensor)
    id=${3:-}; days=${4:-825}
    "$0" request "$dir" "$id" >/dev/null
    "$0" sign "$dir" "$dir/$id.csr" "$days";;
  revoke)
    openssl ca -batch -config "$conf" -revoke "${3:?certificate}" 2>"$dir/.last-error" || { cat "$dir/.last-error" >&2; exit 1; }
    openssl ca -batch -config "$conf" -gencrl -out "$dir/ca.crl" 2>/dev/null
    echo "pki: revoked ${3}; give the collector the new $dir/ca.crl (it reads it at start)";;
  crl)
    openssl ca -batch -config "$conf" -gencrl -out "$dir/ca.crl" 2>/dev/null; echo "pki: $dir/ca.crl";;
  *) sed -n '2,18p' "$0"; exit 2;;
esac
