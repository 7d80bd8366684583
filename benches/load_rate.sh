#!/usr/bin/env bash
# Fixed-rate loopback load: normal requests' latency with and without 10% debug traffic,
# below saturation. wrk (load.sh) is closed-loop: at saturation its p99 is queueing, and
# debug requests that take longer to serve shift everyone's queue. Here an open-loop
# client (benches/src/bin/load_client.rs) sends at a fixed RATE and measures each
# request's latency from when it was due.
#
#   RATE=5000 benches/load_rate.sh      # ROUNDS=3 SECONDS=5 CONNS=20 by default
#   LOAD_TARGET=/path/to/old/load_target benches/load_rate.sh   # another build's server
#
# The server is pinned to CPU 0, the client to CPU 1. Variants alternate round by round.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || { echo "load_rate.sh needs taskset (util-linux)" >&2; exit 1; }

ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS:-5}
CONNS=${CONNS:-20}
RATE=${RATE:-5000}
PORT=${PORT:-18081}
export DIAG_TOKEN=${DIAG_TOKEN:-bench-token}
export DIAG_DEBUG_BUDGET=${DIAG_DEBUG_BUDGET:-1000000}
export DIAG_DEBUG_BURST=${DIAG_DEBUG_BURST:-1000000}

cargo build -q --release -p diag-benches --bin load_target --bin load_client
DIR=${CARGO_TARGET_DIR:-target}/release
ADDR="127.0.0.1:$PORT"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

start_server() {
  taskset -c 0 "${LOAD_TARGET:-$DIR/load_target}" "$1" "$ADDR" >/dev/null 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://$ADDR/products/7" && return 0; sleep 0.05; done
  echo "server $1 did not start" >&2; exit 1
}
stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }

# run LABEL DEBUG_CONNS: one markdown row per kind of request
run() {
  local label=$1 debug=$2
  taskset -c 1 "$DIR/load_client" "$ADDR" 1000 1 "$CONNS" 0 >/dev/null   # warm-up
  taskset -c 1 "$DIR/load_client" "$ADDR" "$RATE" "$SECONDS_PER_RUN" "$CONNS" "$debug" |
    awk -v l="$label" '{ kind = $1; sub(":", "", kind);
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", l, kind, $2, $6, $9, $12, $15 }'
}

echo "| variant (round) | requests | count | p50 µs | p99 µs | p99.9 µs | max µs |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  start_server bare
  run "bare ($round)" 0
  stop_server
  start_server diag
  run "diag, no debug ($round)" 0
  run "diag, $((CONNS / 10)) of $CONNS conns debug ($round)" $((CONNS / 10))
  stop_server
done
