#!/usr/bin/env bash
# Where the extra CPU of one server over another goes, per request, on loopback: the two
# servers run on CPU 0 at the same time (as in load_ab.sh), each saturated by its own wrk
# on CPU 1, while `perf record -C 0` samples CPU 0. Samples are split by process, divided
# by that server's request count, and scaled to nanoseconds with the server's CPU time
# per request, so the rows of A and B compare like for like.
#
#   benches/profile_ab.sh                  # bare against diag, 20 s
#   benches/profile_ab.sh bare diag 40     # any two load_target variants, duration in s
#   B_ENV=DIAG_DISABLED=1 benches/profile_ab.sh diag diag
#
# Prints the symbols whose cost per request differs most, then the same by group
# (diag, the kernel, allocator, memmove, axum, hyper, tokio, ...). Needs perf, with
# permission to sample a CPU (root, or kernel.perf_event_paranoid <= 0).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
need wrk taskset curl perf awk

A=${1:-bare}
B=${2:-diag}
SECONDS_RUN=${3:-20}
ROWS=${ROWS:-30}
cargo build -q --release -p diag-benches --bin load_target
BIN=${LOAD_TARGET:-${CARGO_TARGET_DIR:-target}/release/load_target}
TICK=$(getconf CLK_TCK)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $(jobs -p) 2>/dev/null || true' EXIT

env ${A_ENV:-} taskset -c 0 "${A_BIN:-$BIN}" "$A" 127.0.0.1:18111 >/dev/null 2>&1 &
sa=$!
env ${B_ENV:-} taskset -c 0 "${B_BIN:-$BIN}" "$B" 127.0.0.1:18112 >/dev/null 2>&1 &
sb=$!
wait_up http://127.0.0.1:18111/products/7
wait_up http://127.0.0.1:18112/products/7
a0=$(cpu_ticks "$sa"); b0=$(cpu_ticks "$sb")
taskset -c 1 wrk -t1 -c32 -d"${SECONDS_RUN}s" http://127.0.0.1:18111/products/7 >"$tmp/a" &
wa=$!
taskset -c 1 wrk -t1 -c32 -d"${SECONDS_RUN}s" http://127.0.0.1:18112/products/7 >"$tmp/b" &
wb=$!
sleep 1
perf record -q -F "${FREQ:-1999}" -C 0 -o "$tmp/perf.data" -- sleep $((SECONDS_RUN - 2)) >/dev/null 2>&1
wait "$wa" "$wb"
a1=$(cpu_ticks "$sa"); b1=$(cpu_ticks "$sb")
na=$(awk '/requests in/ {print $1}' "$tmp/a"); nb=$(awk '/requests in/ {print $1}' "$tmp/b")
perf script -i "$tmp/perf.data" -F pid,ip,sym 2>/dev/null >"$tmp/samples"
awk -v sa="$sa" -v sb="$sb" -v na="$na" -v nb="$nb" -v rows="$ROWS" \
    -v ca="$(( (a1 - a0) ))" -v cb="$(( (b1 - b0) ))" -v tick="$TICK" -v A="$A" -v B="$B" '
function group(s) {
  if (s ~ /diag_/) return "diag"
  if (s ~ /mem(move|set|cpy|cmp)/) return "memmove, memset, memcmp"
  if (s ~ /malloc|free|_int_|unlink_chunk|rdl_alloc|rust_alloc|rust_dealloc/) return "allocator"
  if (s ~ /clock_gettime|read_tsc/) return "clock"
  if (s ~ /tracing/) return "tracing"
  if (s ~ /axum|matchit/) return "axum"
  if (s ~ /tower/) return "tower"
  if (s ~ /hyper/) return "hyper"
  if (s ~ /tokio|mio/) return "tokio"
  if (s ~ /^http::|bytes::/) return "http, bytes"
  if (s ~ /serde|btree|BTree/) return "serde (the handler)"
  if (s ~ /^[a-z_0-9.]+$/) return "kernel"
  return "other"
}
{
  pid = $1; $1 = ""; $2 = ""; sym = substr($0, 3)
  if (pid == sa) { a[sym]++; ta++; ga[group(sym)]++ }
  else if (pid == sb) { b[sym]++; tb++; gb[group(sym)]++ }
}
END {
  # ns per sample per request: the server CPU per request over its samples per request.
  cpa = ca / tick * 1e9 / na; cpb = cb / tick * 1e9 / nb
  ka = cpa / (ta / na) / na; kb = cpb / (tb / nb) / nb
  printf "A = %s: %d requests, %.2f µs CPU each; B = %s: %d requests, %.2f µs CPU each; B - A = %+.0f ns\n",
    A, na, cpa / 1000, B, nb, cpb / 1000, cpb - cpa
  printf "\nns per request by group (B - A, A, B):\n"
  for (g in ga) seen[g] = 1
  for (g in gb) seen[g] = 1
  for (g in seen) printf "%+8.1f %8.1f %8.1f  %s\n", gb[g] * kb - ga[g] * ka, ga[g] * ka, gb[g] * kb, g | "sort -rn"
  close("sort -rn")
  printf "\nns per request by symbol, the %d largest differences (B - A, A, B):\n", rows
  for (s in a) all[s] = 1
  for (s in b) all[s] = 1
  for (s in all) printf "%+8.1f %8.1f %8.1f  %s\n", b[s] * kb - a[s] * ka, a[s] * ka, b[s] * kb, substr(s, 1, 110) | "sort -rn | head -" rows
  close("sort -rn | head -" rows)
}' "$tmp/samples"
kill "$sa" "$sb"; wait "$sa" "$sb" 2>/dev/null || true
