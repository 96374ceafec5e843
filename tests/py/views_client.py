#!/usr/bin/env python3
"""Drive a view of MCP Sentinel (`/mcp/<view>` or `/sse/<view>`) with the
official Python SDK and print one JSON object describing what it saw.

    python views_client.py --url URL --transport sse|streamable-http
                           [--call TOOL]... [--hidden-tool TOOL]...
                           [--read URI]... [--hidden-uri URI]...
                           [--hidden-prompt NAME]...

Lists tools, resources, resource templates and prompts; calls each
`--call` tool with {"message": "hi"} (it must succeed); calls each
`--hidden-tool` (it must fail with an MCP error, whose code and message are
reported); reads each `--read` URI (it must succeed) and each
`--hidden-uri` (it must fail); gets each `--hidden-prompt` (it must fail).
The Rust side (tests/views.rs) checks the names, codes and messages.

Exit 0 and `{"ok": true, ...}` on stdout when every call behaved as asked;
otherwise exit 1 and `{"ok": false, "error": ...}`. Every await is bounded.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

STEP_TIMEOUT_S = 20.0


class CheckFailed(Exception):
    pass


async def bounded(aw: Any, what: str) -> Any:
    try:
        with anyio.fail_after(STEP_TIMEOUT_S):
            return await aw
    except TimeoutError:
        raise CheckFailed(f"timed out after {STEP_TIMEOUT_S}s: {what}") from None


async def refused(aw: Any, what: str) -> dict[str, Any]:
    try:
        result = await bounded(aw, what)
    except MCPError as e:
        return {"code": e.code, "message": e.message}
    raise CheckFailed(f"{what} succeeded: {result!r}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"transport": args.transport}

    async def session_on(read: Any, write: Any) -> None:
        async with ClientSession(read, write, read_timeout_seconds=STEP_TIMEOUT_S) as s:
            await bounded(s.initialize(), "initialize")
            out["tools"] = [t.name for t in (await bounded(s.list_tools(), "tools/list")).tools]
            out["resources"] = [str(r.uri) for r in (await bounded(s.list_resources(), "resources/list")).resources]
            out["resource_templates"] = [
                t.uri_template
                for t in (await bounded(s.list_resource_templates(), "resources/templates/list")).resource_templates
            ]
            out["prompts"] = [p.name for p in (await bounded(s.list_prompts(), "prompts/list")).prompts]
            calls: dict[str, Any] = {}
            for name in args.call:
                result = await bounded(s.call_tool(name, {"message": "hi"}), f"tools/call {name}")
                if result.is_error:
                    raise CheckFailed(f"tools/call {name} returned isError")
                calls[name] = "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")
            for name in args.hidden_tool:
                calls[name] = await refused(s.call_tool(name, {"message": "hi"}), f"tools/call {name}")
            out["calls"] = calls
            reads: dict[str, Any] = {}
            for uri in args.read:
                result = await bounded(s.read_resource(uri), f"resources/read {uri}")
                reads[uri] = "\n".join(getattr(c, "text", "") for c in result.contents)
            for uri in args.hidden_uri:
                reads[uri] = await refused(s.read_resource(uri), f"resources/read {uri}")
            out["reads"] = reads
            prompts: dict[str, Any] = {}
            for name in args.hidden_prompt:
                prompts[name] = await refused(s.get_prompt(name, {"name": "Ada"}), f"prompts/get {name}")
            out["prompt_gets"] = prompts

    with anyio.fail_after(args.total_timeout):
        if args.transport == "sse":
            async with sse_client(args.url, timeout=STEP_TIMEOUT_S, sse_read_timeout=STEP_TIMEOUT_S * 3) as (r, w):
                await session_on(r, w)
        else:
            async with streamable_http_client(args.url) as (r, w):
                await session_on(r, w)
    return out


def first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--transport", required=True, choices=("sse", "streamable-http"))
    p.add_argument("--call", action="append", default=[])
    p.add_argument("--hidden-tool", action="append", default=[])
    p.add_argument("--read", action="append", default=[])
    p.add_argument("--hidden-uri", action="append", default=[])
    p.add_argument("--hidden-prompt", action="append", default=[])
    p.add_argument("--total-timeout", type=float, default=50.0)
    args = p.parse_args()
    try:
        out = anyio.run(run, args)
    except BaseException as e:  # noqa: BLE001 - every failure as one line
        leaf = first_leaf(e)
        msg = f"MCP error {leaf.code}: {leaf.message}" if isinstance(leaf, MCPError) else f"{type(leaf).__name__}: {leaf}"
        print(json.dumps({"ok": False, "error": msg}))
        print(f"views_client: FAILED: {msg}", file=sys.stderr)
        return 1
    out["ok"] = True
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
