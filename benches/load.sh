#!/usr/bin/env bash
# Loopback load benchmark at saturation: the server pinned to CPU 0, wrk (Debian's `wrk`)
# pinned to CPU 1, the variants alternated round by round in one run so machine noise
# hits them alike.
#
#   benches/load.sh            # ROUNDS=5 DURATION=5s CONNS=32 by default
#
# Variants (benches/src/bin/load_target.rs): bare axum; diag with every feature on and no
# debug traffic; the same diag server with every request in diagnostic mode; tower-http's
# TraceLayer at INFO for scale. Prints one markdown row per variant and round
# (throughput, p50/p99 latency, server CPU time per request from /proc/PID/stat), then
# per-round ratios and their medians.
#
#   BASE=bare_header VARIANTS="bare bare_header diag" benches/load.sh
#                              # ratios against bare axum that returns a static header of a
#                              # traceparent's size (what issue 4's targets are judged by)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
need wrk taskset curl

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
PORT=${PORT:-18080}
VARIANTS=${VARIANTS:-bare diag trace}
BASE=${BASE:-bare}

cargo build -q --release -p diag-benches --bin load_target
BIN=${LOAD_TARGET:-${CARGO_TARGET_DIR:-target}/release/load_target}
URL="http://127.0.0.1:$PORT/products/7"
TICK=$(getconf CLK_TCK)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $(jobs -p) 2>/dev/null || true' EXIT

write_lua "$tmp"

start_server() {
  taskset -c 0 "$BIN" "$1" "127.0.0.1:$PORT" >/dev/null 2>&1 &
  SERVER=$!
  wait_up "$URL"
}

stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }

# measure NAME ROUND [LUA]: one wrk run against the running server; a markdown row, and
# "NAME ROUND req/s cpu-µs/req" appended to $tmp/results
measure() {
  local name=$1 round=$2 lua=${3:-}
  local c0 c1
  c0=$(cpu_ticks "$SERVER")
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --latency ${lua:+-s "$lua"} "$URL" >"$tmp/out"
  c1=$(cpu_ticks "$SERVER")
  local rps p50 p99 reqs
  rps=$(awk '/^Requests\/sec/ {print $2}' "$tmp/out")
  p50=$(wrk_us 50% "$tmp/out")
  p99=$(wrk_us 99% "$tmp/out")
  reqs=$(awk '/requests in/ {print $1}' "$tmp/out")
  awk -v l="$name ($round)" -v r="$rps" -v a="$p50" -v b="$p99" -v t=$((c1 - c0)) -v n="$reqs" \
    -v k="$TICK" -v f="$tmp/results" -v name="$name" -v round="$round" 'BEGIN {
      cpu = (t / k) * 1e6 / n
      printf "| %s | %.0f | %d | %d | %.2f |\n", l, r, a, b, cpu
      printf "%s %d %.0f %.3f\n", name, round, r, cpu >> f }'
}

echo "| variant (round) | req/s | p50 µs | p99 µs | server CPU µs/req |"
echo "|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  for variant in $VARIANTS; do
    start_server "$variant"
    taskset -c 1 wrk -t1 -c"$CONNS" -d1s "$URL" >/dev/null   # warm-up, discarded
    measure "$variant" "$round"
    if [ "$variant" = diag ]; then
      # The same server with every request in diagnostic mode.
      measure "diag, all debug" "$round" "$tmp/debug.lua"
    fi
    stop_server
  done
done

get() { awk -v n="$1" -v r="$2" -v c="$3" '$0 ~ "^" n " [0-9]" && $(NF - 2) == r { print $c }' "$tmp/results"; }
echo
echo "| round | diag / $BASE req/s | diag − $BASE CPU µs/req | debug / normal CPU per request |"
echo "|---|---|---|---|"
: >"$tmp/ratios"
for round in $(seq 1 "$ROUNDS"); do
  awk -v r="$round" -v br="$(get "$BASE" "$round" 3)" -v dr="$(get diag "$round" 3)" \
      -v bc="$(get "$BASE" "$round" 4)" -v dc="$(get diag "$round" 4)" -v xc="$(get "diag, all debug" "$round" 6)" \
      -v f="$tmp/ratios" 'BEGIN {
        printf "| %d | %.3f | %+.2f | %.2f |\n", r, dr / br, dc - bc, xc / dc
        printf "%.3f %.3f %.3f\n", dr / br, dc - bc, xc / dc >> f }'
done
echo "| median | $(awk '{print $1}' "$tmp/ratios" | median) | $(awk '{print $2}' "$tmp/ratios" | median) | $(awk '{print $3}' "$tmp/ratios" | median) |"
