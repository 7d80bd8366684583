#!/usr/bin/env bash
# Normal requests' latency at saturation with and without 10% debug traffic, as issue 4
# words it: wrk (closed-loop) against one diag server pinned to CPU 0, wrk on CPU 1. A
# main wrk sends plain requests on MAIN_CONNS connections and reports their latency; a
# side wrk on SIDE_CONNS connections sends either plain requests (the baseline) or
# every request with X-Debug, alternated round by round on the same server.
#
#   benches/load_mixed.sh        # ROUNDS=6 DURATION=5s MAIN_CONNS=27 SIDE_CONNS=3
#
# In a closed loop the side connections' share of requests falls when theirs take longer;
# the script prints it. At saturation every request queues behind the others, so the
# normal requests' latency grows with the average cost of a request: this is the
# throughput view of the same thing load_ab.sh's 10% row measures.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
need wrk taskset curl

ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-5s}
MAIN_CONNS=${MAIN_CONNS:-27}
SIDE_CONNS=${SIDE_CONNS:-3}
PORT=${PORT:-18083}

cargo build -q --release -p diag-benches --bin load_target
BIN=${LOAD_TARGET:-${CARGO_TARGET_DIR:-target}/release/load_target}
URL="http://127.0.0.1:$PORT/products/7"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $(jobs -p) 2>/dev/null || true' EXIT
write_lua "$tmp"

taskset -c 0 "$BIN" diag "127.0.0.1:$PORT" >/dev/null 2>&1 &
SERVER=$!
wait_up "$URL"
taskset -c 1 wrk -t1 -c"$MAIN_CONNS" -d1s "$URL" >/dev/null   # warm-up

echo "| round | side traffic | normal p50 µs | normal p99 µs | normal requests | side requests | side share |"
echo "|---|---|---|---|---|---|---|"
: >"$tmp/p99s"
for round in $(seq 1 "$ROUNDS"); do
  # ABBA: plain first in odd rounds, debug first in even ones.
  order="plain debug"; [ $((round % 2)) = 0 ] && order="debug plain"
  for side in $order; do
    taskset -c 1 wrk -t1 -c"$SIDE_CONNS" -d"$DURATION" -s "$tmp/$side.lua" "$URL" >"$tmp/side" &
    taskset -c 1 wrk -t1 -c"$MAIN_CONNS" -d"$DURATION" --latency "$URL" >"$tmp/main"
    wait %2 2>/dev/null || wait
    n=$(awk '/requests in/ {print $1}' "$tmp/main"); s=$(awk '/requests in/ {print $1}' "$tmp/side")
    p50=$(wrk_us 50% "$tmp/main"); p99=$(wrk_us 99% "$tmp/main")
    echo "$round $side $p99" >>"$tmp/p99s"
    awk -v r="$round" -v t="$side" -v a="$p50" -v b="$p99" -v n="$n" -v s="$s" 'BEGIN {
      printf "| %d | %s | %d | %d | %d | %d | %.1f%% |\n", r, t, a, b, n, s, 100 * s / (n + s) }'
  done
done
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
ratios=$(for r in $(seq 1 "$ROUNDS"); do
  awk -v r="$r" '$1 == r && $2 == "debug" { d = $3 } $1 == r && $2 == "plain" { p = $3 } END { printf "%.3f\n", d / p }' "$tmp/p99s"
done)
echo
echo "normal p99 with debug side traffic / with plain side traffic, per round: $(echo $ratios); median $(echo "$ratios" | median)"
