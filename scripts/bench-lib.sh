# Shared by scripts/bench.sh and scripts/bench-memory.sh (sourced, not run):
# the release build, a work directory removed on exit, and a gateway
# started on free loopback ports and killed by PID on exit.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
REL=$TARGET/release

# MCP_SENTINEL_REL names a directory of release binaries already built
# (CI points it at its static build); otherwise build them here.
if [[ -n ${MCP_SENTINEL_REL:-} ]]; then
    REL=$(cd "$MCP_SENTINEL_REL" && pwd)
    echo "using the release binaries in $REL" >&2
else
    echo "building release (cargo build --release --examples --bins)..." >&2
    cargo build --release --examples --bins --quiet
fi

# The load generator (examples/bench). `need_bench release` insists on the
# release build next to the binaries (anything that times); `need_bench any`
# (the smoke run, which only counts errors) falls back to the debug build of
# the example, which `cargo build --all-targets` already made in CI, and
# builds it if it is missing (seconds, no LTO). Sets BENCH.
need_bench() {
    BENCH=$REL/examples/bench
    [[ -x $BENCH ]] && return 0
    if [[ $1 == release ]]; then
        echo "no $BENCH: build it with cargo build --release --examples (or unset MCP_SENTINEL_REL)" >&2
        exit 1
    fi
    echo "no release examples/bench in $REL: using the debug build (cargo build --example bench)" >&2
    cargo build --example bench --quiet
    BENCH=$TARGET/debug/examples/bench
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-bench.XXXXXX")
GW_PID=""
cleanup() {
    if [[ -n $GW_PID ]] && kill -0 "$GW_PID" 2>/dev/null; then
        kill -TERM "$GW_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$GW_PID" 2>/dev/null || true
        wait "$GW_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_gateway SECONDS: runs the gateway on $WORK/config.json (both
# listeners on free ports, its token file under $WORK) and waits, at most
# SECONDS, for its port and `gateway state: ready`. Sets GW_PID and URL.
start_gateway() {
    local limit=$1 port="" i
    XDG_STATE_HOME="$WORK/state" "$REL/mcp-sentinel" server --config "$WORK/config.json" \
        --listen 127.0.0.1:0 --manage-listen 127.0.0.1:0 --log-level info 2>"$WORK/gateway.log" &
    GW_PID=$!
    for ((i = 0; i < limit * 20; i++)); do
        kill -0 "$GW_PID" 2>/dev/null || { cat "$WORK/gateway.log" >&2; echo "gateway exited" >&2; exit 1; }
        [[ -z $port ]] && port=$(sed -n 's|.*data plane listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$WORK/gateway.log")
        [[ -n $port ]] && grep -q 'gateway state: ready' "$WORK/gateway.log" && break
        sleep 0.05
    done
    if [[ -z $port ]] || ! grep -q 'gateway state: ready' "$WORK/gateway.log"; then
        cat "$WORK/gateway.log" >&2
        echo "gateway not ready within $limit s" >&2
        exit 1
    fi
    URL=http://127.0.0.1:$port
}
