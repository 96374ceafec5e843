#!/usr/bin/env bash
# Several gateways behind a real load balancer: nginx on loopback in front
# of two MCP Sentinel instances, driven by the official Python MCP SDK on
# both transports; one instance is killed under its clients.
#
#   scripts/lb-test.sh [--sessions N (8)]
#
# 1. Finds nginx; where it is missing, installs it (apt-get `nginx-light`,
#    else `nginx`, or apk) when running as root or with password-less sudo.
#    Otherwise, or without the Python SDK in .peers/ (scripts/install-peers.sh):
#    with CI=true a failure, else a `SKIPPED:` line and exit 0.
# 2. Starts two gateways (`server.instance_id` gw_a and gw_b, one stdio demo
#    backend each) on free loopback ports, and nginx with
#    deploy/nginx/mcp-sentinel.conf -- the file docs/deploy.md documents --
#    with its addresses, `listen` and TLS lines rewritten for loopback; its
#    own prefix, config, pid and logs in a temporary directory, no root
#    needed (`nginx -p DIR -c nginx.conf -e stderr`, master_process off, so
#    one process).
# 3. Runs tests/py/lb_client.py: N Streamable HTTP (/mcp) and N legacy SSE
#    (/sse) clients through nginx calling `echo` in a loop; then SIGKILL to
#    gw_a; its clients must get 404 (Streamable HTTP) or a closed stream
#    (SSE), start a new session and go on with gw_b, while gw_b's clients
#    notice nothing.
# 4. Checks nginx's access log: every request of a gw_b session went to
#    gw_b; a request of a gw_a session reached gw_b only to get 404 (after
#    the kill; the driver fails any call failed before it).
#
# Prints the figures (sessions, calls ok/failed, failover time from the kill
# to a re-initialized client's first successful call) and one JSON line
# `LB_JSON {...}`; exits 1 when a check fails. Binaries: $MCP_SENTINEL_BIN_DIR
# if set (CI gives its static release build), else target/debug, built
# here. Every wait is bounded, every process it starts is killed by PID on
# exit (the killed gateway's backend child too), and everything listens on
# 127.0.0.1 only.
set -euo pipefail
trap 'echo "lb-test.sh: line $LINENO: a command failed (exit $?)" >&2' ERR

SESSIONS=8
usage() { echo "usage: scripts/lb-test.sh [--sessions N]" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --sessions) SESSIONS=${2:-}; shift 2 || usage ;;
        -h | --help) usage ;;
        *) echo "lb-test.sh: unknown argument $1" >&2; usage ;;
    esac
done
[[ $SESSIONS =~ ^[1-9][0-9]*$ ]] || usage

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { echo "lb-test: $*" >&2; }
in_ci() { [[ ${CI:-} == true || ${CI:-} == 1 ]]; }
# skip WHY: a missing prerequisite; fatal under CI.
skip() {
    if in_ci; then
        echo "lb-test: $1 (required with CI=true)" >&2
        exit 1
    fi
    echo "SKIPPED: lb-test: $1" >&2
    exit 0
}

# --- prerequisites -----------------------------------------------------------

find_nginx() {
    NGINX=$(command -v nginx 2>/dev/null || true)
    [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
    [[ -n $NGINX ]]
}

# Installs nginx where that needs no password: as root, or with sudo -n.
# (On a host that runs services, the package also starts its own nginx on
# port 80; this test does not use it.)
install_nginx() {
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        sudo -n true 2>/dev/null || return 1
        sudo="sudo -n"
    fi
    if command -v apt-get >/dev/null 2>&1; then
        log "installing nginx (apt-get)"
        $sudo apt-get update -qq >&2 || return 1
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light >&2 ||
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx >&2
    elif command -v apk >/dev/null 2>&1; then
        log "installing nginx (apk)"
        $sudo apk add --no-cache nginx >&2
    else
        return 1
    fi
}

if ! find_nginx; then
    install_nginx || true
    find_nginx || skip "nginx is not installed and cannot be installed here (no root or sudo -n, or no apt-get/apk)"
fi
log "nginx: $NGINX ($("$NGINX" -v 2>&1 | sed 's/^nginx version: //'))"

PY=$ROOT/.peers/venv/bin/python
if [[ ! -x $PY ]] || ! timeout 60 "$PY" -c 'import mcp' 2>/dev/null; then
    skip "the Python MCP SDK is not installed under .peers (run scripts/install-peers.sh)"
fi

if [[ -n ${MCP_SENTINEL_BIN_DIR:-} ]]; then
    BIN=$(cd "$MCP_SENTINEL_BIN_DIR" && pwd)
else
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug
    log "building the gateway and the demo server (cargo build --bins)"
    cargo build --quiet --bin mcp-sentinel --bin mcp-sentinel-demo
fi
for b in mcp-sentinel mcp-sentinel-demo; do
    [[ -x $BIN/$b ]] || { echo "lb-test: missing $BIN/$b" >&2; exit 1; }
done

# --- processes, cleanup ------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-lb.XXXXXX")
declare -A GW_PID=()
NGINX_PID=""
DRIVER_PID=""
# Children of the gateways as "pid:starttime", so that a backend left
# behind by the killed instance is ended too, and a reused pid never is.
KNOWN=""
starttime() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }
remember_children() {
    local p
    for p in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do KNOWN="$KNOWN $p:$(starttime "$p")"; done
}
# stop PID: TERM, up to 5 s, then KILL.
stop() {
    local pid=$1 i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$? entry name
    stop "$DRIVER_PID"
    stop "$NGINX_PID"
    for name in "${!GW_PID[@]}"; do
        kill -0 "${GW_PID[$name]}" 2>/dev/null && remember_children "${GW_PID[$name]}"
        stop "${GW_PID[$name]}"
    done
    for entry in $KNOWN; do
        if [[ -n ${entry#*:} && $(starttime "${entry%%:*}") == "${entry#*:}" ]]; then
            kill -KILL "${entry%%:*}" 2>/dev/null || true
        fi
    done
    if [[ $rc -ne 0 && -d $WORK ]]; then
        local keep=${CARGO_TARGET_DIR:-$ROOT/target}/lb-test
        rm -rf "$keep" && mkdir -p "$keep" && cp -r "$WORK"/. "$keep"/ 2>/dev/null || true
        echo "lb-test: FAILED; logs kept in $keep" >&2
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port (bound, then released; nginx takes it right after).
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- two gateways --------------------------------------------------------------

declare -A GW_PORT=()
start_gateway() {
    local name=$1 dir=$WORK/$1
    mkdir -p "$dir"
    cat >"$dir/config.json" <<EOF
{
  "mcpServers": {
    "alpha": {"command": "$BIN/mcp-sentinel-demo", "args": ["--name", "alpha"]}
  },
  "server": {"name": "lb-$name", "instance_id": "$name"}
}
EOF
    XDG_STATE_HOME="$dir/state" "$BIN/mcp-sentinel" server --config "$dir/config.json" \
        --listen 127.0.0.1:0 --manage-listen 127.0.0.1:0 --log-level info \
        </dev/null >"$dir/gateway.log" 2>&1 &
    GW_PID[$name]=$!
    # Out of the job table: its SIGKILL is expected, not worth a "Killed"
    # line from bash (cleanup still ends it by PID).
    disown "${GW_PID[$name]}"
}
wait_gateway() {
    local name=$1 dir=$WORK/$1 i port=""
    for ((i = 0; i < 600; i++)); do
        kill -0 "${GW_PID[$name]}" 2>/dev/null || { cat "$dir/gateway.log" >&2; echo "lb-test: gateway $name exited" >&2; exit 1; }
        [[ -z $port ]] && port=$(sed -n 's|.*data plane listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$dir/gateway.log" | head -n 1)
        [[ -n $port ]] && grep -q 'gateway state: ready' "$dir/gateway.log" && break
        sleep 0.05
    done
    if [[ -z $port ]] || ! grep -q 'gateway state: ready' "$dir/gateway.log"; then
        cat "$dir/gateway.log" >&2
        echo "lb-test: gateway $name not ready within 30 s" >&2
        exit 1
    fi
    GW_PORT[$name]=$port
    remember_children "${GW_PID[$name]}"
    log "gateway $name: pid ${GW_PID[$name]}, http://127.0.0.1:$port"
}
start_gateway gw_a
start_gateway gw_b
wait_gateway gw_a
wait_gateway gw_b

# --- nginx ---------------------------------------------------------------------

NG=$WORK/nginx
mkdir -p "$NG/tmp" "$NG/logs"
start_nginx() {
    local port=$1
    # The documented file, pointed at loopback: instance addresses, the
    # listen line, no TLS (its certificate lines dropped).
    sed -e "s/10\.0\.0\.11:9000/127.0.0.1:${GW_PORT[gw_a]}/g" \
        -e "s/10\.0\.0\.12:9000/127.0.0.1:${GW_PORT[gw_b]}/g" \
        -e "s/^\([[:space:]]*\)listen [^;]*;/\1listen 127.0.0.1:$port;/" \
        -e '/^[[:space:]]*ssl_certificate/d' \
        -e 's/server_name [^;]*;/server_name localhost;/' \
        deploy/nginx/mcp-sentinel.conf >"$NG/mcp-sentinel.conf"
    if grep -q '10\.0\.0\.' "$NG/mcp-sentinel.conf" || [[ $(grep -c "listen 127.0.0.1:$port;" "$NG/mcp-sentinel.conf") -ne 1 ]] ||
        grep -q 'ssl' <(grep -v '^[[:space:]]*#' "$NG/mcp-sentinel.conf"); then
        echo "lb-test: deploy/nginx/mcp-sentinel.conf no longer has the lines this script rewrites" >&2
        exit 1
    fi
    local user=""
    [[ $(id -u) -eq 0 ]] && user="user $(id -un) $(id -gn);"
    cat >"$NG/nginx.conf" <<EOF
$user
daemon off;
master_process off;
pid $NG/nginx.pid;
error_log $NG/logs/error.log warn;
events { worker_connections 1024; }
http {
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fastcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    log_format lb '\$msec \$request_method \$uri \$status up=\$upstream_addr sid=\$http_mcp_session_id\$arg_session_id';
    access_log $NG/logs/access.log lb;
    include $NG/mcp-sentinel.conf;
}
EOF
    "$NGINX" -t -p "$NG" -c "$NG/nginx.conf" -e stderr >"$NG/logs/check.log" 2>&1 || {
        cat "$NG/logs/check.log" >&2
        echo "lb-test: nginx -t failed" >&2
        exit 1
    }
    "$NGINX" -p "$NG" -c "$NG/nginx.conf" -e stderr </dev/null >"$NG/logs/stderr.log" 2>&1 &
    NGINX_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$NGINX_PID" 2>/dev/null || break
        if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/nothing"; then
            NGINX_PORT=$port
            return 0
        fi
        sleep 0.05
    done
    stop "$NGINX_PID"
    NGINX_PID=""
    return 1
}
NGINX_PORT=""
for attempt in 1 2 3; do
    start_nginx "$(free_port)" && break
    log "nginx did not start (attempt $attempt): $(tail -n 2 "$NG/logs/stderr.log" | tr '\n' ' ')"
done
[[ -n $NGINX_PORT ]] || { cat "$NG/logs/stderr.log" >&2; echo "lb-test: nginx did not start" >&2; exit 1; }
log "nginx: pid $NGINX_PID, http://127.0.0.1:$NGINX_PORT (deploy/nginx/mcp-sentinel.conf)"

# --- clients, the kill -------------------------------------------------------

log "$SESSIONS Streamable HTTP + $SESSIONS SSE clients of the Python SDK through nginx; then SIGKILL to gw_a (pid ${GW_PID[gw_a]})"
START=$SECONDS
DRIVER_RC=0
timeout --kill-after=5 120 "$PY" tests/py/lb_client.py --url "http://127.0.0.1:$NGINX_PORT" \
    --sessions "$SESSIONS" --victim gw_a --victim-pid "${GW_PID[gw_a]}" \
    >"$WORK/driver.json" 2>"$WORK/driver.err" &
DRIVER_PID=$!
wait "$DRIVER_PID" || DRIVER_RC=$?
DRIVER_PID=""
ELAPSED=$((SECONDS - START))
if kill -0 "${GW_PID[gw_b]}" 2>/dev/null; then B_ALIVE=1; else B_ALIVE=0; fi

# --- report --------------------------------------------------------------------

export LB_A="127.0.0.1:${GW_PORT[gw_a]}" LB_B="127.0.0.1:${GW_PORT[gw_b]}" LB_RC=$DRIVER_RC LB_B_ALIVE=$B_ALIVE LB_ELAPSED=$ELAPSED
RC=0
"$PY" - "$WORK/driver.json" "$NG/logs/access.log" <<'PY' || RC=$?
import json, os, sys

errors = []
try:
    with open(sys.argv[1]) as f:
        d = json.loads(f.read().strip().splitlines()[-1])
except Exception as e:  # noqa: BLE001
    d = {"ok": False, "errors": [f"no report from the driver ({e!r}); exit {os.environ['LB_RC']}"]}
errors += d.get("errors", [])
a, b = os.environ["LB_A"], os.environ["LB_B"]
name = {a: "gw_a", b: "gw_b"}

# nginx's view: which instance each request went to.
kill_ms = None
by_up, wrong = {}, []
with open(sys.argv[2]) as f:
    rows = [line.split() for line in f if line.strip()]
for r in rows:
    ts, method, uri, status, up = float(r[0]), r[1], r[2], r[3], r[4][3:]
    sid = r[5][4:] if len(r) > 5 else ""
    first = up.split(",")[0].strip()
    key = f"{method} {uri} -> {name.get(first, first or '-')}"
    by_up[key] = by_up.get(key, 0) + 1
    if sid.startswith("gw_b-") and up != b:
        wrong.append(f"{method} {uri} of {sid[:12]}... went to {up}")
    if sid.startswith("gw_a-") and first == b and "," not in up and status != "404":
        wrong.append(f"{method} {uri} of {sid[:12]}... answered {status} by gw_b")
if wrong:
    errors.append(f"{len(wrong)} requests reached the wrong instance: {wrong[:3]}")
if os.environ["LB_B_ALIVE"] != "1":
    errors.append("gateway gw_b died")

v = d.get("victim_clients", {})
fo = d.get("failover_s", {})
bk = d.get("before_kill", {})
ak = d.get("after_kill", {})
print(f"lb-test: clients: {d.get('sessions_per_transport', '?')} Streamable HTTP + {d.get('sessions_per_transport', '?')} SSE; "
      f"{d.get('initializations', '?')} sessions made in {os.environ['LB_ELAPSED']} s")
print(f"lb-test: sessions by instance before the kill: {bk.get('sessions_by_instance')}; after: {ak.get('sessions_by_instance')}")
print(f"lb-test: calls ok {d.get('calls_ok')}, failed {d.get('calls_failed')} "
      f"(before the kill: ok {bk.get('calls_ok')}, failed {bk.get('calls_failed')}; "
      f"after: ok {ak.get('calls_ok')}, failed {ak.get('calls_failed')})")
for t, what in (("streamable", "saw_404"), ("sse", "saw_stream_closed")):
    x = v.get(t, {})
    print(f"lb-test: gw_a's {t} clients: {x.get('clients')}, {what.replace('_', ' ')}: {x.get(what)}, "
          f"re-initialized: {x.get('reinitialized')}, now on {x.get('now_on')}, calls failed: {x.get('calls_failed')}")
o = d.get("other_clients", {})
print(f"lb-test: gw_b's clients: {o.get('clients')}, calls failed after the kill: {o.get('calls_failed_after_kill')}, "
      f"re-initialized: {o.get('reinitialized')}")
print(f"lb-test: failover (kill -> first successful call on a new session): first {fo.get('first')} s, "
      f"p50 {fo.get('p50')} s, max {fo.get('max')} s")
print("lb-test: nginx requests: " + ", ".join(f"{k}: {n}" for k, n in sorted(by_up.items())))
d["nginx_requests"] = by_up
d["errors"] = errors
d["ok"] = not errors
print("LB_JSON " + json.dumps(d))
for e in errors:
    print(f"lb-test: FAIL: {e}", file=sys.stderr)
sys.exit(0 if not errors else 1)
PY
if [[ $RC -ne 0 ]]; then
    echo "lb-test: driver stderr (last lines):" >&2
    tail -n 20 "$WORK/driver.err" >&2 || true
    exit 1
fi
echo "lb-test: PASS"
