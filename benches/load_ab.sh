#!/usr/bin/env bash
# Paired loopback comparison: two servers on the SAME core (CPU 0) at the same time, each
# saturated by its own wrk on CPU 1. The scheduler gives each half the core, so whatever
# else disturbs the machine (other VMs on the host, builds) hits both alike, and the
# ratio of their request counts is the ratio of their per-request costs. Sequential runs
# of the same server on this machine swing by ±15% from one run to the next; these
# ratios repeat within about 1% (the A/A check below).
#
#   benches/load_ab.sh                         # the standard pairs, ROUNDS=3 DURATION=4s
#   benches/load_ab.sh bare diag               # one pair of load_target variants
#   B_LUA=mixed benches/load_ab.sh diag diag   # B's client sends every 10th request with X-Debug
#   B_LUA=debug benches/load_ab.sh diag diag   # B's client sends X-Debug on every request
#   B_ENV=DIAG_DISABLED=1 benches/load_ab.sh diag diag   # B with the kill switch on
#   A_BIN=/tmp/old/load_target benches/load_ab.sh diag diag   # another build's server as A
#   A_ENV=... B_ENV=... B_BIN=...                        # the same for either side
#   RATE=20000 DURATION=20s benches/load_ab.sh bare diag  # below saturation: each side gets
#                                # RATE requests/s from the open-loop load_client instead
#                                # of wrk, so the server sleeps between requests in both
#                                # and CPU per request is its own work (no B_LUA here)
#
# Prints per round each side's requests and server CPU per request (/proc/PID/stat), and
# B/A: requests (throughput under an equal share of the core) and CPU per request.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
need wrk taskset curl

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4s}
CONNS=${CONNS:-32}

cargo build -q --release -p diag-benches --bin load_target --bin load_client
BIN=${LOAD_TARGET:-${CARGO_TARGET_DIR:-target}/release/load_target}
CLIENT=${CARGO_TARGET_DIR:-target}/release/load_client
RATE=${RATE:-}
[ -n "$RATE" ] && [ -n "${B_LUA:-}" ] && { echo "RATE and B_LUA do not go together" >&2; exit 1; }
BIN_A=${A_BIN:-$BIN}
BIN_B=${B_BIN:-$BIN}
TICK=$(getconf CLK_TCK)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $(jobs -p) 2>/dev/null || true' EXIT

write_lua "$tmp"


# drive PORT SECONDS LUA: load on 127.0.0.1:PORT from CPU 1 for SECONDS (wrk at
# saturation, or load_client at RATE when set); prints the requests served.
drive() {
  local url=http://127.0.0.1:$1/products/7 out
  out=$(mktemp -p "$tmp")
  if [ -n "$RATE" ]; then
    taskset -c 1 "$CLIENT" "127.0.0.1:$1" "$RATE" "$2" 20 0 >"$out"
    awk '$1 == "normal:" { print $2 }' "$out"
  else
    taskset -c 1 wrk -t1 -c"$CONNS" -d"$2s" ${3:+-s "$3"} "$url" >"$out"
    awk '/requests in/ { print $1 }' "$out"
  fi
}

# pair A B: ROUNDS paired runs
pair() {
  local a=$1 b=$2 lua=""
  [ -n "${B_LUA:-}" ] && lua="$tmp/${B_LUA}.lua"
  echo "A = $a${A_BIN:+ ($A_BIN)}${A_ENV:+ ($A_ENV)}, B = $b${B_BIN:+ ($B_BIN)}${B_ENV:+ ($B_ENV)}${B_LUA:+, B traffic: $B_LUA}"
  for round in $(seq 1 "$ROUNDS"); do
    env ${A_ENV:-} taskset -c 0 "$BIN_A" "$a" 127.0.0.1:18111 >/dev/null 2>&1 &
    local sa=$!
    env ${B_ENV:-} taskset -c 0 "$BIN_B" "$b" 127.0.0.1:18112 >/dev/null 2>&1 &
    local sb=$!
    wait_up http://127.0.0.1:18111/products/7
    wait_up http://127.0.0.1:18112/products/7
    drive 18111 1 >/dev/null &
    drive 18112 1 "$lua" >/dev/null
    wait %3 2>/dev/null || true
    local a0 b0 a1 b1
    a0=$(cpu_ticks "$sa"); b0=$(cpu_ticks "$sb")
    drive 18111 "${DURATION%s}" >"$tmp/a" &
    local wa=$!
    drive 18112 "${DURATION%s}" "$lua" >"$tmp/b"
    wait "$wa"
    a1=$(cpu_ticks "$sa"); b1=$(cpu_ticks "$sb")
    awk -v r="$round" -v ta=$((a1 - a0)) -v tb=$((b1 - b0)) -v k="$TICK" \
        -v na="$(cat "$tmp/a")" -v nb="$(cat "$tmp/b")" 'BEGIN {
      ca = (ta / k) * 1e6 / na; cb = (tb / k) * 1e6 / nb
      printf "  round %d: A %d requests, %.2f µs CPU each | B %d requests, %.2f µs CPU each | B/A requests %.3f, CPU per request %.3f (%+.2f µs)\n",
        r, na, ca, nb, cb, nb / na, cb / ca, cb - ca }'
    kill "$sa" "$sb"; wait "$sa" "$sb" 2>/dev/null || true
  done
}

if [ $# -ge 2 ]; then
  pair "$1" "$2"
else
  pair bare bare                                  # A/A: how far apart two identical servers land
  pair bare noop                                  # the floor of any route-aware axum middleware
  pair bare diag                                  # diag, every feature on, no debug traffic
  B_ENV=DIAG_DISABLED=1 pair diag diag            # diag's per-request work, kill switch on in B
  B_LUA=mixed pair diag diag                      # 10% of B's requests in diagnostic mode
  B_LUA=debug pair diag diag                      # every B request in diagnostic mode
  pair bare trace                                 # tower-http TraceLayer at INFO, for scale
fi
