#!/usr/bin/env bash
# Latency benchmark: the gateway's own cost per call over a direct stdio call.
#
#   scripts/bench.sh [-n CALLS] [-r RUNS]
#
# Builds release, starts `mcp-sentinel server` on a free loopback port with
# one stdio demo backend, then for each of R runs times, back to back:
# direct stdio (the demo on its own pipes), the gateway over Streamable
# HTTP, the gateway over legacy SSE, and Streamable HTTP with 4 concurrent
# sessions. Each run's gateway/direct ratio is computed within that run;
# the table shows medians across runs. Raw JSON lines are kept in the
# printed results file. Traffic stays on 127.0.0.1; every wait is bounded.
set -euo pipefail

N=2000
RUNS=5
CONC=4
usage() { echo "usage: scripts/bench.sh [-n CALLS] [-r RUNS]" >&2; exit 2; }
while getopts "n:r:h" opt; do
    case $opt in
        n) N=$OPTARG ;;
        r) RUNS=$OPTARG ;;
        *) usage ;;
    esac
done
[[ $N =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ ]] || usage

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

cat >"$WORK/config.json" <<EOF
{"mcpServers": {"alpha": {"command": "$REL/mcp-sentinel-demo", "args": ["--name", "alpha"]}}}
EOF

start_gateway 10
echo "gateway pid $GW_PID at $URL; $RUNS runs of $N calls" >&2

BENCH=$REL/examples/bench
RESULTS=$TARGET/bench-results.jsonl
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"
# A run is bounded: 120 s plus 1 ms per call per worker.
LIMIT=$((120 + N * CONC / 1000))
bench() { timeout "$LIMIT" "$BENCH" "$@" | sed "s/^{/{\"run\":$run,/" | tee -a "$RESULTS" >&2; }
for run in $(seq "$RUNS"); do
    echo "run $run/$RUNS" >&2
    bench direct --backend "$REL/mcp-sentinel-demo" -n "$N"
    bench gateway --url "$URL" -n "$N" --transport streamable
    bench gateway --url "$URL" -n "$N" --transport sse
    bench gateway --url "$URL" -n "$N" --transport streamable --concurrency "$CONC"
done

RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$GW_PID/status")
THREADS=$(awk '/^Threads/ {print $2}' "/proc/$GW_PID/status")

python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
from collections import defaultdict

runs = defaultdict(dict)
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = "direct" if r["mode"] == "direct" else f'{r["transport"]} c={r["concurrency"]}'
    runs[r["run"]][key] = r

med = statistics.median
rows = []
keys = []
for rs in runs.values():
    for k in rs:
        if k not in keys:
            keys.append(k)
print()
print(f'{"path":<16}{"p50 µs":>9}{"p90 µs":>9}{"p99 µs":>9}{"direct p50":>12}{"overhead µs":>13}{"ratio":>8}{"calls/s":>10}')
for k in keys:
    have = [rs for rs in runs.values() if k in rs and "direct" in rs]
    p50 = med(rs[k]["p50_us"] for rs in have)
    p90 = med(rs[k]["p90_us"] for rs in have)
    p99 = med(rs[k]["p99_us"] for rs in have)
    d50 = med(rs["direct"]["p50_us"] for rs in have)
    # Overhead and ratio are paired within a run, then the median is taken.
    over = med(rs[k]["p50_us"] - rs["direct"]["p50_us"] for rs in have)
    ratio = med(rs[k]["p50_us"] / rs["direct"]["p50_us"] for rs in have)
    cps = med(rs[k]["calls_per_s"] for rs in have)
    over_s = "-" if k == "direct" else f"{over:.1f}"
    ratio_s = "-" if k == "direct" else f"{ratio:.1f}x"
    print(f"{k:<16}{p50:>9.1f}{p90:>9.1f}{p99:>9.1f}{d50:>12.1f}{over_s:>13}{ratio_s:>8}{cps:>10.0f}")
print(f"\nmedians of {len(runs)} runs; overhead and ratio paired per run (gateway p50 - direct p50).")
EOF
echo "gateway after the runs: VmRSS ${RSS} KiB, ${THREADS} threads; raw results: $RESULTS"
