#!/usr/bin/env python3
"""Drive an MCP server with the official Python SDK (PyPI `mcp`, pinned in
scripts/install-peers.sh) and print one JSON object describing what it saw.

    python sdk_client.py --url URL --transport sse|streamable-http --scenario NAME
                         [--target gateway|everything] [--with-everything]

`--target gateway` (the default) expects MCP Sentinel in front of the demo
backends `alpha` (no prefix) and `beta` (prefix `beta`), plus, with
`--with-everything`, @modelcontextprotocol/server-everything (prefix `ev`).
`--target everything` talks to server-everything directly; it exists to check
this script's use of the SDK against a server nobody here wrote.

Exit 0 and `{"ok": true, ...}` on stdout when every check passed; otherwise
exit 1, `{"ok": false, "error": ...}` on stdout and the reason on stderr.
Every await is bounded (anyio.fail_after), so the script never hangs.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp.types as types
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

STEP_TIMEOUT_S = 20.0
"""Bound on any single request; the Rust side bounds the whole process too."""

SCENARIOS = ("list", "tools", "resource", "prompt", "progress", "cancel", "crash", "all")


class CheckFailed(Exception):
    """A check a user would make did not hold."""


def check(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


@dataclass
class Target:
    """Names the scenarios use; they differ between the gateway and server-everything."""

    echo: str
    echo_expect: str
    other_echoes: list[tuple[str, str]] = field(default_factory=list)  # (tool, expected text)
    slow: str = ""
    slow_args: dict[str, Any] = field(default_factory=dict)
    slow_done: str = ""
    resources: list[tuple[str, str]] = field(default_factory=list)  # (uri, expected substring)
    everything_resources: bool = False  # also read a server-everything resource found by listing
    everything_prefix: str = ""  # "" when talking to server-everything directly
    prompts: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    expect_tools: list[str] = field(default_factory=list)
    expect_prompts: list[str] = field(default_factory=list)
    has_cancellations_tool: bool = False


def gateway_target(with_everything: bool) -> Target:
    t = Target(
        echo="echo",
        echo_expect="hi",
        other_echoes=[("beta__echo", "hi")],
        slow="slow",
        slow_args={"steps": 4, "interval_ms": 50},
        slow_done="done after 4 steps",
        resources=[
            ("demo://alpha/readme", "Hello from alpha"),
            ("demo://beta/items/42", "item 42 from beta"),
        ],
        prompts=[
            ("greet", {"name": "Ada"}, "Hello, Ada! (from alpha)"),
            ("beta__greet", {"name": "Ada"}, "Hello, Ada! (from beta)"),
        ],
        expect_tools=["echo", "add", "slow", "beta__echo", "beta__add", "beta__slow"],
        expect_prompts=["greet", "beta__greet"],
        has_cancellations_tool=True,
    )
    if with_everything:
        t.other_echoes.append(("ev__echo", "Echo: hi"))
        t.everything_resources = True
        t.everything_prefix = "ev__"
        t.expect_tools += ["ev__echo", "ev__get-sum", "ev__trigger-long-running-operation"]
        t.expect_prompts += ["ev__simple-prompt"]
        t.prompts.append(("ev__simple-prompt", {}, "without arguments"))
    return t


def everything_target() -> Target:
    return Target(
        echo="echo",
        echo_expect="Echo: hi",
        slow="trigger-long-running-operation",
        slow_args={"duration": 1, "steps": 4},
        slow_done="Steps: 4",
        everything_resources=True,
        prompts=[
            ("simple-prompt", {}, "without arguments"),
            ("args-prompt", {"city": "Paris"}, "Paris"),
        ],
        expect_tools=["echo", "get-sum", "trigger-long-running-operation"],
        expect_prompts=["simple-prompt", "args-prompt"],
    )


async def bounded(aw: Any, what: str, seconds: float = STEP_TIMEOUT_S) -> Any:
    """Await `aw`, failing with a message naming `what` after `seconds`."""
    try:
        with anyio.fail_after(seconds):
            return await aw
    except TimeoutError:
        raise CheckFailed(f"timed out after {seconds}s: {what}") from None


def texts(content: list[Any]) -> list[str]:
    return [c.text for c in content if getattr(c, "type", None) == "text"]


async def call_text(session: ClientSession, name: str, args: dict[str, Any], **kw: Any) -> str:
    result = await bounded(session.call_tool(name, args, **kw), f"tools/call {name}")
    check(not result.is_error, f"tools/call {name} returned isError: {texts(result.content)}")
    return "\n".join(texts(result.content))


async def list_all(fetch: Any, attr: str, what: str) -> list[Any]:
    """Follow nextCursor to the end (bounded number of pages)."""
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(100):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
        page = await bounded(fetch(params=params), what)
        items.extend(getattr(page, attr))
        cursor = page.next_cursor
        if cursor is None:
            return items
    raise CheckFailed(f"{what}: more than 100 pages")


# --- scenarios -----------------------------------------------------------------


async def scenario_list(s: ClientSession, t: Target, out: dict[str, Any]) -> None:
    tools = await list_all(s.list_tools, "tools", "tools/list")
    resources = await list_all(s.list_resources, "resources", "resources/list")
    templates = await list_all(s.list_resource_templates, "resource_templates", "resources/templates/list")
    prompts = await list_all(s.list_prompts, "prompts", "prompts/list")
    names = [x.name for x in tools]
    out["tools"] = names
    out["resources"] = [str(x.uri) for x in resources]
    out["resource_templates"] = [x.uri_template for x in templates]
    out["prompts"] = [x.name for x in prompts]
    for want in t.expect_tools:
        check(want in names, f"tools/list lacks {want!r}: {names}")
    check(len(names) == len(set(names)), f"tools/list has duplicate names: {names}")
    for want in t.expect_prompts:
        check(want in out["prompts"], f"prompts/list lacks {want!r}: {out['prompts']}")
    for uri, _ in t.resources:
        if "/items/" in uri:
            check(
                any("/items/" in u for u in out["resource_templates"]),
                f"resources/templates/list lacks an items template: {out['resource_templates']}",
            )
        else:
            check(uri in out["resources"], f"resources/list lacks {uri!r}: {out['resources']}")
    for tool in tools:
        check(isinstance(tool.input_schema, dict), f"tool {tool.name} has no inputSchema object")


async def scenario_tools(s: ClientSession, t: Target, out: dict[str, Any]) -> None:
    calls: dict[str, str] = {}
    text = await call_text(s, t.echo, {"message": "hi"})
    check(text == t.echo_expect, f"{t.echo} answered {text!r}, expected {t.echo_expect!r}")
    calls[t.echo] = text
    for name, expect in t.other_echoes:
        text = await call_text(s, name, {"message": "hi"})
        check(text == expect, f"{name} answered {text!r}, expected {expect!r}")
        calls[name] = text
    # An unknown tool is a protocol error (-32602) or, from some servers, an isError result.
    try:
        result = await bounded(s.call_tool("no_such_tool_xyz", {}), "tools/call no_such_tool_xyz")
        check(result.is_error, "calling an unknown tool succeeded")
        calls["unknown"] = "isError"
    except MCPError as e:
        calls["unknown"] = f"error {e.code}"
    out["calls"] = calls


async def read_text(s: ClientSession, uri: str) -> str:
    result = await bounded(s.read_resource(uri), f"resources/read {uri}")
    check(len(result.contents) > 0, f"resources/read {uri} returned no contents")
    parts = []
    for c in result.contents:
        check(str(c.uri) == uri, f"resources/read {uri} returned contents for {c.uri}")
        parts.append(getattr(c, "text", None) or getattr(c, "blob", ""))
    return "\n".join(parts)


async def scenario_resource(s: ClientSession, t: Target, out: dict[str, Any]) -> None:
    reads: dict[str, str] = {}
    for uri, expect in t.resources:
        text = await read_text(s, uri)
        check(expect in text, f"resources/read {uri} gave {text[:200]!r}, expected {expect!r}")
        reads[uri] = text[:200]
    if t.everything_resources:
        listed = await list_all(s.list_resources, "resources", "resources/list")
        static = [str(r.uri) for r in listed if str(r.uri).startswith("demo://resource/static/")]
        check(len(static) > 0, "no server-everything static resource listed")
        text = await read_text(s, static[0])
        check(len(text) > 0, f"server-everything resource {static[0]} is empty")
        reads[static[0]] = text[:200]
        uri = "demo://resource/dynamic/text/7"
        text = await read_text(s, uri)
        check("Resource 7" in text, f"resources/read {uri} gave {text[:200]!r}")
        reads[uri] = text[:200]
    try:
        await bounded(s.read_resource("demo://nobody/none"), "resources/read unknown")
        raise CheckFailed("reading an unknown resource succeeded")
    except MCPError as e:
        reads["unknown"] = f"error {e.code}"
    out["reads"] = reads


async def scenario_prompt(s: ClientSession, t: Target, out: dict[str, Any]) -> None:
    got: dict[str, str] = {}
    for name, args, expect in t.prompts:
        result = await bounded(s.get_prompt(name, args or None), f"prompts/get {name}")
        msgs = [m.content.text for m in result.messages if getattr(m.content, "type", None) == "text"]
        joined = "\n".join(msgs)
        check(expect in joined, f"prompts/get {name} gave {joined[:200]!r}, expected {expect!r}")
        got[name] = joined[:200]
    out["prompts"] = got


async def scenario_progress(s: ClientSession, t: Target, out: dict[str, Any]) -> None:
    seen: list[dict[str, Any]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append({"progress": progress, "total": total, "message": message})

    text = await call_text(s, t.slow, t.slow_args, progress_callback=on_progress)
    check(t.slow_done in text, f"{t.slow} answered {text!r}, expected {t.slow_done!r}")
    steps = t.slow_args["steps"]
    values = [p["progress"] for p in seen]
    check(len(seen) == steps, f"expected {steps} progress notifications, got {len(seen)}: {seen}")
    check(all(a < b for a, b in zip(values, values[1:])), f"progress did not increase: {values}")
    out["progress"] = seen
    out["result"] = text


async def scenario_cancel(s: ClientSession, t: Target, out: dict[str, Any]) -> None:
    # The pinned SDK sends notifications/cancelled {requestId} itself when the
    # caller's cancel scope abandons a request ("courtesy cancel" in
    # mcp/shared/jsonrpc_dispatcher.py), so cancelling the scope is all a
    # user does.
    first_progress = anyio.Event()
    seen: list[float] = []
    outcome: dict[str, Any] = {}

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)
        first_progress.set()

    args = dict(t.slow_args)
    if "interval_ms" in args:
        args.update(steps=50, interval_ms=100)
    else:
        args.update(steps=50, duration=10)

    async def long_call(scope: anyio.CancelScope) -> None:
        with scope:
            result = await s.call_tool(t.slow, args, progress_callback=on_progress)
            outcome["completed"] = "\n".join(texts(result.content))

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(long_call, scope)
        await bounded(first_progress.wait(), f"first progress notification of {t.slow}")
        scope.cancel()
    check("completed" not in outcome, f"{t.slow} completed although it was cancelled: {outcome}")
    check(scope.cancel_called, "the call's cancel scope was not cancelled")
    out["progress_before_cancel"] = seen[:5]

    if t.has_cancellations_tool:
        # The notification travels asynchronously; poll (bounded) until the backend has it.
        received = None
        with anyio.move_on_after(10):
            while True:
                text = await call_text(s, "cancellations", {})
                received = parse_cancellations(text)
                if received:
                    break
                await anyio.sleep(0.1)
        check(bool(received), f"the backend never saw notifications/cancelled (cancellations: {received!r})")
        out["backend_cancellations"] = received

    text = await call_text(s, t.echo, {"message": "hi"})
    check(text == t.echo_expect, f"{t.echo} after cancel answered {text!r}")
    out["echo_after_cancel"] = text


def parse_cancellations(text: str) -> Any:
    """The demo's `cancellations` tool answers a JSON list (or an object holding one)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text.strip() if text.strip() not in ("", "[]", "none") else None
    if isinstance(value, dict):
        for key in ("cancellations", "cancelled", "received"):
            if key in value:
                return value[key]
    return value


async def scenario_crash(s: ClientSession, t: Target, out: dict[str, Any]) -> None:
    try:
        result = await bounded(s.call_tool("beta__crash", {}), "tools/call beta__crash", seconds=30)
        check(result.is_error, f"beta__crash succeeded: {texts(result.content)}")
        message = "\n".join(texts(result.content))
        out["crash"] = {"kind": "isError", "message": message}
    except MCPError as e:
        message = e.message
        out["crash"] = {"kind": "error", "code": e.code, "message": message}
    check("beta" in message, f"the crash error does not name the backend 'beta': {message!r}")
    text = await call_text(s, t.echo, {"message": "hi"})
    check(text == t.echo_expect, f"{t.echo} after the crash answered {text!r}")
    out["echo_after_crash"] = text


async def scenario_all(s: ClientSession, t: Target, out: dict[str, Any]) -> None:
    for name in ("list", "tools", "resource", "prompt", "progress"):
        part: dict[str, Any] = {}
        await RUNNERS[name](s, t, part)
        out[name] = part


RUNNERS = {
    "list": scenario_list,
    "tools": scenario_tools,
    "resource": scenario_resource,
    "prompt": scenario_prompt,
    "progress": scenario_progress,
    "cancel": scenario_cancel,
    "crash": scenario_crash,
    "all": scenario_all,
}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    target = everything_target() if args.target == "everything" else gateway_target(args.with_everything)
    if args.scenario == "crash" and args.target == "everything":
        raise CheckFailed("the crash scenario needs the demo backend 'beta' behind the gateway")
    out: dict[str, Any] = {"scenario": args.scenario, "transport": args.transport, "target": args.target}

    async def session_on(read: Any, write: Any) -> None:
        async with ClientSession(read, write, read_timeout_seconds=STEP_TIMEOUT_S) as session:
            init = await bounded(session.initialize(), "initialize")
            out["protocol_version"] = init.protocol_version
            out["server_info"] = {"name": init.server_info.name, "version": init.server_info.version}
            caps = init.capabilities
            out["capabilities"] = sorted(
                k for k in ("tools", "resources", "prompts", "logging", "completions") if getattr(caps, k, None)
            )
            results: dict[str, Any] = {}
            await RUNNERS[args.scenario](session, target, results)
            out["results"] = results

    # Connecting is bounded too: a server that never answers must not hang us.
    with anyio.fail_after(args.total_timeout):
        if args.transport == "sse":
            async with sse_client(args.url, timeout=STEP_TIMEOUT_S, sse_read_timeout=STEP_TIMEOUT_S * 3) as (r, w):
                await session_on(r, w)
        else:
            async with streamable_http_client(args.url) as (r, w):
                await session_on(r, w)
    return out


def first_leaf(exc: BaseException) -> BaseException:
    """anyio wraps task failures in ExceptionGroups; report the real one."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--transport", required=True, choices=("sse", "streamable-http"))
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--target", default="gateway", choices=("gateway", "everything"))
    p.add_argument("--with-everything", action="store_true", help="the gateway also serves server-everything as ev__*")
    p.add_argument("--total-timeout", type=float, default=50.0)
    args = p.parse_args()
    try:
        out = anyio.run(run, args)
    except BaseException as e:  # noqa: BLE001 - report every failure as one line
        leaf = first_leaf(e)
        if isinstance(leaf, TimeoutError):
            msg = f"timed out after {args.total_timeout}s overall"
        elif isinstance(leaf, MCPError):
            msg = f"MCP error {leaf.code}: {leaf.message}"
        else:
            msg = f"{type(leaf).__name__}: {leaf}"
        if not isinstance(leaf, CheckFailed):
            traceback.print_exception(leaf, file=sys.stderr)
        print(json.dumps({"ok": False, "scenario": args.scenario, "transport": args.transport, "error": msg}))
        print(f"sdk_client: {args.scenario} over {args.transport} FAILED: {msg}", file=sys.stderr)
        return 1
    out["ok"] = True
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
