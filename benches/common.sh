# Shared by the loopback benchmark scripts (load.sh, load_ab.sh, load_rate.sh, load_p99.sh,
# load_mixed.sh, soak.sh); sourced.

export DIAG_TOKEN=${DIAG_TOKEN:-bench-token}
# Debug traffic must not be capped by the budget when its cost is what we measure.
export DIAG_DEBUG_BUDGET=${DIAG_DEBUG_BUDGET:-1000000}
export DIAG_DEBUG_BURST=${DIAG_DEBUG_BURST:-1000000}

# need TOOL...: stop with the tool's name when it is missing.
need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$0 needs $tool (Debian: apt-get install $tool)" >&2; exit 1; }
  done
}

# write_lua DIR: wrk scripts DIR/debug.lua (every request with X-Debug) and DIR/mixed.lua
# (every tenth request with X-Debug).
write_lua() {
  cat >"$1/debug.lua" <<'LUA'
local token = os.getenv("DIAG_TOKEN")
request = function()
  return wrk.format("GET", nil, { ["X-Debug"] = token })
end
LUA
  # plain.lua: every request without X-Debug, built by the same Lua path as the others
  # (wrk's per-request Lua call changes how the client paces its requests).
  cat >"$1/plain.lua" <<'LUA'
request = function()
  return wrk.format("GET", nil)
end
LUA
  cat >"$1/mixed.lua" <<'LUA'
local token = os.getenv("DIAG_TOKEN")
local n = 0
request = function()
  n = n + 1
  if n % 10 == 0 then
    return wrk.format("GET", nil, { ["X-Debug"] = token })
  end
  return wrk.format("GET", nil)
end
LUA
}

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wait_up URL: until the server answers (5 s at most).
wait_up() {
  for _ in $(seq 1 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "no server answered at $1" >&2
  exit 1
}

# median: of the numbers on stdin, one per line.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# wrk_us PERCENTILE FILE: that line of wrk --latency output ("99%  1.23ms") in µs (1230).
wrk_us() {
  awk -v p="$1" '$1 == p {
    n = $2 + 0; u = $2; sub(/^[0-9.]+/, "", u);
    m = (u == "ms") ? 1000 : (u == "s") ? 1000000 : 1; printf "%.0f", n * m }' "$2"
}
