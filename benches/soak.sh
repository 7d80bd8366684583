#!/usr/bin/env bash
# Memory under sustained hostile traffic: does everything diag keeps stay within its caps?
#
# The demo checkout service (examples/checkout-axum, on CPU 0) runs for DURATION seconds
# (default 120) under five loopback clients at once (on CPU 1), each aimed at one of diag's
# bounds:
#   - product pages at random ids, every tenth in diagnostic mode (route templates, not
#     raw paths: one series however many ids);
#   - debug POSTs of a BODY_KB KiB JSON body (default 256) to /echo: every capture is cut at
#     64 KiB a side, and the flight recorder's 8 MiB fill and evict;
#   - garbage: random unmatched paths, random `X-Debug` values up to 600 bytes (oversized
#     ones included), malformed `traceparent`, `tracestate` up to 700 bytes;
#   - debug requests to /slow that the client abandons after 50 ms (incomplete captures,
#     the abandoned counter, the in-flight gauge coming back down);
#   - a reader of /metrics and /debug/requests every second.
# The debug budget is lifted (DIAG_DEBUG_BUDGET) so that every debug request is captured.
#
# Every SAMPLE seconds it prints the server's resident memory (VmRSS) and diag's own
# gauges; at the end, how much the resident memory grew over the second half of the run.
# A bounded service levels off once the recorder is full; a leak keeps climbing.
#
#   benches/soak.sh                 # 120 s
#   DURATION=600 benches/soak.sh    # longer
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
need wrk taskset curl

DURATION=${DURATION:-120}
SAMPLE=${SAMPLE:-10}
BODY_KB=${BODY_KB:-256}
PORT=${PORT:-18095}
URL=http://127.0.0.1:$PORT
# Every debug request captured: the point is to fill the recorder, not the budget.
export DIAG_DEBUG_BUDGET=1000000 DIAG_DEBUG_BURST=1000000

cargo build -q --release -p checkout-axum
BIN=${CARGO_TARGET_DIR:-target}/release/checkout-axum
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

cat >"$tmp/products.lua" <<'LUA'
local token = os.getenv("DIAG_TOKEN")
local n = 0
request = function()
  n = n + 1
  local path = "/products/" .. math.random(1, 1000000)
  if n % 10 == 0 then
    return wrk.format("GET", path, { ["X-Debug"] = token })
  end
  return wrk.format("GET", path)
end
LUA
cat >"$tmp/echo.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Debug"] = os.getenv("DIAG_TOKEN")
wrk.headers["Cookie"] = "session=abc"
wrk.body = '{"password":"hunter2","data":"' .. string.rep("x", $BODY_KB * 1024) .. '"}'
LUA
cat >"$tmp/garbage.lua" <<'LUA'
local chars = "abcdefghijklmnopqrstuvwxyz0123456789-_=,;."
local function rnd(n)
  local t = {}
  for i = 1, n do
    local k = math.random(1, #chars)
    t[i] = chars:sub(k, k)
  end
  return table.concat(t)
end
request = function()
  return wrk.format("GET", "/" .. rnd(math.random(1, 40)) .. "/" .. rnd(8), {
    ["X-Debug"] = rnd(math.random(1, 600)),
    ["traceparent"] = "00-" .. rnd(32) .. "-" .. rnd(16) .. "-01",
    ["tracestate"] = rnd(math.random(1, 700)),
  })
end
LUA

LISTEN=127.0.0.1:$PORT taskset -c 0 "$BIN" >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || { echo "the demo did not start on $URL" >&2; exit 1; }

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$server/status"; }
metric() {
  # metric NAME: the sum of NAME's samples on /metrics (0 when absent).
  curl -s "$URL/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d", s }'
}

start_rss=$(rss_kib)
taskset -c 1 wrk -t1 -c8 -d"${DURATION}s" -s "$tmp/products.lua" "$URL" >"$tmp/products.out" &
taskset -c 1 wrk -t1 -c2 -d"${DURATION}s" -s "$tmp/echo.lua" "$URL/echo" >"$tmp/echo.out" &
taskset -c 1 wrk -t1 -c4 -d"${DURATION}s" -s "$tmp/garbage.lua" "$URL" >"$tmp/garbage.out" &
end=$((SECONDS + DURATION))
(
  while [ $SECONDS -lt $end ]; do
    taskset -c 1 curl -s -m 0.05 -H "X-Debug: $DIAG_TOKEN" "$URL/slow?ms=200" >/dev/null || true
  done
) &
(
  while [ $SECONDS -lt $end ]; do
    curl -s -H "Authorization: Bearer $DIAG_TOKEN" "$URL/debug/requests" >/dev/null || true
    sleep 1
  done
) &

echo "demo checkout service, $DURATION s of hostile traffic; resident memory at start: $((start_rss / 1024)) MiB"
printf '%6s %8s %10s %12s %10s %10s %10s %12s\n' "s" "RSS MiB" "captures" "recorder KiB" "evicted" "rejected" "abandoned" "active now"
half_rss=
elapsed=0
while [ $elapsed -lt "$DURATION" ]; do
  sleep "$SAMPLE"
  elapsed=$((elapsed + SAMPLE))
  rss=$(rss_kib)
  [ $elapsed -ge $((DURATION / 2)) ] && [ -z "$half_rss" ] && half_rss=$rss
  printf '%6d %8.1f %10d %12d %10d %10d %10d %12d\n' "$elapsed" "$(echo "$rss / 1024" | bc -l)" \
    "$(metric diag_debug_recorder_captures)" "$(($(metric diag_debug_recorder_bytes) / 1024))" \
    "$(metric diag_debug_recorder_evicted_total)" "$(metric diag_debug_rejected_total)" \
    "$(metric http_server_requests_abandoned_total)" "$(metric http_server_active_requests)"
done
wait $(jobs -p | grep -v "^$server$") 2>/dev/null || true
sleep 1
end_rss=$(rss_kib)
series=$(curl -s "$URL/metrics" | grep -c '^http_server_request_duration_seconds_count' || true)
echo
for f in products echo garbage; do
  printf '%-9s %s\n' "$f:" "$(awk '/requests in/ { print $1, "requests" }' "$tmp/$f.out")"
done
echo "duration series on /metrics at the end: $series"
echo "resident memory: start $((start_rss / 1024)) MiB, half-way $((half_rss / 1024)) MiB, end $((end_rss / 1024)) MiB;" \
  "growth over the second half: $(((end_rss - half_rss) / 1024)) MiB ($(echo "100 * ($end_rss - $half_rss) / $half_rss" | bc) %)"
