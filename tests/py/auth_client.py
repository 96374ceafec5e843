#!/usr/bin/env python3
"""Connect to MCP Sentinel with the official Python SDK and a bearer token,
list tools and call `echo`; print one JSON object.

    AUTH_TOKEN=... python auth_client.py --url URL --transport sse|streamable-http

The token comes from the environment (`AUTH_TOKEN`, sent as
`Authorization: Bearer ...` on every request; absent: no header), so it is
never on a command line. Exit 0 and `{"ok": true, "tools": [...],
"echo": "..."}` when served; exit 1 and `{"ok": false, "error": ...}`
otherwise (a refused connection included). Every await is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import anyio
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

STEP_TIMEOUT_S = 20.0


async def run(args: argparse.Namespace) -> dict:
    token = os.environ.get("AUTH_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with anyio.fail_after(STEP_TIMEOUT_S * 3):
        if args.transport == "sse":
            ctx = sse_client(args.url, headers=headers, timeout=STEP_TIMEOUT_S, sse_read_timeout=STEP_TIMEOUT_S * 3)
            async with ctx as (r, w):
                return await use(r, w)
        http = create_mcp_http_client(headers=headers)
        async with http, streamable_http_client(args.url, http_client=http) as (r, w):
            return await use(r, w)


async def use(read, write) -> dict:
    async with ClientSession(read, write) as s:
        await s.initialize()
        tools = sorted(t.name for t in (await s.list_tools()).tools)
        result = await s.call_tool("echo", {"message": "hi"})
        text = "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")
        if result.is_error:
            raise RuntimeError(f"echo returned isError: {text}")
        return {"ok": True, "tools": tools, "echo": text}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--transport", choices=("sse", "streamable-http"), required=True)
    args = p.parse_args()
    try:
        out = anyio.run(run, args)
    except BaseException as e:  # noqa: BLE001 - report whatever stopped the client
        msg = f"{type(e).__name__}: {e}"
        print(json.dumps({"ok": False, "error": msg[:500]}))
        print(msg, file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
