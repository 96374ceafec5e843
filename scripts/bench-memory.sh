#!/usr/bin/env bash
# Memory benchmark: the gateway process's own RSS (not its backends').
#
#   scripts/bench-memory.sh [-n CALLS] [-s SESSIONS]
#
# Starts the release gateway with a demo.json-like configuration (two stdio
# demo backends and one local legacy-SSE demo backend the gateway launches
# itself), waits for `gateway state: ready`, then reads VmRSS, VmHWM and
# Threads from /proc/PID/status of the gateway: idle, after CALLS echo
# calls (default 1000), after opening and closing SESSIONS Streamable HTTP
# sessions (default 50), and after the same number of legacy SSE sessions.
# Traffic stays on 127.0.0.1; every wait is bounded.
set -euo pipefail

CALLS=1000
SESSIONS=50
usage() { echo "usage: scripts/bench-memory.sh [-n CALLS] [-s SESSIONS]" >&2; exit 2; }
while getopts "n:s:h" opt; do
    case $opt in
        n) CALLS=$OPTARG ;;
        s) SESSIONS=$OPTARG ;;
        *) usage ;;
    esac
done
[[ $CALLS =~ ^[1-9][0-9]*$ && $SESSIONS =~ ^[1-9][0-9]*$ ]] || usage

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

# A free loopback port for the SSE backend (bound, read, released).
SSE_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/config.json" <<EOF
{
  "mcpServers": {
    "alpha": {"command": "$REL/mcp-sentinel-demo", "args": ["--name", "alpha"]},
    "gamma": {"command": "$REL/mcp-sentinel-demo", "args": ["--name", "gamma"], "prefix": "gamma"},
    "beta": {
      "type": "sse",
      "url": "http://127.0.0.1:$SSE_PORT/sse",
      "command": "$REL/mcp-sentinel-demo",
      "args": ["--name", "beta", "--sse", "127.0.0.1:$SSE_PORT"],
      "prefix": "beta"
    }
  }
}
EOF

start_gateway 15
need_bench release
echo "gateway pid $GW_PID at $URL ($(grep -o 'gateway state: .*' "$WORK/gateway.log" | tail -1))" >&2

field() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$GW_PID/status"; }
threads() { field Threads; }
# Children's RSS, for context only (the target is about the gateway itself).
children_kib() {
    local sum=0 c
    for c in $(cat /proc/"$GW_PID"/task/*/children 2>/dev/null); do
        sum=$((sum + $(awk '$1 == "VmRSS:" {print $2}' "/proc/$c/status" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}
ROWS=()
sample() {
    local rss hwm
    rss=$(field VmRSS)
    hwm=$(field VmHWM)
    ROWS+=("$(printf '%-34s %9s KiB %7.2f MiB %9s KiB %7.2f MiB %8s %12s KiB' "$1" \
        "$rss" "$(echo "$rss" | awk '{print $1 / 1024}')" "$hwm" "$(echo "$hwm" | awk '{print $1 / 1024}')" \
        "$(threads)" "$(children_kib)")")
}
# Waits (bounded) for the thread count to return to at most $1. No thread
# is started per stream any more (the reactor holds them and sees a client
# leave at once), so this returns at once unless that regresses.
settle_threads() {
    local i
    for i in $(seq 400); do
        [[ $(threads) -le $1 ]] && return 0
        sleep 0.1
    done
    echo "threads still $(threads) (> $1) after 40 s" >&2
}

sample "idle (ready)"
IDLE_THREADS=$(threads)
timeout 120 "$BENCH" gateway --url "$URL" -n "$CALLS" --warmup 0 >&2
sample "after $CALLS calls (streamable)"
timeout 120 "$BENCH" sessions --url "$URL" --count "$SESSIONS" --transport streamable >&2
settle_threads "$IDLE_THREADS"
sample "after $SESSIONS streamable sessions"
timeout 120 "$BENCH" sessions --url "$URL" --count "$SESSIONS" --transport sse >&2
SSE_CLOSED=$(date +%s.%N)
sample "just after $SESSIONS sse sessions"
settle_threads "$IDLE_THREADS"
SETTLE=$(awk -v a="$SSE_CLOSED" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
sample "sse sessions reaped (${SETTLE} s)"

echo
printf '%-34s %13s %11s %13s %11s %8s %16s\n' "gateway pid $GW_PID" "VmRSS" "" "VmHWM" "" "threads" "children RSS"
printf '%s\n' "${ROWS[@]}"
