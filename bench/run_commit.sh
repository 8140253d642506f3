#!/usr/bin/env bash
# Commit cost against store size (issue 16): a 1,000-packet capture of one sensor-day committed
# into the store that bench/run_queries.sh built (SENSORS × PACKETS), and the same kind of capture
# into an empty store, RUNS times each, in one run; then SMALL commits of 1,000 packets on
# average (ten sensors, one file per sensor-hour) into a new store, a day at a time with the
# folds a day later's ingests make, with the commit rates of the first and last days, and the
# files and query times after them. Prints Markdown for docs/BENCHMARKS.md.
#   bench/run_commit.sh SENSORS PACKETS [RUNS=11] [SMALL=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:?sensors}
P=${2:?packets per sensor per quarter}
RUNS=${3:-11}
SMALL=${4:-2000}
B=${BUILD_DIR:-build}
case $B in /*) T=$B/src/cli/teiten ;; *) T=$PWD/$B/src/cli/teiten ;; esac
BIG=${BENCH_DIR:-/var/tmp/teiten-bench}/queries-$S-$P
DIR=${BENCH_DIR:-/var/tmp/teiten-bench}/commit
[ -f "$BIG/built" ] || { echo "build the store first: bench/run_queries.sh $S $P" >&2; exit 1; }
rm -rf "$DIR" && mkdir -p "$DIR"
gen() {  # gen OUT SEED SENSOR START DAYS PACKETS
  "$B/bench/teiten-gen-trace" --packets "$6" --sources 2000 --seed "$2" --start "$4" --days "$5" \
    --monitored "10.$3.0.0/24" --ranges-csv "$BIG/ranges.csv" --out "$1" >/dev/null
}
stored=$(python3 -c "import json,sys; print(sum(i['kept'] for i in json.load(open(sys.argv[1]))['inputs']))" "$BIG/store/MANIFEST")
echo "| commit of 1,000 packets into | run | wall ms | peak RSS MB | its background merge, s |"
echo "|---|---:|---:|---:|---:|"
: > "$DIR/walls"
for r in $(seq 1 "$RUNS"); do
  # A new seed each run: a capture the big store already holds would be skipped as a duplicate.
  gen "$DIR/c$r.pcap" "$(date +%s)$r" 1 2018-08-12 1 1000
  cp "$DIR/c$r.pcap" "$DIR/e$r.pcap"
  for where in big empty; do
    if [ $where = big ]; then cfg=$BIG/teiten.toml; else
      rm -rf "$DIR/empty"; mkdir -p "$DIR/empty"
      sed "s|^path = .*|path = \"$DIR/empty/store\"|" "$BIG/teiten.toml" > "$DIR/empty.toml"
      cfg=$DIR/empty.toml
    fi
    f=$DIR/c$r.pcap; [ $where = empty ] && f=$DIR/e$r.pcap
    # Wall time to the millisecond (/usr/bin/time's is to 10 ms: a commit takes a few of those).
    t0=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$DIR/t" "$T" ingest --config "$cfg" --sensor s1 "$f" >"$DIR/out"
    t1=$(date +%s%N)
    kb=$(cat "$DIR/t")
    # A commit that did not add its 1,000 packets measures nothing.
    grep -q ' ok$' "$DIR/out" || { echo "not committed: $(tail -1 "$DIR/out")" >&2; exit 1; }
    # The ingest returned once committed; the merge it started (a process of its own, there by
    # the time the ingest returns) runs on. Waited for before the next commit, so that no commit
    # is timed beside another's merge.
    store=$BIG/store; [ $where = empty ] && store=$DIR/empty/store
    m0=$(date +%s%N)
    while pgrep -f "merge --background --store $(realpath "$store")\$" >/dev/null; do sleep 0.02; done
    m1=$(date +%s%N)
    label="$where store"; [ $where = big ] && label="store of $stored packets"
    echo "$where $(( (t1 - t0) / 1000000 )) $kb" >> "$DIR/walls"
    awk -v l="$label" -v r="$r" -v w=$(( (t1 - t0) / 1000000 )) -v kb="$kb" -v m=$(( (m1 - m0) / 1000000 )) \
      'BEGIN{printf "| %s | %d | %d | %.0f | %.2f |\n", l, r, w, kb/1024, m/1000}'
  done
done
# Medians of the runs (the first commit into the big store reads its files cold).
med() { sort -n | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
bw=$(awk '$1=="big"{print $2}' "$DIR/walls" | med); ew=$(awk '$1=="empty"{print $2}' "$DIR/walls" | med)
bm=$(awk '$1=="big"{print $3}' "$DIR/walls" | med); em=$(awk '$1=="empty"{print $3}' "$DIR/walls" | med)
echo
[ "$RUNS" -gt 0 ] && awk -v bw="$bw" -v ew="$ew" -v bm="$bm" -v em="$em" 'BEGIN{printf "Medians: %d ms into the big store, %d ms into an empty one (%.2fx); peak RSS %.0f MB and %.0f MB (%.2fx).\n", bw, ew, bw/ew, bm/1024, em/1024, bm/em}'
echo
# The commits left keys of the big store in several parts, hot: its merger waits (as `teiten
# merge --linger`, which the waits above do not count as a merge running) and merges them whole
# once they are cold, ten minutes after the last commit, the quarter's key included; that would
# run beside what is timed below. Merged now instead (what the store converges to when quiet),
# so that the waiting merger then finds nothing to do.
[ "$RUNS" -gt 0 ] && "$T" merge --config "$BIG/teiten.toml" --all --fold-captures-after -1 >/dev/null
[ "$SMALL" -gt 0 ] || exit 0
# Many small commits: one file per sensor-hour, 1,000 packets each.
mkdir -p "$DIR/small"
sed "s|^path = .*|path = \"$DIR/small/store\"|" "$BIG/teiten.toml" > "$DIR/small.toml"
per=$(( SMALL / S ))
# One trace per sensor over its hours, cut into a file per hour (editcap -i 3600): 1,000 packets
# an hour on average, more by day than by night, as the generator's daily cycle has it.
for i in $(seq 1 "$S"); do
  gen "$DIR/small/s$i.all" "$i" "$i" 2018-07-01 "$(awk -v h="$per" 'BEGIN{printf "%.6f", h / 24}')" $((per * 1000))
  (cd "$DIR/small" && editcap -i 3600 "s$i.all" "s$i-.pcap" >/dev/null && rm "s$i.all")
done
files=$(ls "$DIR"/small/*.pcap | wc -l)
# The captures arrive an hour at a time; a capture older than a day is folded by the next
# ingest. Replayed a day at a time: each day's captures ingested (one `teiten ingest` per
# sensor), then what a day later's ingest does to them (`teiten merge --fold-captures-after 0`,
# as if a day had passed). Commits per second are reported for the first and last ten days: is
# a commit's cost flat in what the store already holds?
days=$(ls "$DIR"/small/*.pcap | sed -E 's/.*_([0-9]{8})[0-9]{6}\.pcap$/\1/' | sort -u)
t0=$(date +%s%N)
ndays=$(echo "$days" | wc -l)
k=0
first_n=0 first_ns=0 last_n=0 last_ns=0 commit_ns=0
for d in $days; do
  k=$((k + 1))
  a=$(date +%s%N)
  for i in $(seq 1 "$S"); do
    hour_files=$(ls "$DIR"/small/s$i-_*_"$d"*.pcap 2>/dev/null | sort || true)
    [ -n "$hour_files" ] && "$T" ingest --config "$DIR/small.toml" --sensor "s$i" $hour_files >/dev/null
  done
  b=$(date +%s%N)
  n=$(ls "$DIR"/small/*_"$d"*.pcap | wc -l)
  commit_ns=$((commit_ns + b - a))
  if [ "$k" -le 10 ]; then first_n=$((first_n + n)); first_ns=$((first_ns + b - a)); fi
  if [ "$k" -gt $((ndays - 10)) ]; then last_n=$((last_n + n)); last_ns=$((last_ns + b - a)); fi
  [ "$k" -lt "$ndays" ] && "$T" merge --config "$DIR/small.toml" --fold-captures-after 0 >/dev/null
done
t1=$(date +%s%N)
rate() { awk -v n="$1" -v ns="$2" 'BEGIN{printf "%.1f", n / (ns / 1e9)}'; }
q() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
ninputs() { python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['inputs']))" "$1/MANIFEST"; }
# A source the small captures hold, for `teiten ip`.
ip=$(tshark -r "$(ls "$DIR"/small/s1-*.pcap | sort | head -1)" -c 1 -T fields -e ip.src 2>/dev/null)
row() {  # row LABEL CONFIG STOREDIR
  local f p n
  f=$(find "$3" -type f | wc -l); p=$(find "$3/rollup" -type f | wc -l); n=$(ninputs "$3")
  echo "| $1 | $n | $f | $p | $(q "$T" top ports --config "$2" --period 2018Q3) ms | $(q "$T" summary --config "$2" --period 2018Q3) ms | $(q "$T" ip --config "$2" "$ip") ms |"
}
echo
echo "$files commits of $((SMALL * 1000 / files)) packets on average by $S sensors over $ndays days: $(rate "$files" "$commit_ns") commits/s while committing (first ten days $(rate "$first_n" "$first_ns"), last ten days $(rate "$last_n" "$last_ns")); $(( (t1 - t0) / 1000000000 )) s with the daily folds"
echo
echo "| store | inputs | files | rollup parts | top ports 2018Q3 | summary 2018Q3 | ip $ip |"
echo "|---|---:|---:|---:|---:|---:|---:|"
row "after the last day's commits (that day not yet folded)" "$DIR/small.toml" "$DIR/small/store"
# A day later each `teiten ingest` folds the captures older than a day, tier by tier; here
# `teiten merge` does it at once (captures of any age), until nothing more is folded.
prev=-1
for _ in 1 2 3 4 5 6 7 8 9 10; do
  n=$(ninputs "$DIR/small/store"); [ "$n" = "$prev" ] && break; prev=$n
  "$T" merge --config "$DIR/small.toml" --fold-captures-after 0 >/dev/null
done
# Keys no commit touched for ten minutes are merged whole by the next ingest; at once here.
"$T" merge --config "$DIR/small.toml" --all --fold-captures-after -1 >/dev/null
row "folded and merged (steady state)" "$DIR/small.toml" "$DIR/small/store"
# The same packets in one capture per sensor, merged whole: what the queries should match.
mkdir -p "$DIR/large"
sed "s|^path = .*|path = \"$DIR/large/store\"|" "$BIG/teiten.toml" > "$DIR/large.toml"
for i in $(seq 1 "$S"); do
  mergecap -a -F pcap -w "$DIR/large/s$i.pcap" $(ls "$DIR"/small/s$i-*.pcap | sort)
  "$T" ingest --config "$DIR/large.toml" --sensor "s$i" "$DIR/large/s$i.pcap" >/dev/null
done
"$T" merge --config "$DIR/large.toml" --all >/dev/null
row "the same packets, one capture per sensor" "$DIR/large.toml" "$DIR/large/store"
