#!/usr/bin/env bash
# Latency benchmark: the gateway's own cost per call over a direct stdio call.
#
#   scripts/bench.sh [-n CALLS] [-r RUNS]            # gateway vs direct (default)
#   scripts/bench.sh --peers [-n CALLS] [-r RUNS]    # vs supergateway and mcp-proxy
#   scripts/bench.sh --smoke                         # errors only, no timing (CI)
#
# Default mode: builds release, starts `mcp-sentinel server` on a free
# loopback port with one stdio demo backend, then for each of R runs (5)
# times, back to back and for each payload real clients see (a tiny echo, a
# 2 KB and a 100 KB tool result, a ~10 KB tools/list): direct stdio (the
# demo on its own pipes), the gateway over Streamable HTTP and over legacy
# SSE, each on one keep-alive connection; then the tiny echo with 4, 8 and
# 64 concurrent sessions, failed calls counted. Each run's gateway/direct
# ratio is computed within that run; the table shows medians across runs,
# so a latency cliff at some size (such as the 40 ms delayed-ACK stall once
# seen on answers over ~1 KB) shows at once. The concurrency table gives the
# aggregate calls/s over the one-session figure of the same run (the
# target: at least 2.5x at 8 and 64 sessions, with no errors).
#
# --peers: the same null backend (the demo with --pad-tools 8) and the same
# load generator (examples/bench) through each gateway, every round starting
# each gateway afresh: direct stdio, mcp-sentinel over legacy SSE and
# Streamable HTTP, supergateway (stdio->SSE, stdio->Streamable HTTP,
# stateful) and mcp-proxy (stdio->SSE, stdio->Streamable HTTP). Per target:
# calls/s and p50 with one session, the gateway's CPU µs per call (utime +
# stime of the gateway process and its descendants, backends and shell
# wrappers excluded, over the timed calls), its idle RSS (same processes,
# after ready, before calls) and "ready after spawn" (spawn to the first
# successful echo through it; for direct, spawn to the demo's initialize
# answer); ratios against direct and against mcp-sentinel on the same
# transport; medians over R rounds (2). The peers come from
# `scripts/install-peers.sh --bench-peers`; a missing one is skipped, or
# fails the run when CI=true. Each gateway runs at its quietest usual log
# level (mcp-sentinel warn, supergateway none, mcp-proxy WARNING).
#
# --smoke: a few hundred calls on both mcp-sentinel transports and 8
# concurrent sessions on each; exits non-zero on any failed call. Takes
# MCP_SENTINEL_REL like the others; without a release examples/bench there
# it uses (and if needed builds) the debug one.
#
# Raw JSON lines are kept in the printed results file. Traffic stays on
# 127.0.0.1; every wait is bounded; every process started is killed by PID
# on exit.
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME and printf with a '.' decimal point

MODE=gateway
N=2000
RUNS=""
usage() { echo "usage: scripts/bench.sh [--peers | --smoke] [-n CALLS] [-r RUNS]" >&2; exit 2; }
while (($#)); do
    case $1 in
        --peers) MODE=peers ;;
        --smoke) MODE=smoke ;;
        -n) [[ $# -ge 2 ]] || usage; N=$2; shift ;;
        -r) [[ $# -ge 2 ]] || usage; RUNS=$2; shift ;;
        *) usage ;;
    esac
    shift
done
if [[ -z $RUNS ]]; then
    RUNS=5
    [[ $MODE == peers ]] && RUNS=2
fi
[[ $N =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ ]] || usage

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

DEMO=$REL/mcp-sentinel-demo
DEMO_ARGS=(--name alpha --page-size 0 --pad-tools 8)
cat >"$WORK/config.json" <<EOF
{"mcpServers": {"alpha": {"command": "$DEMO", "args": ["--name", "alpha", "--page-size", "0", "--pad-tools", "8"]}}}
EOF

# ---------------------------------------------------------------------------
# --smoke

if [[ $MODE == smoke ]]; then
    need_bench any
    start_gateway 10
    echo "smoke: gateway pid $GW_PID at $URL, client $BENCH" >&2
    FAILED=0
    smoke() {
        local out errors
        if ! out=$(timeout 30 "$BENCH" "$@"); then
            echo "smoke: FAILED: bench $*" >&2
            FAILED=1
            return 0
        fi
        echo "$out" >&2
        errors=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' <<<"$out")
        if [[ -n $errors && $errors != 0 ]]; then
            echo "smoke: FAILED: $errors failed calls in bench $*" >&2
            FAILED=1
        fi
    }
    smoke ready --url "$URL/mcp" --transport streamable --timeout 10
    smoke ready --url "$URL/sse" --transport sse --timeout 10
    smoke gateway --url "$URL/mcp" --transport streamable -n 300 --warmup 10
    smoke gateway --url "$URL/sse" --transport sse -n 300 --warmup 10
    smoke gateway --url "$URL" --transport streamable -n 50 --warmup 0 --call list
    smoke gateway --url "$URL" --transport sse -n 20 --warmup 0 --size 102400
    smoke gateway --url "$URL/mcp" --transport streamable -n 50 --warmup 5 --concurrency 8
    smoke gateway --url "$URL/sse" --transport sse -n 50 --warmup 5 --concurrency 8
    kill -0 "$GW_PID" 2>/dev/null || { echo "smoke: FAILED: the gateway exited" >&2; FAILED=1; }
    if [[ $FAILED != 0 ]]; then
        tail -20 "$WORK/gateway.log" >&2
        exit 1
    fi
    echo "smoke: ok (no failed call)" >&2
    exit 0
fi

need_bench release
# A run is bounded: 120 s plus 1 ms per call.
limit() { echo $((120 + $1 / 1000)); }
WORKLOADS=("--call echo --size 11" "--call echo --size 2048" "--call echo --size 102400" "--call list")
# Calls for one workload: a tenth for the 100 KB echo.
calls_for() { if [[ $1 == *102400* ]]; then echo $(((N + 9) / 10)); else echo "$N"; fi; }

# ---------------------------------------------------------------------------
# default: gateway vs direct

if [[ $MODE == gateway ]]; then
    start_gateway 10
    echo "gateway pid $GW_PID at $URL; $RUNS runs of $N calls" >&2
    RESULTS=$TARGET/bench-results.jsonl
    mkdir -p "$(dirname "$RESULTS")"
    : >"$RESULTS"
    bench() {
        local n=$1
        shift
        timeout "$(limit "$n")" "$BENCH" "$@" | sed "s/^{/{\"run\":$run,/" | tee -a "$RESULTS" >&2
    }
    # The gateway's own CPU per call (its threads, not the backend's).
    WATCH=(--watch-pid "$GW_PID" --exclude-exe "$DEMO")
    for run in $(seq "$RUNS"); do
        echo "run $run/$RUNS" >&2
        for work in "${WORKLOADS[@]}"; do
            n=$(calls_for "$work")
            # shellcheck disable=SC2086
            {
                bench "$n" direct --backend "$DEMO" --pad-tools 8 -n "$n" $work
                bench "$n" gateway --url "$URL" -n "$n" --transport streamable $work "${WATCH[@]}"
                bench "$n" gateway --url "$URL" -n "$n" --transport sse $work "${WATCH[@]}"
            }
        done
        # Aggregate throughput: each of C sessions makes N/2 calls.
        for c in 4 8 64; do
            for t in streamable sse; do
                [[ $c == 4 && $t == sse ]] && continue
                n=$(((N + 1) / 2))
                bench $((n * c)) gateway --url "$URL" -n "$n" --transport "$t" --concurrency "$c" --call echo --size 11 \
                    "${WATCH[@]}"
            done
        done
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
print(f'{"call":<16}{"path":<16}{"p50 µs":>9}{"p90 µs":>9}{"p99 µs":>9}{"direct p50":>12}{"overhead µs":>13}{"ratio":>8}{"calls/s":>10}{"CPU µs/call":>13}{"errors":>8}')
for k in keys:
    call, path = k
    if not (path == "direct" or path.endswith(" c=1")):
        continue
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
    errors = sum(rs[k].get("errors", 0) for rs in have)
    cpus = [rs[k]["cpu_us_per_call"] for rs in have if "cpu_us_per_call" in rs[k]]
    cpu_s = f"{med(cpus):.1f}" if cpus else "-"
    over_s = "-" if path == "direct" else f"{over:.1f}"
    ratio_s = "-" if path == "direct" else f"{ratio:.1f}x"
    print(f"{call:<16}{path:<16}{p50:>9.1f}{p90:>9.1f}{p99:>9.1f}{d50:>12.1f}{over_s:>13}{ratio_s:>8}{cps:>10.0f}{cpu_s:>13}{errors:>8}")
print(f"\nmedians of {len(runs)} runs; overhead and ratio paired per run (gateway p50 - direct p50).")

print(f'\n{"aggregate (echo 11 B)":<24}{"calls/s":>10}{"p50 µs":>9}{"p99 µs":>9}{"CPU µs/call":>13}{"x 1 session":>13}{"errors":>8}  target >= 2.5x, no errors')
for k in keys:
    call, path = k
    if path == "direct" or path.endswith(" c=1"):
        continue
    one = (call, path.split(" ")[0] + " c=1")
    have = [rs for rs in runs.values() if k in rs and one in rs]
    if not have:
        continue
    cps = med(rs[k]["calls_per_s"] for rs in have)
    ratio = med(rs[k]["calls_per_s"] / rs[one]["calls_per_s"] for rs in have)
    errors = sum(rs[k].get("errors", 0) for rs in have)
    c = int(path.split("c=")[1])
    verdict = "" if c < 8 else ("ok" if ratio >= 2.5 and errors == 0 else "BELOW TARGET")
    p50 = med(rs[k]["p50_us"] for rs in have)
    p99 = med(rs[k]["p99_us"] for rs in have)
    cpus = [rs[k]["cpu_us_per_call"] for rs in have if "cpu_us_per_call" in rs[k]]
    cpu_s = f"{med(cpus):.1f}" if cpus else "-"
    print(f"{path:<24}{cps:>10.0f}{p50:>9.1f}{p99:>9.1f}{cpu_s:>13}{ratio:>12.2f}x{errors:>8}  {verdict}")
EOF
    echo "gateway after the runs: VmRSS ${RSS} KiB, ${THREADS} threads; raw results: $RESULTS"
    exit 0
fi

# ---------------------------------------------------------------------------
# --peers

PEERS=$ROOT/.peers
NODE22=$PEERS/node22/node_modules/node/bin/node
SUPERGATEWAY=$PEERS/bench-node/node_modules/supergateway/dist/index.js
MCP_PROXY=$PEERS/bench-venv/bin/mcp-proxy
version_of() {
    case $1 in
        supergateway) "$NODE22" -p 'require(process.argv[1]).version' \
            "$PEERS/bench-node/node_modules/supergateway/package.json" ;;
        mcp-proxy) "$PEERS/bench-venv/bin/python" -c \
            'from importlib.metadata import version; print(version("mcp-proxy"), "(mcp", version("mcp") + ")")' ;;
    esac
}
have_peer() {
    case $1 in
        supergateway) [[ -x $NODE22 && -f $SUPERGATEWAY ]] ;;
        mcp-proxy) [[ -x $MCP_PROXY ]] ;;
        *) true ;;
    esac
}

# supergateway listens on every interface and has no option for the host:
# this preload makes a listen(port[, callback]) bind 127.0.0.1 only.
cat >"$WORK/loopback.cjs" <<'EOF'
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
    if (typeof args[0] === 'number' && (args.length === 1 || typeof args[1] === 'function')) {
        args.splice(1, 0, '127.0.0.1');
    }
    return listen.apply(this, args);
};
EOF

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# The target being measured, killed by PID (and its descendants by PID)
# when done and on exit.
TPID=""
descendants() {
    local c
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        echo "$c"
        descendants "$c"
    done
}
stop_target() {
    [[ -n $TPID ]] || return 0
    local kids k i
    kids=$(descendants "$TPID")
    kill -TERM "$TPID" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$TPID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$TPID" 2>/dev/null || true
    wait "$TPID" 2>/dev/null || true
    for k in $kids; do
        kill -0 "$k" 2>/dev/null && kill -KILL "$k" 2>/dev/null || true
    done
    TPID=""
}
trap 'stop_target; cleanup' EXIT

# start_target NAME PORT LOG: spawns the gateway NAME in the background on
# 127.0.0.1:PORT. Sets TPID and SPAWNED (bash's $EPOCHREALTIME just before).
start_target() {
    local name=$1 port=$2 log=$3
    SPAWNED=$EPOCHREALTIME
    case $name in
        mcp-sentinel/*)
            XDG_STATE_HOME="$WORK/state" "$REL/mcp-sentinel" server --config "$WORK/config.json" \
                --listen "127.0.0.1:$port" --manage-listen 127.0.0.1:0 --log-level warn >"$log" 2>&1 &
            ;;
        supergateway/sse)
            "$NODE22" --require "$WORK/loopback.cjs" "$SUPERGATEWAY" --stdio "$DEMO ${DEMO_ARGS[*]}" \
                --port "$port" --logLevel none >"$log" 2>&1 &
            ;;
        supergateway/streamable)
            "$NODE22" --require "$WORK/loopback.cjs" "$SUPERGATEWAY" --stdio "$DEMO ${DEMO_ARGS[*]}" \
                --outputTransport streamableHttp --stateful --streamableHttpPath /mcp \
                --port "$port" --logLevel none >"$log" 2>&1 &
            ;;
        mcp-proxy/*)
            "$MCP_PROXY" --host 127.0.0.1 --port "$port" --log-level WARNING -- "$DEMO" "${DEMO_ARGS[@]}" \
                >"$log" 2>&1 &
            ;;
    esac
    TPID=$!
}

TARGETS=(direct mcp-sentinel/sse mcp-sentinel/streamable supergateway/sse supergateway/streamable
    mcp-proxy/sse mcp-proxy/streamable)
SKIPPED=()
RUN_TARGETS=()
for t in "${TARGETS[@]}"; do
    peer=${t%%/*}
    if have_peer "$peer"; then
        RUN_TARGETS+=("$t")
    elif [[ ${CI:-} == true ]]; then
        echo "bench: $peer is not installed (scripts/install-peers.sh --bench-peers) and CI=true" >&2
        exit 1
    else
        SKIPPED+=("$t")
    fi
done
for t in "${SKIPPED[@]}"; do
    echo "bench: skipping $t: ${t%%/*} not installed (scripts/install-peers.sh --bench-peers)" >&2
done

RESULTS=$TARGET/bench-peers-results.jsonl
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"
VERSIONS="$("$REL/mcp-sentinel" --version 2>&1 | head -1)"
for p in supergateway mcp-proxy; do
    have_peer "$p" && VERSIONS+="; $p $(version_of "$p")"
done
[[ -x $NODE22 ]] && VERSIONS+="; node $("$NODE22" --version)"
VERSIONS+="; $("$PEERS/bench-venv/bin/python" --version 2>/dev/null || python3 --version)"
echo "bench --peers: $RUNS rounds of $N calls; $VERSIONS" >&2

record() { sed "s|^{|{\"run\":$run,\"target\":\"$target\",|" | tee -a "$RESULTS" >&2; }
for run in $(seq "$RUNS"); do
    for target in "${RUN_TARGETS[@]}"; do
        echo "round $run/$RUNS: $target" >&2
        if [[ $target == direct ]]; then
            for work in "${WORKLOADS[@]}"; do
                n=$(calls_for "$work")
                # shellcheck disable=SC2086
                timeout "$(limit "$n")" "$BENCH" direct --backend "$DEMO" --pad-tools 8 -n "$n" $work | record
            done
            continue
        fi
        transport=${target#*/}
        port=$(free_port)
        url=http://127.0.0.1:$port/mcp
        [[ $transport == sse ]] && url=http://127.0.0.1:$port/sse
        log=$WORK/${target//\//-}.$run.log
        start_target "$target" "$port" "$log"
        watch=(--watch-pid "$TPID" --exclude-exe "$DEMO")
        if ! timeout 40 "$BENCH" ready --url "$url" --transport "$transport" --timeout 30 \
            --since "$SPAWNED" "${watch[@]}" | record; then
            tail -20 "$log" >&2
            echo "bench: $target did not become ready" >&2
            exit 1
        fi
        for work in "${WORKLOADS[@]}"; do
            n=$(calls_for "$work")
            # shellcheck disable=SC2086
            timeout "$(limit "$n")" "$BENCH" gateway --url "$url" --transport "$transport" -n "$n" $work \
                "${watch[@]}" | record
        done
        if [[ $target == mcp-sentinel/* ]]; then
            for c in 8 64; do
                n=$(((N + 1) / 2))
                timeout "$(limit $((n * c)))" "$BENCH" gateway --url "$url" --transport "$transport" -n "$n" \
                    --concurrency "$c" --call echo --size 11 "${watch[@]}" | record
            done
        fi
        kill -0 "$TPID" 2>/dev/null || { tail -20 "$log" >&2; echo "bench: $target exited" >&2; exit 1; }
        stop_target
    done
done

MACHINE="$(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)"
python3 - "$RESULTS" "$RUNS" "$N" "$VERSIONS" "$MACHINE" "${SKIPPED[*]:-}" <<'EOF'
import json, statistics, sys
from collections import defaultdict

path, runs_n, n, versions, machine, skipped = sys.argv[1:7]
med = statistics.median
# (target, call, concurrency) -> {run: line}; target -> {run: ready line}
timed = defaultdict(dict)
ready = defaultdict(dict)
targets = []
for line in open(path):
    r = json.loads(line)
    if r["target"] not in targets:
        targets.append(r["target"])
    if r["mode"] == "ready":
        ready[r["target"]][r["run"]] = r
    else:
        timed[(r["target"], r["call"], r["concurrency"])][r["run"]] = r
calls = []
for (t, call, c) in timed:
    if call not in calls:
        calls.append(call)

def paired(a, b, f):
    """Median over the runs both have of f(a's line, b's line)."""
    common = [run for run in a if run in b]
    return med(f(a[run], b[run]) for run in common) if common else None

def fmt(x, spec, none="-"):
    return none if x is None else format(x, spec)

print(f"\n{machine}\n{versions}\nmedians of {runs_n} rounds; {n} calls per round ({-(-int(n) // 10)} for the 100 KB echo), one session, one call at a time")
head = f'{"target":<26}{"calls/s":>9}{"p50 µs":>9}{"p99 µs":>9}{"CPU µs/call":>13}{"idle RSS MiB":>14}{"ready ms":>10}{"x direct":>10}{"x sentinel":>12}{"errors":>8}'
for call in calls:
    print(f"\n{call}\n{head}")
    for t in targets:
        rs = timed.get((t, call, 1))
        if not rs:
            continue
        l = list(rs.values())
        cps = med(r["calls_per_s"] for r in l)
        p50 = med(r["p50_us"] for r in l)
        p99 = med(r["p99_us"] for r in l)
        cpu = med(r["cpu_us_per_call"] for r in l) if "cpu_us_per_call" in l[0] else None
        if t == "direct":
            # Every direct run spawns the demo: one figure over all of them.
            rss = None
            rdy = med(r["ready_ms"] for (tt, _, _), rr in timed.items() if tt == t for r in rr.values())
        else:
            rl = list(ready[t].values())
            rss = med(r["rss_kb"] for r in rl) / 1024 if rl else None
            rdy = med(r["ready_ms"] for r in rl) if rl else None
        d = timed.get(("direct", call, 1), {})
        xd = None if t == "direct" else paired(rs, d, lambda a, b: a["p50_us"] / b["p50_us"])
        s = timed.get(("mcp-sentinel/" + t.split("/")[-1], call, 1), {})
        xs = None if t.startswith("mcp-sentinel") or t == "direct" else paired(rs, s, lambda a, b: a["p50_us"] / b["p50_us"])
        errors = sum(r.get("errors", 0) for r in l)
        if cps == 0:  # every call failed
            p50 = p99 = xd = xs = None
        print(f'{t:<26}{cps:>9.0f}{fmt(p50, ".1f"):>9}{fmt(p99, ".1f"):>9}'
              f'{fmt(cpu, ".1f"):>13}{fmt(rss, ".1f"):>14}{fmt(rdy, ".0f"):>10}'
              f'{fmt(xd, ".1f"):>9}{"x" if xd else " "}{fmt(xs, ".1f"):>11}{"x" if xs else " "}{errors:>8}')
print("\nx direct, x sentinel: p50 over direct stdio's, and over mcp-sentinel's on the same transport (paired per round).")
print("CPU: utime+stime of the gateway's processes (backends and shell wrappers excluded), 10 ms ticks, over the timed calls.")

rows = [(t, c) for (t, call, c) in timed if c > 1]
if rows:
    print(f'\n{"aggregate, echo 11 B":<26}{"sessions":>9}{"calls/s":>9}{"p50 µs":>9}{"p99 µs":>9}{"CPU µs/call":>13}{"x 1 session":>13}{"errors":>8}  target >= 2.5x, no errors')
    for (t, c) in rows:
        rs = timed[(t, "echo 11 B", c)]
        one = timed.get((t, "echo 11 B", 1), {})
        l = list(rs.values())
        ratio = paired(rs, one, lambda a, b: a["calls_per_s"] / b["calls_per_s"])
        errors = sum(r.get("errors", 0) for r in l)
        cpu = med(r["cpu_us_per_call"] for r in l) if "cpu_us_per_call" in l[0] else None
        ok = "ok" if ratio and ratio >= 2.5 and errors == 0 else "BELOW TARGET"
        print(f'{t:<26}{c:>9}{med(r["calls_per_s"] for r in l):>9.0f}{med(r["p50_us"] for r in l):>9.1f}'
              f'{med(r["p99_us"] for r in l):>9.1f}{fmt(cpu, ".1f"):>13}{fmt(ratio, ".2f"):>12}x{errors:>8}  {ok}')
if skipped:
    print(f"\nskipped (not installed): {skipped}")
EOF
echo "raw results: $RESULTS"
