#!/usr/bin/env bash
# Loopback load benchmark: the server pinned to CPU 0, wrk (Debian's `wrk`) pinned to CPU 1,
# the variants alternated round by round in one run so machine noise hits them alike.
#
#   benches/load.sh            # ROUNDS=3 DURATION=5s CONNS=32 by default
#
# Prints one markdown row per variant and round: throughput, p50/p99 latency, and server CPU
# time per request (from /proc/PID/stat, clock-tick resolution over the whole run).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "load.sh needs wrk: apt-get install wrk" >&2; exit 1; }
command -v taskset >/dev/null || { echo "load.sh needs taskset (util-linux)" >&2; exit 1; }

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
PORT=${PORT:-18080}
export DIAG_TOKEN=${DIAG_TOKEN:-bench-token}
# Debug traffic must not be capped by the budget when its cost is what we measure.
export DIAG_DEBUG_BUDGET=${DIAG_DEBUG_BUDGET:-1000000}
export DIAG_DEBUG_BURST=${DIAG_DEBUG_BURST:-1000000}

cargo build -q --release -p diag-benches --bin load_target
BIN=${CARGO_TARGET_DIR:-target}/release/load_target
URL="http://127.0.0.1:$PORT/products/7"
TICK=$(getconf CLK_TCK)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $(jobs -p) 2>/dev/null || true' EXIT

cat >"$tmp/debug.lua" <<'LUA'
local token = os.getenv("DIAG_TOKEN")
request = function()
  return wrk.format("GET", nil, { ["X-Debug"] = token })
end
LUA

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# to microseconds: "1.23ms" -> 1230
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000; else m = 1;
    printf "%.0f", n * m }'
}

start_server() {
  taskset -c 0 "$BIN" "$1" "127.0.0.1:$PORT" >/dev/null 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf -o /dev/null "$URL" && return 0; sleep 0.05; done
  echo "server $1 did not start" >&2; exit 1
}

stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }

# wrk_run OUT CONNS [LUA]
wrk_run() {
  local out=$1 conns=$2 lua=${3:-}
  taskset -c 1 wrk -t1 -c"$conns" -d"$DURATION" --latency ${lua:+-s "$lua"} "$URL" >"$out"
}

report() { # label wrk_output cpu_ticks
  local label=$1 out=$2 ticks=$3
  local rps p50 p99 reqs
  rps=$(awk '/^Requests\/sec/ {print $2}' "$out")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
  reqs=$(awk '/requests in/ {print $1}' "$out")
  awk -v l="$label" -v r="$rps" -v a="$p50" -v b="$p99" -v t="$ticks" -v n="$reqs" -v k="$TICK" \
    'BEGIN { printf "| %s | %.0f | %d | %d | %.2f |\n", l, r, a, b, (t / k) * 1e6 / n }'
}

echo "| variant (round) | req/s | p50 µs | p99 µs | server CPU µs/req |"
echo "|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  for variant in bare diag trace; do
    start_server "$variant"
    wrk_run "$tmp/warm" "$CONNS"   # warm-up, discarded
    c0=$(cpu_ticks "$SERVER"); wrk_run "$tmp/out" "$CONNS"; c1=$(cpu_ticks "$SERVER")
    report "$variant ($round)" "$tmp/out" $((c1 - c0))
    if [ "$variant" = diag ]; then
      # Every request in diagnostic mode.
      c0=$(cpu_ticks "$SERVER"); wrk_run "$tmp/out" "$CONNS" "$tmp/debug.lua"; c1=$(cpu_ticks "$SERVER")
      report "diag, all debug ($round)" "$tmp/out" $((c1 - c0))
      # 10% of connections in diagnostic mode; the p99 is the normal requests' own.
      deb=$((CONNS / 10)); [ "$deb" -lt 1 ] && deb=1
      c0=$(cpu_ticks "$SERVER")
      wrk_run "$tmp/dbg" "$deb" "$tmp/debug.lua" &
      dpid=$!
      wrk_run "$tmp/out" $((CONNS - deb))
      wait "$dpid"
      c1=$(cpu_ticks "$SERVER")
      nd=$(awk '/requests in/ {print $1}' "$tmp/dbg"); nn=$(awk '/requests in/ {print $1}' "$tmp/out")
      report "diag, normal beside $deb debug conns ($((100 * nd / (nd + nn)))% debug) ($round)" "$tmp/out" 0 \
        | sed 's/| [0-9.]* |$/| - |/'
    fi
    stop_server
  done
done
