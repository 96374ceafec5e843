#!/usr/bin/env bash
# Installs the third-party MCP peers the tests run against, pinned exactly,
# into .peers/ (git-ignored):
#   .peers/venv  the official Python MCP SDK (PyPI `mcp`), used as a client
#   .peers/node  the official reference server @modelcontextprotocol/server-everything
#                (npm), used as a backend
# Idempotent: when the pinned versions are already present it only prints them.
# Exits non-zero if anything cannot be installed.
set -euo pipefail

MCP_PY_VERSION="2.3.0"
EVERYTHING_VERSION="2026.8.31"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers="$root/.peers"
venv="$peers/venv"
node_prefix="$peers/node"
everything_pkg="$node_prefix/node_modules/@modelcontextprotocol/server-everything/package.json"

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

echo "install-peers: python $("$venv/bin/python" --version 2>&1 | cut -d' ' -f2), mcp $MCP_PY_VERSION ($venv)"
echo "install-peers: node $(node --version), @modelcontextprotocol/server-everything $EVERYTHING_VERSION ($node_prefix)"
