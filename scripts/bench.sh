#!/usr/bin/env bash
# Latency benchmark: the gateway's own cost per call over a direct stdio call.
#
#   scripts/bench.sh [-n CALLS] [-r RUNS]
#
# Builds release, starts `mcp-sentinel server` on a free loopback port with
# one stdio demo backend, then for each of R runs times, back to back and
# for each payload real clients see (a tiny echo, a 2 KB and a 100 KB tool
# result, a ~10 KB tools/list): direct stdio (the demo on its own pipes),
# the gateway over Streamable HTTP and over legacy SSE, each on one
# keep-alive connection; plus the tiny echo with 4 concurrent sessions.
# Each run's gateway/direct ratio is computed within that run; the table
# shows medians across runs, so a latency cliff at some size (such as the
# 40 ms delayed-ACK stall once seen on answers over ~1 KB) shows at once.
# Raw JSON lines are kept in the printed results file. Traffic stays on
# 127.0.0.1; every wait is bounded.
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
{"mcpServers": {"alpha": {"command": "$REL/mcp-sentinel-demo", "args": ["--name", "alpha", "--page-size", "0", "--pad-tools", "8"]}}}
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
    for work in "--call echo --size 11" "--call echo --size 2048" "--call echo --size 102400" "--call list"; do
        n=$N
        [[ $work == *102400* ]] && n=$(((N + 9) / 10))
        # shellcheck disable=SC2086
        {
            bench direct --backend "$REL/mcp-sentinel-demo" --pad-tools 8 -n "$n" $work
            bench gateway --url "$URL" -n "$n" --transport streamable $work
            bench gateway --url "$URL" -n "$n" --transport sse $work
        }
    done
    bench gateway --url "$URL" -n "$N" --transport streamable --concurrency "$CONC" --call echo --size 11
done

RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$GW_PID/status")
THREADS=$(awk '/^Threads/ {print $2}' "/proc/$GW_PID/status")

python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
from collections import defaultdict

runs = defaultdict(dict)
for line in open(sys.argv[1]):
    r = json.loads(line)
    path = "direct" if r["mode"] == "direct" else f'{r["transport"]} c={r["concurrency"]}'
    runs[r["run"]][(r["call"], path)] = r

med = statistics.median
keys = []
for rs in runs.values():
    for k in rs:
        if k not in keys:
            keys.append(k)
print()
print(f'{"call":<16}{"path":<16}{"p50 µs":>9}{"p90 µs":>9}{"p99 µs":>9}{"direct p50":>12}{"overhead µs":>13}{"ratio":>8}{"calls/s":>10}')
for k in keys:
    call, path = k
    have = [rs for rs in runs.values() if k in rs and (call, "direct") in rs]
    if not have:
        continue
    direct = (call, "direct")
    p50 = med(rs[k]["p50_us"] for rs in have)
    p90 = med(rs[k]["p90_us"] for rs in have)
    p99 = med(rs[k]["p99_us"] for rs in have)
    d50 = med(rs[direct]["p50_us"] for rs in have)
    # Overhead and ratio are paired within a run, then the median is taken.
    over = med(rs[k]["p50_us"] - rs[direct]["p50_us"] for rs in have)
    ratio = med(rs[k]["p50_us"] / rs[direct]["p50_us"] for rs in have)
    cps = med(rs[k]["calls_per_s"] for rs in have)
    over_s = "-" if path == "direct" else f"{over:.1f}"
    ratio_s = "-" if path == "direct" else f"{ratio:.1f}x"
    print(f"{call:<16}{path:<16}{p50:>9.1f}{p90:>9.1f}{p99:>9.1f}{d50:>12.1f}{over_s:>13}{ratio_s:>8}{cps:>10.0f}")
print(f"\nmedians of {len(runs)} runs; overhead and ratio paired per run (gateway p50 - direct p50).")
EOF
echo "gateway after the runs: VmRSS ${RSS} KiB, ${THREADS} threads; raw results: $RESULTS"
