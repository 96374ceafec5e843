#!/usr/bin/env python3
"""A 2026-07-28 ("modern") MCP backend for tests/eras.rs, written with the
official Python SDK (PyPI `mcp` 2.3.0, pinned in scripts/install-peers.sh).

    python modern_server.py --stdio                    serve one client on stdin/stdout
    python modern_server.py --http PORT                Streamable HTTP on http://127.0.0.1:PORT/mcp
                                                       (PORT 0 picks a free port)
    python modern_server.py --http PORT --modern-only  the same, refusing every legacy request

`MCPServer` is dual-era: over stdio the first request decides (`server/discover`
or any enveloped request: 2026-07-28; `initialize`: legacy), over HTTP each
request's `MCP-Protocol-Version` does. `--modern-only` puts an ASGI wrapper in
front that answers as a modern-only server would (SDK 2.3.0 has no switch for
it): GET or DELETE without a modern version header -> 405 (`Allow: POST`); a
POST whose header is missing or names a legacy revision -> 400 with -32022 and
`data: {"supported": ["2026-07-28"], "requested": ...}`.

With --http it prints `modern server: listening on http://127.0.0.1:PORT/mcp`
to stderr once the socket accepts connections; tests/eras.rs waits for that line.

Options: `--name NAME` (serverInfo name, default `modern-eras`), `--tools-ttl MS`
(the `tools/list` cache hint, default 60000; every list hint is `public` except
`resources/list`, which is `private`).

What it serves (the MRTR tools ask only through `InputRequiredResult`, never a
pushed request, so through a gateway they work only if the gateway speaks
2026-07-28 to this backend and bridges for legacy clients):

| tool | does |
|---|---|
| `echo {text}` | returns the text |
| `era` | JSON: the protocol version and client capabilities this request was served with |
| `trace` | JSON: the request's `_meta` exactly as it arrived (`io.modelcontextprotocol/*` keys included) |
| `deploy {env}` | MRTR elicitation (form, key `confirm`, `requestState` "awaiting-confirm"); then `deployed to ENV (answer: ACTION CONTENT; state: STATE)` |
| `ask_llm {q}` | MRTR `sampling/createMessage` (key `llm`); then `llm said: TEXT (model MODEL)` |
| `list_roots_tool` | MRTR `roots/list` (key `roots`); then `roots: URI NAME, ...` |
| `enable_extra` | registers tool `extra` and announces a tools list change |
| `slow {seconds}` | progress 1/2, an info log, sleeps, progress 2/2; records whether it was cancelled |
| `was_cancelled` | JSON `{"state": ..., "started": N, "cancelled": N, "completed": N}` about the `slow` calls |
| `chatty {tag, n}` | logs `TAG-1` .. `TAG-n` at info (one per 50 ms), returns `chatty TAG done` |
| `update_note {text}` | sets `note://todo`'s text and announces `resources/updated` for it |

Resources: `note://todo` (text, initially `buy milk`); template `note://items/{id}`.
Prompt: `greet {name}` ("Hello, NAME!"), with completions for `name`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import warnings
from typing import Any

import anyio
import mcp.types as types
import uvicorn
from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPDeprecationWarning

# Logging, sampling and roots are deprecated in 2026-07-28; this server uses them on purpose.
warnings.simplefilter("ignore", MCPDeprecationWarning)
warnings.simplefilter("ignore", DeprecationWarning)

MODERN = ("2026-07-28",)
LEGACY = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")

NOTE_URI = "note://todo"
NAMES = ["alice", "bob", "carol"]


def make_server(name: str, tools_ttl: int) -> MCPServer:
    mcp = MCPServer(
        name,
        version="0.1.0",
        cache_hints={
            "tools/list": CacheHint(ttl_ms=tools_ttl, scope="public"),
            "prompts/list": CacheHint(ttl_ms=30000, scope="public"),
            "resources/list": CacheHint(ttl_ms=45000, scope="private"),
            "resources/templates/list": CacheHint(ttl_ms=50000, scope="public"),
        },
    )
    note = {"text": "buy milk"}
    slow_calls = {"state": "idle", "started": 0, "cancelled": 0, "completed": 0}

    @mcp.tool(description="Returns its text.")
    async def echo(text: str) -> str:
        return text

    @mcp.tool(description="The protocol version and client capabilities of this request.")
    async def era(ctx: Context) -> str:
        caps = ctx.client_capabilities
        return json.dumps(
            {
                "protocol_version": ctx.protocol_version,
                "client_capabilities": caps.model_dump(mode="json", by_alias=True, exclude_none=True) if caps else None,
            },
            sort_keys=True,
        )

    @mcp.tool(description="The request's _meta as it arrived.")
    async def trace(ctx: Context) -> str:
        params = ctx.request_context.params or {}
        meta = params.get("_meta") if isinstance(params, dict) else None
        if meta is None and ctx.request_context.meta is not None:
            m = ctx.request_context.meta
            meta = m.model_dump(mode="json", by_alias=True, exclude_none=True) if hasattr(m, "model_dump") else dict(m)
        return json.dumps({"meta": meta, "protocol_version": ctx.protocol_version}, sort_keys=True, default=str)

    @mcp.tool(description="Deploys after the user confirms (MRTR elicitation).")
    async def deploy(env: str, ctx: Context) -> str | types.InputRequiredResult:
        r = ctx.input_responses
        if r is None or "confirm" not in r:
            ask = types.ElicitRequest(
                params=types.ElicitRequestFormParams(
                    message=f"Deploy to {env}?",
                    requested_schema={
                        "type": "object",
                        "properties": {"ok": {"type": "boolean"}},
                        "required": ["ok"],
                    },
                )
            )
            return types.InputRequiredResult(input_requests={"confirm": ask}, request_state="awaiting-confirm")
        ans = r["confirm"]
        if not isinstance(ans, types.ElicitResult):
            return f"not deployed: the answer was {type(ans).__name__}"
        content = json.dumps(ans.content, sort_keys=True) if ans.content is not None else "-"
        verb = "deployed" if ans.action == "accept" else "not deployed"
        return f"{verb} to {env} (answer: {ans.action} {content}; state: {ctx.request_state})"

    @mcp.tool(description="Asks the client's LLM (MRTR sampling).")
    async def ask_llm(q: str, ctx: Context) -> str | types.InputRequiredResult:
        r = ctx.input_responses
        if r is None or "llm" not in r:
            req = types.CreateMessageRequest(
                params=types.CreateMessageRequestParams(
                    messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=q))],
                    max_tokens=50,
                )
            )
            return types.InputRequiredResult(input_requests={"llm": req})
        ans = r["llm"]
        if not isinstance(ans, types.CreateMessageResult):
            return f"no sample: the answer was {type(ans).__name__}"
        text = getattr(ans.content, "text", None)
        return f"llm said: {text} (model {ans.model})"

    @mcp.tool(description="Lists the client's roots (MRTR roots/list).")
    async def list_roots_tool(ctx: Context) -> str | types.InputRequiredResult:
        r = ctx.input_responses
        if r is None or "roots" not in r:
            return types.InputRequiredResult(input_requests={"roots": types.ListRootsRequest()})
        ans = r["roots"]
        if not isinstance(ans, types.ListRootsResult):
            return f"no roots: the answer was {type(ans).__name__}"
        return "roots: " + ", ".join(f"{root.uri} {root.name}" for root in ans.roots)

    @mcp.tool(description="Registers the tool `extra` and announces a tools list change.")
    async def enable_extra(ctx: Context) -> str:
        def extra() -> str:
            """An extra tool."""
            return "extra"

        if "extra" not in [t.name for t in await mcp.list_tools()]:
            mcp.add_tool(extra)
        await ctx.notify_tools_changed()
        await _legacy_notify(ctx, "tools")
        return "enabled"

    @mcp.tool(description="Progress, a log line, a sleep; records cancellation.")
    async def slow(seconds: float, ctx: Context) -> str:
        slow_calls["state"] = "running"
        slow_calls["started"] += 1
        try:
            await ctx.report_progress(1, 2, "half")
            await ctx.info("log line from slow")
            await anyio.sleep(seconds)
            await ctx.report_progress(2, 2, "done")
        except anyio.get_cancelled_exc_class():
            slow_calls["state"] = "cancelled"
            slow_calls["cancelled"] += 1
            print(f"modern server: slow call cancelled ({slow_calls})", file=sys.stderr, flush=True)
            raise
        slow_calls["state"] = "completed"
        slow_calls["completed"] += 1
        return "slow done"

    @mcp.tool(description="What became of the slow calls.")
    async def was_cancelled() -> str:
        return json.dumps(slow_calls, sort_keys=True)

    @mcp.tool(description="Logs TAG-1..TAG-n at info, 50 ms apart.")
    async def chatty(tag: str, n: int, ctx: Context) -> str:
        for i in range(1, n + 1):
            await ctx.info(f"{tag}-{i}")
            await anyio.sleep(0.05)
        return f"chatty {tag} done"

    @mcp.tool(description="Sets note://todo and announces resources/updated.")
    async def update_note(text: str, ctx: Context) -> str:
        note["text"] = text
        await ctx.notify_resource_updated(NOTE_URI)
        if ctx.protocol_version not in MODERN:
            try:
                await ctx.session.send_resource_updated(NOTE_URI)
            except Exception as e:  # noqa: BLE001 - a legacy peer that did not subscribe
                print(f"modern server: legacy resources/updated failed: {e}", file=sys.stderr, flush=True)
        return f"note is now {text}"

    @mcp.resource(NOTE_URI, name="todo", mime_type="text/plain")
    def todo() -> str:
        return note["text"]

    @mcp.resource("note://items/{id}", name="item", mime_type="text/plain")
    def item(id: str) -> str:
        return f"item {id}"

    @mcp.prompt(description="Greets someone.")
    def greet(name: str) -> str:
        return f"Hello, {name}!"

    @mcp.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> types.Completion | None:
        if argument.name == "name":
            return types.Completion(values=[n for n in NAMES if n.startswith(argument.value)])
        return None

    return mcp


async def _legacy_notify(ctx: Context, kind: str) -> None:
    """On a legacy session, also the pushed notification (modern listens get the bus event)."""
    if ctx.protocol_version in MODERN:
        return
    try:
        if kind == "tools":
            await ctx.session.send_tool_list_changed()
    except Exception as e:  # noqa: BLE001
        print(f"modern server: legacy list_changed failed: {e}", file=sys.stderr, flush=True)


# --- modern-only HTTP ------------------------------------------------------------


def _error(id_: Any, code: int, message: str, data: Any = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return json.dumps({"jsonrpc": "2.0", "id": id_, "error": err}).encode()


def modern_only(app: Any) -> Any:
    """Answers legacy traffic as a modern-only server would; passes modern requests on."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        pv = headers.get("mcp-protocol-version")
        if pv is not None and pv not in LEGACY:
            return await app(scope, receive, send)
        if scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 405, "headers": [(b"allow", b"POST")]})
            return await send({"type": "http.response.body", "body": b""})
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        try:
            req = json.loads(body)
        except ValueError:
            req = {}
        if not isinstance(req, dict):
            req = {}
        params = req.get("params") if isinstance(req.get("params"), dict) else {}
        requested = pv or params.get("protocolVersion") or ""
        print(f"modern server: refused a legacy {req.get('method')!r} ({requested or 'no version'})", file=sys.stderr)
        out = _error(
            req.get("id"),
            -32022,
            "Unsupported protocol version",
            {"supported": list(MODERN), "requested": requested},
        )
        await send(
            {"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": out})

    return asgi


async def serve_http(mcp: MCPServer, port: int, only_modern: bool) -> None:
    app: Any = mcp.streamable_http_app(
        json_response=False,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    if only_modern:
        app = modern_only(app)
    # Bind and listen before announcing the port, so a client that reads the
    # line can connect at once (port 0 included).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1, lifespan="on")
    print(f"modern server: listening on http://127.0.0.1:{bound}/mcp", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stdio", action="store_true", help="serve one client on stdin/stdout")
    mode.add_argument("--http", type=int, metavar="PORT", help="serve Streamable HTTP on 127.0.0.1:PORT/mcp")
    parser.add_argument("--modern-only", action="store_true", help="with --http: refuse legacy requests")
    parser.add_argument("--name", default="modern-eras", help="serverInfo name")
    parser.add_argument("--tools-ttl", type=int, default=60000, help="tools/list ttlMs hint")
    args = parser.parse_args()
    if args.modern_only and args.http is None:
        parser.error("--modern-only needs --http (stock SDK 2.3.0 cannot refuse initialize on stdio)")
    mcp = make_server(args.name, args.tools_ttl)
    if args.stdio:
        mcp.run("stdio")
    else:
        if not 0 <= args.http <= 65535:
            parser.error(f"--http: port {args.http} is out of range")
        asyncio.run(serve_http(mcp, args.http, args.modern_only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
