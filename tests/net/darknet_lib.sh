# Sourced by tests/net/scanners.sh and tests/net/tool_tags.sh: four network namespaces made for
# one test run — a scanner, a darknet, a victim and an attacker —
#
#   scanner 10.76.0.1 —— 10.76.0.2 darknet 10.78.0.1 —— 10.78.0.2 victim 10.79.0.2 —— 10.79.0.1 attacker
#
# where the darknet routes nothing and holds no address of DARK_NET, and the victim answers
# packets spoofed from DARK_NET back through the darknet.
#
#   darknet_setup PREFIX WORKDIR_NAME DARK_NET
#
# exits 77 (skipped) without root or network namespaces; sets W (a work directory), S D V A (the
# namespaces), PIDS (a file of background PIDs that cleanup kills) and removes the namespaces it
# made, and W unless KEEP is set, on exit. Defines step, fail and nsx.
step() { echo "== $(date -u +%T) $*"; }
fail() { echo "FAIL: $*"; exit 1; }
nsx() { local n=$1; shift; ip netns exec "$n" "$@"; }

darknet_setup() {
  local p=$1 name=$2 dark=$3
  if [ "$(id -u)" != 0 ] || ! ip netns add "${p}probe" 2>/dev/null; then
    echo "SKIP: needs root and network namespaces"; exit 77
  fi
  ip netns del "${p}probe"
  W=$(mktemp -d "/tmp/teiten-$name-XXXXXX")
  S=${p}s D=${p}d V=${p}v A=${p}a
  NS="$S $D $V $A"
  PIDS="$W/pids"; : >"$PIDS"
  trap darknet_cleanup EXIT
  step "namespaces"
  local n
  for n in $NS; do ip netns add "$n"; ip -n "$n" link set lo up; done
  darknet_link "$S" sc0 10.76.0.1 "$D" dk0 10.76.0.2
  darknet_link "$D" dv0 10.78.0.1 "$V" vt0 10.78.0.2
  darknet_link "$A" at0 10.79.0.1 "$V" va0 10.79.0.2
  ip -n "$S" route add default via 10.76.0.2
  ip -n "$A" route add default via 10.79.0.2
  # The victim answers spoofed sources through the darknet; it must not drop them for arriving
  # on another interface than its route back.
  ip -n "$V" route add "$dark" via 10.78.0.1
  local k
  for k in all default va0 vt0; do nsx "$V" sysctl -qw "net.ipv4.conf.$k.rp_filter=0"; done
  # One SYN-ACK retransmission, so that every reply is sent within the capture's time.
  nsx "$V" sysctl -qw net.ipv4.tcp_synack_retries=1
  # The darknet holds no address of DARK_NET and does not forward: what reaches it stays.
  nsx "$D" sysctl -qw net.ipv4.ip_forward=0
}

darknet_link() {  # NS_A IF_A ADDR_A NS_B IF_B ADDR_B
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
  ip -n "$1" addr add "$3/24" dev "$2"; ip -n "$1" link set "$2" up
  ip -n "$4" addr add "$6/24" dev "$5"; ip -n "$4" link set "$5" up
}

darknet_cleanup() {
  set +e
  local pid n
  while read -r pid; do kill "$pid" 2>/dev/null; done <"$PIDS"
  sleep 0.5
  for n in $NS; do ip netns del "$n" 2>/dev/null; done
  if [ -n "${KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi
}
