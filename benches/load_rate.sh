#!/usr/bin/env bash
# Fixed-rate loopback load: normal requests' latency with and without 10% debug traffic,
# below saturation. wrk (load.sh) is closed-loop: at saturation its p99 is queueing, and
# debug requests that take longer to serve shift everyone's queue. Here an open-loop
# client (benches/src/bin/load_client.rs) sends at a fixed RATE and measures each
# request's latency from when it was due.
#
#   benches/load_rate.sh      # ROUNDS=8 RUN_SECONDS=5 CONNS=20 RATE=10000 by default
#   LOAD_TARGET=/path/to/old/load_target benches/load_rate.sh   # another build's server
#   BARE=0 benches/load_rate.sh     # skip the bare-axum run of each round
#
# The server is pinned to CPU 0, the client to CPU 1. Each round serves both diag
# variants from one server process, in alternating order (ABBA), after a bare-axum run
# for scale. Prints one row per variant and round, then the p99s of normal requests
# pooled over all rounds and the median of the per-round ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
need taskset curl

ROUNDS=${ROUNDS:-8}
SECONDS_PER_RUN=${RUN_SECONDS:-5}  # not SECONDS: bash keeps its own counter under that name
CONNS=${CONNS:-20}
RATE=${RATE:-10000}
PORT=${PORT:-18081}
DEBUG_CONNS=$((CONNS / 10))

cargo build -q --release -p diag-benches --bin load_target --bin load_client
DIR=${CARGO_TARGET_DIR:-target}/release
ADDR="127.0.0.1:$PORT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $(jobs -p) 2>/dev/null || true' EXIT

start_server() {
  taskset -c 0 "${LOAD_TARGET:-$DIR/load_target}" "$1" "$ADDR" >/dev/null 2>&1 &
  SERVER=$!
  wait_up "http://$ADDR/products/7"
}
stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }

# run LABEL DEBUG_CONNS POOL: one markdown row per kind of request; normal latencies
# appended to $tmp/POOL, this run's normal p99 to $tmp/POOL.p99
run() {
  local label=$1 debug=$2 pool=$3
  taskset -c 1 "$DIR/load_client" "$ADDR" 1000 1 "$CONNS" 0 >/dev/null   # warm-up
  LATENCIES_OUT="$tmp/$pool" taskset -c 1 "$DIR/load_client" "$ADDR" "$RATE" "$SECONDS_PER_RUN" "$CONNS" "$debug" >"$tmp/out"
  awk '/^normal/ {print $9}' "$tmp/out" >>"$tmp/$pool.p99"
  awk -v l="$label" '{ kind = $1; sub(":", "", kind);
    printf "| %s | %s | %s | %s | %s | %s | %s |\n", l, kind, $2, $6, $9, $12, $15 }' "$tmp/out"
}

echo "| variant (round) | requests | count | p50 µs | p99 µs | p99.9 µs | max µs |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  if [ "${BARE:-1}" = 1 ]; then
    start_server bare
    run "bare ($round)" 0 bare
    stop_server
  fi
  start_server diag
  if [ $((round % 2)) = 1 ]; then
    run "diag, no debug ($round)" 0 quiet
    run "diag, $DEBUG_CONNS of $CONNS conns debug ($round)" "$DEBUG_CONNS" mixed
  else
    run "diag, $DEBUG_CONNS of $CONNS conns debug ($round)" "$DEBUG_CONNS" mixed
    run "diag, no debug ($round)" 0 quiet
  fi
  stop_server
done

p99() { sort -n "$1" | awk '{ v[NR] = $1 } END { i = int((NR - 1) * 0.99 + 0.5) + 1; print v[i] }'; }
echo
echo "| normal requests, all rounds pooled | count | p99 µs |"
echo "|---|---|---|"
for pool in bare quiet mixed; do
  [ -s "$tmp/$pool" ] || continue
  echo "| $pool | $(wc -l <"$tmp/$pool") | $(p99 "$tmp/$pool") |"
done
ratio=$(awk -v a="$(p99 "$tmp/mixed")" -v b="$(p99 "$tmp/quiet")" 'BEGIN { printf "%.2f", a / b }')
per_round=$(paste "$tmp/mixed.p99" "$tmp/quiet.p99" | awk '{ printf "%.2f\n", $1 / $2 }')
echo
echo "normal p99 with ${DEBUG_CONNS} of ${CONNS} connections debug / without: pooled $ratio," \
  "median of rounds $(echo "$per_round" | median) (rounds: $(echo $per_round))"
