#!/usr/bin/env bash
# Idle-stream benchmark: what N idle event streams cost the gateway, and
# whether it still answers calls at full speed while holding them.
#
#   scripts/bench-streams.sh [-c STREAMS] [-n CALLS] [-t sse|streamable|both]
#
# Starts the release gateway with one stdio demo backend and
# `server.max_sessions` / `server.max_connections` sized for STREAMS
# (default 10000) plus room for the benchmark client, waits for `gateway
# state: ready`, and measures:
#
#   - VmRSS and Threads of the gateway (not its backend), idle;
#   - `bench gateway -n CALLS` (default 2000) latency with no stream open;
#   - then for each transport: `mcp-sentinel-loadgen streams` opens STREAMS
#     idle streams (legacy `GET /sse`, or Streamable HTTP initialize +
#     `GET /mcp`) in a separate process and holds them; VmRSS and Threads
#     with them open, the RSS delta per stream, and `bench gateway` again
#     meanwhile; then the streams are closed and the next transport starts
#     from the RSS left after that.
#
# The client process needs STREAMS + ~64 descriptors (`ulimit -n`), the
# gateway STREAMS + a few hundred. Traffic stays on 127.0.0.1; every wait
# is bounded.
set -euo pipefail

STREAMS=10000
CALLS=2000
KINDS="sse streamable"
usage() { echo "usage: scripts/bench-streams.sh [-c STREAMS] [-n CALLS] [-t sse|streamable|both]" >&2; exit 2; }
while getopts "c:n:t:h" opt; do
    case $opt in
        c) STREAMS=$OPTARG ;;
        n) CALLS=$OPTARG ;;
        t) case $OPTARG in sse | streamable) KINDS=$OPTARG ;; both) KINDS="sse streamable" ;; *) usage ;; esac ;;
        *) usage ;;
    esac
done
[[ $STREAMS =~ ^[1-9][0-9]*$ && $CALLS =~ ^[1-9][0-9]*$ ]] || usage

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

# Both bounds sized for STREAMS plus the benchmark's own connections and
# sessions (the defaults, 16 384 each, already hold 10 000; this keeps
# larger counts working).
MAX=$((STREAMS + 256))
cat >"$WORK/config.json" <<EOF
{
  "server": {"max_sessions": $MAX, "max_connections": $MAX},
  "mcpServers": {
    "alpha": {"command": "$REL/mcp-sentinel-demo", "args": ["--name", "alpha"]}
  }
}
EOF

start_gateway 15
BENCH=$REL/examples/bench
LOADGEN=$REL/mcp-sentinel-loadgen
echo "gateway pid $GW_PID at $URL" >&2
if grep -q 'serving at most' "$WORK/gateway.log"; then
    grep 'serving at most' "$WORK/gateway.log" >&2
fi

field() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$GW_PID/status"; }
p50() { sed -n 's/.*"p50_us":\([0-9.]*\).*/\1/p'; }
p99() { sed -n 's/.*"p99_us":\([0-9.]*\).*/\1/p'; }
ROWS=()
row() { ROWS+=("$(printf '%-40s %10s %8s %10s %10s %8s' "$@")"); }
calls() {
    local out
    out=$(timeout 300 "$BENCH" gateway --url "$URL" -n "$CALLS" --warmup 100)
    echo "$out" >&2
    CALL_P50=$(echo "$out" | p50)
    CALL_P99=$(echo "$out" | p99)
}

calls
IDLE_RSS=$(field VmRSS)
row "no stream open" "$IDLE_RSS" "$(field Threads)" "" "$CALL_P50" "$CALL_P99"

for kind in $KINDS; do
    BASE=$(field VmRSS)
    rm -f "$WORK/ready" "$WORK/stop"
    # Held at most 10 minutes: the stop file below ends it as soon as the
    # measurements are done.
    "$LOADGEN" streams --url "$URL" --transport "$kind" --count "$STREAMS" --threads 8 \
        --hold-s 600 --ready-file "$WORK/ready" --stop-file "$WORK/stop" >"$WORK/streams-$kind.json" &
    LG_PID=$!
    for _ in $(seq 1200); do
        [[ -s $WORK/ready ]] && break
        kill -0 "$LG_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -s $WORK/ready ]] || { echo "the load generator did not open its streams within 120 s" >&2; exit 1; }
    echo "$kind: $(cat "$WORK/ready")" >&2
    # Let the reactor and allocator settle (a keep-alive round included).
    sleep 2
    RSS=$(field VmRSS)
    THREADS=$(field Threads)
    calls
    PER=$(awk -v a="$BASE" -v b="$RSS" -v n="$STREAMS" 'BEGIN {printf "%.2f", (b - a) / n}')
    row "$STREAMS idle $kind streams" "$RSS" "$THREADS" "$PER" "$CALL_P50" "$CALL_P99"
    touch "$WORK/stop"
    wait "$LG_PID" || true
    cat "$WORK/streams-$kind.json" >&2
    # The gateway sees each client leave at once; give it a moment.
    sleep 2
    row "after closing them" "$(field VmRSS)" "$(field Threads)" "" "" ""
done

echo
printf '%-40s %10s %8s %10s %10s %8s\n' "gateway pid $GW_PID" "VmRSS KiB" "threads" "KiB/stream" "call p50us" "p99us"
printf '%s\n' "${ROWS[@]}"
