#!/usr/bin/env bash
# Connection-burst check: connections the gateway accepts and never serves.
#
#   scripts/burst.sh [-r RUNS] [-c CONNECTIONS] [-n ROUNDS]
#
# Builds release, then RUNS times, for each kind (Streamable HTTP
# `initialize`, legacy `GET /sse`): starts a fresh gateway (one stdio demo
# backend, free loopback ports, max_sessions large enough that no attempt
# is refused), runs `mcp-sentinel-loadgen burst` (ROUNDS rounds of
# CONNECTIONS connections opened at the same instant, 5 s to answer each),
# and stops the gateway. A fresh gateway each time because the lost
# connections show up mostly in the first rounds after start, while its
# connection thread pool is still small. Prints one JSON line per run and a
# total; exits 1 if any connection went unanswered or failed.
set -euo pipefail

RUNS=5
CONN=64
ROUNDS=20
usage() { echo "usage: scripts/burst.sh [-r RUNS] [-c CONNECTIONS] [-n ROUNDS]" >&2; exit 2; }
while getopts "r:c:n:h" opt; do
    case $opt in
        r) RUNS=$OPTARG ;;
        c) CONN=$OPTARG ;;
        n) ROUNDS=$OPTARG ;;
        *) usage ;;
    esac
done
for v in "$RUNS" "$CONN" "$ROUNDS"; do [[ $v =~ ^[1-9][0-9]*$ ]] || usage; done

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

# A legacy session lives on up to 30 s after its client left (the gateway
# notices at a failed keep-alive write), so every attempt of a run needs
# its own slot.
cat >"$WORK/config.json" <<EOF
{"mcpServers": {"alpha": {"command": "$REL/mcp-sentinel-demo", "args": ["--name", "alpha"]}},
 "server": {"max_sessions": $((CONN * ROUNDS + 64))}}
EOF

stop_gateway() {
    kill -TERM "$GW_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=""
}

RESULTS=$WORK/burst.jsonl
: >"$RESULTS"
status=0
for run in $(seq "$RUNS"); do
    for kind in initialize sse; do
        # Emptied first, so start_gateway cannot read the previous one's port.
        : >"$WORK/gateway.log"
        start_gateway 30
        # Bounded: every attempt and every DELETE waits at most 5 s.
        if ! timeout $((ROUNDS * 11 + 60)) "$REL/mcp-sentinel-loadgen" burst --url "$URL" --kind "$kind" \
            --connections "$CONN" --rounds "$ROUNDS" --timeout-ms 5000 | tee -a "$RESULTS"; then
            status=1
        fi
        stop_gateway
    done
done

python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for kind in ("initialize", "sse"):
    rs = [r for r in rows if r["kind"] == kind]
    if not rs:
        continue
    un = sum(r["unanswered"] for r in rs)
    att = sum(r["attempts"] for r in rs)
    err = sum(r["errors"] for r in rs)
    hit = sum(1 for r in rs if r["unanswered"])
    per = ", ".join(str(r["unanswered"]) for r in rs)
    print(f"{kind}: {un} unanswered of {att} ({len(rs)} runs of {rs[0]['rounds']}x{rs[0]['connections']}; "
          f"runs with any: {hit}; per run: {per}); errors {err}", file=sys.stderr)
EOF
exit $status
