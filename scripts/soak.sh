#!/usr/bin/env bash
# Soak test: the gateway under mixed, partly hostile load while its
# backends crash, hang, get killed and get reloaded.
#
#   scripts/soak.sh [--duration SECONDS (600)] [--kill-every N (20)] [--reload-every M (30)]
#                   [--skip-garbage NAME,...]
#
# 1. Builds release (gateway, demo, loadgen) and writes a config with five
#    backends: demo `d1` and `d2` (stdio), server-everything `ev` (stdio,
#    from .peers; skipped with a note when absent, a failure with CI=true),
#    and two demo backends with failure injection: `chaos_crash`
#    (--chaos-crash: a tools/call makes it exit) and `chaos_hang`
#    (--chaos-hang: a tools/call is never answered), both with timeout_s 5.
# 2. Starts the gateway on free loopback ports (token file under the work
#    dir), warms it up (`loadgen calls` on both transports), waits for idle
#    and samples its RSS, threads and open fds, and counts its descendant
#    processes.
# 3. Runs `mcp-sentinel-loadgen soak` for SECONDS. Meanwhile every N s it
#    --skip-garbage leaves out malformed-request cases of the loadgen (one
#    known to crash the gateway ends the soak before anything else is
#    found; names in `mcp-sentinel-loadgen soak --skip-garbage x`). It
#    SIGKILLs the child of a random backend (pid from GET
#    /manage/v1/backends) and every M s rewrites the config and POSTs
#    /manage/v1/reload, cycling through: nothing changed, d2's env changed
#    (d2 restarts), server.name changed (applied in place). It samples the
#    gateway again half-way.
# 4. When the load has ended, waits for idle (no legacy sessions left,
#    every backend connected, the connection pool shrunk back) and samples a
#    last time.
#
# Prints a report and one JSON line (prefixed `SOAK_JSON `) and exits 1 on:
# a hung call or any other loadgen failure; the gateway dying; RSS growing
# from start to end by more than 50 % and more than 20 MiB; threads or open
# fds growing by more than 20 (start and end are both sampled idle);
# a different number of descendant processes at the end. Artifacts (config,
# gateway log, loadgen summary, report) stay in target/soak/. Every process
# it starts is killed by PID on exit; traffic stays on 127.0.0.1.
set -euo pipefail
# A command that fails under `set -e` says where, instead of a silent exit.
trap 'echo "soak.sh: line $LINENO: a command failed (exit $?)" >&2' ERR

DURATION=600
KILL_EVERY=20
RELOAD_EVERY=30
SKIP_GARBAGE=""
usage() {
    echo "usage: scripts/soak.sh [--duration SECONDS] [--kill-every N] [--reload-every M] [--skip-garbage NAME,...]" >&2
    exit 2
}
while [[ $# -gt 0 ]]; do
    case $1 in
        --duration) DURATION=${2:-}; shift 2 || usage ;;
        --kill-every) KILL_EVERY=${2:-}; shift 2 || usage ;;
        --reload-every) RELOAD_EVERY=${2:-}; shift 2 || usage ;;
        --skip-garbage) SKIP_GARBAGE=${2:-}; shift 2 || usage ;;
        -h | --help) usage ;;
        *) echo "soak.sh: unknown argument $1" >&2; usage ;;
    esac
done
for v in "$DURATION" "$KILL_EVERY" "$RELOAD_EVERY"; do [[ $v =~ ^[1-9][0-9]*$ ]] || usage; done

# Margins (see the header).
RSS_GROWTH_PCT=50
RSS_GROWTH_KIB=$((20 * 1024))
THREAD_MARGIN=20
FD_MARGIN=20
# The chaos backends time out after 5 s, the others after 20 s; a call with
# no answer 15 s after the longest backend timeout is hung.
DEADLINE=35

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

LOADGEN=$REL/mcp-sentinel-loadgen
DEMO=$REL/mcp-sentinel-demo
OUT=$TARGET/soak
rm -rf "$OUT"
mkdir -p "$OUT"
log() { echo "soak: $*" >&2; }

LG_PID=""
# The gateway's descendants as "pid:starttime", refreshed while it runs: if
# the gateway dies or is killed before it stops them, they are still ours
# to end, and the start time makes sure a reused pid is left alone.
KNOWN=""
# Empty for a process that is gone (never a failure: `set -e` is on and a
# backend may exit between `ps` and this read).
starttime() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }
remember_descendants() {
    local p k=""
    for p in $(descendants "$GW_PID"); do k="$k $p:$(starttime "$p")"; done
    KNOWN=$k
}
soak_cleanup() {
    local rc=$? entry
    if [[ -n $LG_PID ]] && kill -0 "$LG_PID" 2>/dev/null; then
        kill -TERM "$LG_PID" 2>/dev/null || true
        wait "$LG_PID" 2>/dev/null || true
    fi
    if [[ -n ${GW_PID:-} ]] && kill -0 "$GW_PID" 2>/dev/null; then
        remember_descendants || true
    fi
    if [[ -f $WORK/gateway.log ]]; then cp "$WORK/gateway.log" "$OUT/gateway.log" 2>/dev/null || true; fi
    cleanup
    for entry in $KNOWN; do
        if [[ -n ${entry#*:} && $(starttime "${entry%%:*}") == "${entry#*:}" ]]; then
            kill -KILL "${entry%%:*}" 2>/dev/null || true
        fi
    done
    exit "$rc"
}
trap soak_cleanup EXIT

# descendants PID: the pids of all processes below PID, one per line.
descendants() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2 }
        END {
            for (p in parent) {
                q = parent[p]
                while (q != root && q in parent && q > 1) q = parent[q]
                if (q == root) print p
            }
        }'
}

# sample NAME: RSS (KiB), threads and open fds of the gateway, into $OUT/samples.
# "-" for a figure that cannot be read (the gateway just died).
sample() {
    local rss threads fds
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$GW_PID/status" 2>/dev/null || true)
    threads=$(awk '/^Threads/ {print $2}' "/proc/$GW_PID/status" 2>/dev/null || true)
    fds=$(find "/proc/$GW_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    rss=${rss:--}
    threads=${threads:--}
    echo "$1 $rss $threads $fds" >>"$OUT/samples"
    log "sample $1: VmRSS ${rss} KiB, ${threads} threads, ${fds} fds"
}

EVERYTHING=$ROOT/.peers/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js
EV_NOTE=""
if [[ -f $EVERYTHING ]] && command -v node >/dev/null && timeout 30 node --version >/dev/null 2>&1; then
    EV_ENTRY=$(printf ',\n    "ev": {"command": "node", "args": ["%s", "stdio"], "prefix": "ev", "timeout_s": 20}' "$EVERYTHING")
else
    if [[ ${CI:-} == true ]]; then
        echo "soak: @modelcontextprotocol/server-everything is not installed under .peers (scripts/install-peers.sh) or node is missing; required with CI=true" >&2
        exit 1
    fi
    EV_NOTE="server-everything backend skipped: not installed under .peers (run scripts/install-peers.sh) or no node"
    echo "SKIPPED: $EV_NOTE" >&2
    EV_ENTRY=""
fi

# write_config REVISION: the config; reloads cycle through what changes.
write_config() {
    # Reload k changes: k % 3 == 1 nothing, 2 d2's env, 0 server.name.
    local rev=$1 d2_rev=$((($1 + 1) / 3)) name_rev=$(($1 / 3))
    cat >"$WORK/config.json.tmp" <<EOF
{
  "mcpServers": {
    "d1": {"command": "$DEMO", "args": ["--name", "d1"], "prefix": "d1", "timeout_s": 20},
    "d2": {"command": "$DEMO", "args": ["--name", "d2"], "prefix": "d2", "timeout_s": 20, "env": {"SOAK_REV": "$d2_rev"}}$EV_ENTRY,
    "chaos_crash": {"command": "$DEMO", "args": ["--name", "chaos_crash", "--chaos-crash", "0.05"], "prefix": "chaos_crash", "timeout_s": 5},
    "chaos_hang": {"command": "$DEMO", "args": ["--name", "chaos_hang", "--chaos-hang", "0.1"], "prefix": "chaos_hang", "timeout_s": 5}
  },
  "server": {"name": "soak-$name_rev", "max_sessions": 4096}
}
EOF
    # Renamed into place, so a reload never reads a half-written file.
    mv "$WORK/config.json.tmp" "$WORK/config.json"
    cp "$WORK/config.json" "$OUT/config-$rev.json"
}

write_config 0
start_gateway 60
MANAGE_PORT=$(sed -n 's|.*management API listening on http://127\.0\.0\.1:\([0-9]*\)/manage/v1.*|\1|p' "$WORK/gateway.log" | head -n 1)
TOKEN_FILE=$(sed -n 's|.*management API admin token written to \(.*\) (mode 0600.*|\1|p' "$WORK/gateway.log" | head -n 1)
[[ -n $MANAGE_PORT && -f $TOKEN_FILE ]] || { echo "soak: no management port or token file in the gateway log" >&2; exit 1; }
MANAGE=http://127.0.0.1:$MANAGE_PORT/manage/v1
AUTH="Authorization: Bearer $(cat "$TOKEN_FILE")"
log "gateway pid $GW_PID at $URL, management API at $MANAGE"

# api METHOD PATH: the body; bounded (a reload waits for backends to settle).
api() { curl -sS --max-time 150 -X "$1" -H "$AUTH" "$MANAGE$2"; }

# wait_idle LIMIT: until no legacy session is left, every backend is
# connected and the pool threads idle past 5 s have ended (tiny_http).
wait_idle() {
    local limit=$1 i status
    for ((i = 0; i < limit * 2; i++)); do
        status=$(api GET /status 2>/dev/null || true)
        if python3 -c 'import json,sys; s=json.loads(sys.argv[1]); b=s["backends"]; sys.exit(0 if s["sessions"]["sse"] == 0 and b["connected"] == b["total"] - b["disabled"] else 1)' "$status" 2>/dev/null; then
            sleep 6
            return 0
        fi
        sleep 0.5
    done
    log "not idle after $limit s: $status"
    return 1
}

# Warm-up: both transports, so allocator arenas and the pool exist before
# the first sample.
# A failure here is reported with the rest, not fatal: it is a finding too.
for t in streamable sse; do
    if ! timeout 120 "$LOADGEN" calls --url "$URL" --transport "$t" --sessions 4 --calls 200 --size 1000 >>"$OUT/warmup.jsonl"; then
        log "warm-up over $t failed: $(tail -n 1 "$OUT/warmup.jsonl")"
    fi
done
wait_idle 60 || true
sample start
CHILDREN_START=$(descendants "$GW_PID" | wc -l)
remember_descendants
log "descendant processes at start: $CHILDREN_START"

# The load, in the background; bounded by its own deadline plus a margin.
SEED=${SOAK_SEED:-$RANDOM$RANDOM}
timeout --kill-after=10 $((DURATION + DEADLINE + 120)) "$LOADGEN" soak --url "$URL" --duration-s "$DURATION" \
    --deadline-s "$DEADLINE" --seed "$SEED" --stop-file "$WORK/stop" ${SKIP_GARBAGE:+--skip-garbage "$SKIP_GARBAGE"} \
    >"$OUT/loadgen.json" 2>"$OUT/loadgen.err" &
LG_PID=$!
log "loadgen pid $LG_PID: soak for $DURATION s (seed $SEED), kill every $KILL_EVERY s, reload every $RELOAD_EVERY s"

START=$SECONDS
KILLS=0
RELOADS=0
RELOAD_FAILED=0
MID_DONE=0
GW_DIED=0
next_kill=$KILL_EVERY
next_reload=$RELOAD_EVERY
: >"$OUT/actions.log"
while kill -0 "$LG_PID" 2>/dev/null; do
    sleep 1
    t=$((SECONDS - START))
    if ! kill -0 "$GW_PID" 2>/dev/null; then
        GW_DIED=1
        log "the gateway died at t=${t}s; stopping the load"
        # The loadgen ends its clients and still prints its summary.
        touch "$WORK/stop"
        break
    fi
    remember_descendants
    if [[ $MID_DONE == 0 && $t -ge $((DURATION / 2)) ]]; then
        sample middle
        MID_DONE=1
    fi
    [[ $t -ge $DURATION ]] && continue
    if [[ $t -ge $next_kill ]]; then
        next_kill=$((next_kill + KILL_EVERY))
        mapfile -t live < <(api GET /backends 2>/dev/null |
            python3 -c 'import json,sys; [print(b["name"], b["pid"]) for b in json.load(sys.stdin)["backends"] if b["pid"]]' 2>/dev/null || true)
        if [[ ${#live[@]} -gt 0 ]]; then
            read -r name pid <<<"${live[RANDOM % ${#live[@]}]}"
            # Only a child of the gateway this script started.
            if [[ $(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ') == "$GW_PID" ]]; then
                kill -KILL "$pid" 2>/dev/null && KILLS=$((KILLS + 1))
                echo "t=${t}s killed backend $name (pid $pid)" | tee -a "$OUT/actions.log" >&2
            fi
        fi
    fi
    if [[ $t -ge $next_reload ]]; then
        next_reload=$((next_reload + RELOAD_EVERY))
        RELOADS=$((RELOADS + 1))
        write_config "$RELOADS"
        if r=$(curl -sS --max-time 150 -w '\n%{http_code}' -X POST -H "$AUTH" "$MANAGE/reload" 2>&1); then
            code=${r##*$'\n'}
            body=${r%$'\n'*}
            [[ $code == 200 ]] || RELOAD_FAILED=$((RELOAD_FAILED + 1))
            echo "t=${t}s reload $RELOADS: HTTP $code $(echo "$body" | tr -d '\n' | cut -c1-300)" | tee -a "$OUT/actions.log" >&2
        else
            RELOAD_FAILED=$((RELOAD_FAILED + 1))
            echo "t=${t}s reload $RELOADS failed: $r" | tee -a "$OUT/actions.log" >&2
        fi
    fi
done
LG_RC=0
wait "$LG_PID" || LG_RC=$?
LG_PID=""
log "load ended after $((SECONDS - START)) s (loadgen exit $LG_RC)"

IDLE_OK=1
CHILDREN_END=-1
echo "{}" >"$OUT/status-end.json"
if [[ $GW_DIED == 0 ]] && kill -0 "$GW_PID" 2>/dev/null; then
    wait_idle 90 || IDLE_OK=0
    sample end
    CHILDREN_END=$(descendants "$GW_PID" | wc -l)
    api GET /status >"$OUT/status-end.json" 2>/dev/null || echo "{}" >"$OUT/status-end.json"
    api GET /backends >"$OUT/backends-end.json" 2>/dev/null || true
else
    GW_DIED=1
fi
[[ $MID_DONE == 1 ]] || echo "middle - - -" >>"$OUT/samples"
grep -q '^end ' "$OUT/samples" || echo "end - - -" >>"$OUT/samples"

# The report's own verdict is the exit code from here on.
trap - ERR
set +e
OUT=$OUT DURATION=$DURATION KILLS=$KILLS RELOADS=$RELOADS RELOAD_FAILED=$RELOAD_FAILED \
    CHILDREN_START=$CHILDREN_START CHILDREN_END=$CHILDREN_END LG_RC=$LG_RC GW_DIED=$GW_DIED IDLE_OK=$IDLE_OK \
    RSS_GROWTH_PCT=$RSS_GROWTH_PCT RSS_GROWTH_KIB=$RSS_GROWTH_KIB THREAD_MARGIN=$THREAD_MARGIN FD_MARGIN=$FD_MARGIN \
    EV_NOTE=$EV_NOTE python3 - <<'EOF'
import json, os, sys

env = os.environ
num = lambda k: int(env[k])
out = env["OUT"]
samples = {}
for line in open(f"{out}/samples"):
    name, *vals = line.split()
    samples[name] = [None if v == "-" else int(v) for v in vals]
try:
    lg = json.load(open(f"{out}/loadgen.json"))
except Exception as e:
    lg = {"ok": False, "failures": [f"no loadgen summary: {e}"], "totals": {}, "kinds": {}}
try:
    status = json.load(open(f"{out}/status-end.json"))
except Exception:
    status = {}
children = {"start": num("CHILDREN_START"), "end": num("CHILDREN_END")}
failures = list(lg.get("failures", []))
if num("LG_RC") != 0 and not failures:
    failures.append(f"loadgen exited {num('LG_RC')}: " + open(f"{out}/loadgen.err").read().strip()[-300:])
if num("GW_DIED"):
    failures.append("the gateway process died")
for line in open(f"{out}/warmup.jsonl"):
    w = json.loads(line)
    if not w.get("ok"):
        failures.append(f"warm-up over {w['transport']}: {w['errors']} errors, {w['hung']} hung: "
                        + "; ".join(w.get("error_samples", [])[:3]))
if not num("IDLE_OK"):
    failures.append("the gateway did not return to idle (legacy sessions left or backends not connected) within 90 s")


def fig(name, i):
    v = samples.get(name)
    return None if v is None else v[i]


rss0, rss1 = fig("start", 0), fig("end", 0)
thr0, thr1 = fig("start", 1), fig("end", 1)
fd0, fd1 = fig("start", 2), fig("end", 2)
pct, kib = num("RSS_GROWTH_PCT"), num("RSS_GROWTH_KIB")
if None not in (rss0, rss1) and rss1 > rss0 * (1 + pct / 100) and rss1 - rss0 > kib:
    failures.append(f"RSS grew from {rss0} KiB to {rss1} KiB (over {pct}% and {kib // 1024} MiB)")
if None not in (thr0, thr1) and thr1 > thr0 + num("THREAD_MARGIN"):
    failures.append(f"threads grew from {thr0} to {thr1} (margin {num('THREAD_MARGIN')})")
if None not in (fd0, fd1) and fd1 > fd0 + num("FD_MARGIN"):
    failures.append(f"open fds grew from {fd0} to {fd1} (margin {num('FD_MARGIN')})")
if children["end"] != children["start"] and not num("GW_DIED"):
    failures.append(f"descendant processes: {children['start']} at start, {children['end']} at end")
COUNTS = ("sent", "ok", "rpc_error", "http_error", "io_error", "hung", "wrong_answer")
t = lg.get("totals", {})
sess = status.get("sessions", {})
left_open = lg.get("kinds", {}).get("no_delete", {}).get("sessions_left_open", 0)
report = {
    "duration_s": num("DURATION"),
    "kills": num("KILLS"),
    "reloads": num("RELOADS"),
    "reloads_failed": num("RELOAD_FAILED"),
    "calls": {k: t.get(k) for k in COUNTS},
    "per_kind": {k: {f: v.get(f) for f in ("sessions",) + COUNTS} for k, v in lg.get("kinds", {}).items()},
    "rss_kib": {n: fig(n, 0) for n in ("start", "middle", "end")},
    "threads": {n: fig(n, 1) for n in ("start", "middle", "end")},
    "fds": {n: fig(n, 2) for n in ("start", "middle", "end")},
    "children": children,
    "sessions_end": {"sse": sess.get("sse"), "streamable_http": sess.get("streamable_http"),
                     "abandoned_by_no_delete_clients": left_open},
    "seed": lg.get("seed"),
    "skipped_garbage": lg.get("skipped_garbage", []),
    "note": env.get("EV_NOTE") or None,
    "failures": failures,
    "ok": not failures,
}
lines = [
    f"soak {report['duration_s']}s: {report['kills']} backend kills, {report['reloads']} reloads ({report['reloads_failed']} failed)",
    "calls: sent {sent}, ok {ok}, JSON-RPC error {rpc_error}, HTTP error {http_error}, I/O error {io_error}, "
    "hung {hung}, wrong answer {wrong_answer}".format(**{k: t.get(k) for k in COUNTS}),
]
for k, v in lg.get("kinds", {}).items():
    extra = {x: y for x, y in v.items() if x not in ("sessions",) + COUNTS + ("codes", "errors", "hung_calls")}
    lines.append(f"  {k:<15} sessions {v['sessions']:>5}  sent {v['sent']:>6}  ok {v['ok']:>6}  "
                 f"rpc err {v['rpc_error']:>5}  http err {v['http_error']:>5}  io err {v['io_error']:>4}  "
                 f"hung {v['hung']:>3}  {json.dumps(extra) if extra else ''}")
    lines.append(f"  {'':<15} codes {json.dumps(v['codes'])}")
    for e in v.get("hung_calls", []):
        lines.append(f"  {'':<15} HUNG: {e}")
lines.append("gateway:          start   middle      end")
for name, key in (("RSS KiB", "rss_kib"), ("threads", "threads"), ("open fds", "fds")):
    r = report[key]
    lines.append(f"  {name:<10} {str(r['start']):>8} {str(r['middle']):>8} {str(r['end']):>8}")
lines.append(f"descendant processes: start {children['start']}, end {children['end']}")
lines.append(f"sessions at end: sse {sess.get('sse')}, streamable_http {sess.get('streamable_http')} "
             f"(no_delete clients abandoned {left_open})")
if report["note"]:
    lines.append("note: " + report["note"])
lines.append("result: " + ("PASS" if report["ok"] else "FAIL: " + "; ".join(failures)))
text = "\n".join(lines)
print(text)
open(f"{out}/report.txt", "w").write(text + "\n")
open(f"{out}/report.json", "w").write(json.dumps(report) + "\n")
print("SOAK_JSON " + json.dumps(report))
sys.exit(0 if report["ok"] else 1)
EOF
rc=$?
set -e
log "artifacts in $OUT"
exit $rc
