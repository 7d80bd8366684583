#!/usr/bin/env bash
# Normal requests' p99 with and without 10% debug traffic, below saturation, with both
# conditions interleaved in one run: the open-loop client (benches/src/bin/load_client.rs)
# alternates phases of PHASE_MS, its debug connections sending X-Debug only in odd
# phases, and splits the normal connections' latencies by phase (skipping each phase's
# first half, while diag's log callsites close after the last debug request). On this VM
# the p99 of two identical runs a minute apart can differ by 10x (scheduling stalls of
# other tenants); phases two seconds apart meet the same stalls. Each round is a control
# run (the same phases, no X-Debug in any: how far apart two identical halves land)
# followed by the real one. At the end, benches/src/bin/phase_stats.rs compares the
# phases' p99s pooled over all rounds (each odd phase against the even ones beside it),
# for the controls and the real runs, and the real runs against the controls, with 95%
# intervals.
#
#   benches/load_p99.sh       # ROUNDS=2 RUN_SECONDS=60 PHASE_MS=2000 CONNS=20 RATE=10000
#   LOAD_TARGET=/path/to/old/load_target benches/load_p99.sh   # another build's server
#   RT=1 benches/load_p99.sh     # the server at SCHED_FIFO priority (needs root)
#
# The server (diag, every feature on) is pinned to CPU 0, the client to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
need taskset curl

ROUNDS=${ROUNDS:-2}
SECONDS_PER_RUN=${RUN_SECONDS:-60}  # not SECONDS: bash keeps its own counter under that name
CONNS=${CONNS:-20}
RATE=${RATE:-10000}
PORT=${PORT:-18082}
DEBUG_CONNS=$((CONNS / 10))
export PHASE_MS=${PHASE_MS:-2000}

cargo build -q --release -p diag-benches --bin load_target --bin load_client --bin phase_stats
DIR=${CARGO_TARGET_DIR:-target}/release
ADDR="127.0.0.1:$PORT"
LOG=$(mktemp)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -f "$LOG"' EXIT

# diag_debug_activations_total on the server's /metrics.
activations() {
  curl -sf -H "Authorization: Bearer $DIAG_TOKEN" "http://$ADDR/metrics" |
    awk '$1 == "diag_debug_activations_total" { print $2 }'
}

# RT=1: the server at real-time priority (SCHED_FIFO 50), so nothing else in this VM
# preempts it between requests (the client, which spins before each send, stays normal).
RT_PREFIX=()
[ "${RT:-0}" = 1 ] && RT_PREFIX=(chrt -f 50)
"${RT_PREFIX[@]}" taskset -c 0 "${LOAD_TARGET:-$DIR/load_target}" diag "$ADDR" >/dev/null 2>&1 &
SERVER=$!
wait_up "http://$ADDR/products/7"
env -u PHASE_MS taskset -c 1 "$DIR/load_client" "$ADDR" 1000 1 "$CONNS" 0 >/dev/null   # warm-up

echo "$DEBUG_CONNS of $CONNS connections debug in odd phases of $PHASE_MS ms; $RATE requests/s; ${SECONDS_PER_RUN}s a run"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round, control:"
  PHASE_CONTROL=1 taskset -c 1 "$DIR/load_client" "$ADDR" "$RATE" "$SECONDS_PER_RUN" "$CONNS" "$DEBUG_CONNS" |
    sed 's/^/  /'
  echo "round $round, X-Debug in odd phases:"
  before=$(activations)
  taskset -c 1 "$DIR/load_client" "$ADDR" "$RATE" "$SECONDS_PER_RUN" "$CONNS" "$DEBUG_CONNS" |
    sed 's/^/  /'
  # The odd phases' debug requests must have run in diagnostic mode, or the comparison
  # compares nothing.
  served=$(($(activations) - before))
  echo "  requests in diagnostic mode: $served"
  [ "$served" -gt 0 ] || { echo "no request ran in diagnostic mode (DIAG_TOKEN?)" >&2; exit 1; }
done | tee "$LOG"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
"$DIR/phase_stats" "$LOG"
